"""Tokenization the RL stages do themselves (SFT and reward tokenization is TRL's)."""

from __future__ import annotations

import logging

from accelerate import PartialState
from datasets import Dataset
from transformers import PreTrainedTokenizerBase

from pipelines.configs import ConfigError

__all__ = ["chat_token_ids", "drop_long_prompts", "pack_pretraining_text", "tokenize_prompts"]

logger = logging.getLogger("pipelines")


def chat_token_ids(
    tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]], add_generation_prompt: bool = False
) -> list[int]:
    """Token ids of a conversation under the tokenizer's chat template."""
    encoded = tokenizer.apply_chat_template(
        messages, tokenize=True, add_generation_prompt=add_generation_prompt, return_dict=True
    )
    return list(encoded["input_ids"])


def drop_long_prompts(
    ds: Dataset, tokenizer: PreTrainedTokenizerBase, max_prompt_length: int, split: str = "train"
) -> Dataset:
    """Conversational prompts of at most `max_prompt_length` tokens, the assistant turn's opening included.

    A truncated prompt would lose its instruction, so longer ones are dropped and counted in the log.
    A split that had prompts and keeps none is an error that names the field to raise.
    """

    def fits(row) -> bool:
        return len(chat_token_ids(tokenizer, row["prompt"], add_generation_prompt=True)) <= max_prompt_length

    with PartialState().main_process_first():  # preprocessing runs once; the others read the cache
        kept = ds.filter(fits, desc=f"dropping {split} prompts longer than {max_prompt_length} tokens")
    if len(kept) < len(ds) and PartialState().is_main_process:
        logger.warning(
            "Dropped %d of %d %s prompts longer than max_prompt_length=%d tokens.",
            len(ds) - len(kept), len(ds), split, max_prompt_length,
        )  # fmt: skip
    if len(ds) and not len(kept):
        raise ConfigError(
            f"Every {split} prompt is longer than max_prompt_length={max_prompt_length} tokens; raise it."
        )
    return kept


def tokenize_prompts(
    ds: Dataset, tokenizer: PreTrainedTokenizerBase, max_prompt_length: int, split: str = "train"
) -> Dataset:
    """Conversational prompts -> `input_ids` ending with the assistant turn's opening token.

    PPO wants a dataset with `input_ids` only; prompts longer than `max_prompt_length` are dropped
    first (`drop_long_prompts`).
    """

    def tokenize(row):
        return {"input_ids": chat_token_ids(tokenizer, row["prompt"], add_generation_prompt=True)}

    kept = drop_long_prompts(ds, tokenizer, max_prompt_length, split)
    with PartialState().main_process_first():
        return kept.map(tokenize, remove_columns=kept.column_names, desc=f"tokenizing {split} prompts")


def pack_pretraining_text(ds: Dataset, tokenizer: PreTrainedTokenizerBase, block_size: int) -> Dataset:
    """Plain `text` -> fixed blocks of `block_size` tokens (documents joined by EOS), for PPO-ptx."""

    def tokenize(batch):
        ids = tokenizer(batch["text"], add_special_tokens=False).input_ids
        return {"ids": [x + [tokenizer.eos_token_id] for x in ids]}

    def chunk(batch):
        flat = [token for ids in batch["ids"] for token in ids]
        usable = len(flat) // block_size * block_size
        return {"input_ids": [flat[i : i + block_size] for i in range(0, usable, block_size)]}

    with PartialState().main_process_first():
        ids = ds.map(tokenize, batched=True, remove_columns=ds.column_names, desc="tokenizing ptx text")
        blocks = ids.map(chunk, batched=True, remove_columns=["ids"], desc="packing ptx blocks")
    if len(blocks) == 0:
        raise ValueError(f"The pretraining text holds fewer than block_size={block_size} tokens.")
    return blocks
