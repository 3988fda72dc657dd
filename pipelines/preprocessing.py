"""Tokenization the RL stages do themselves (SFT and reward tokenization is TRL's)."""

from __future__ import annotations

import logging

from accelerate import PartialState
from datasets import Dataset
from transformers import PreTrainedTokenizerBase

__all__ = ["chat_token_ids", "pack_pretraining_text", "tokenize_prompts"]

logger = logging.getLogger("pipelines")


def chat_token_ids(
    tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]], add_generation_prompt: bool = False
) -> list[int]:
    """Token ids of a conversation under the tokenizer's chat template."""
    encoded = tokenizer.apply_chat_template(
        messages, tokenize=True, add_generation_prompt=add_generation_prompt, return_dict=True
    )
    return list(encoded["input_ids"])


def tokenize_prompts(ds: Dataset, tokenizer: PreTrainedTokenizerBase, max_prompt_length: int) -> Dataset:
    """Conversational prompts -> `input_ids` ending with the assistant turn's opening token.

    PPO wants a dataset with `input_ids` only. Prompts longer than `max_prompt_length` are
    dropped, and the count is logged (a truncated prompt would lose its instruction).
    """

    def tokenize(row):
        return {"input_ids": chat_token_ids(tokenizer, row["prompt"], add_generation_prompt=True)}

    with PartialState().main_process_first():  # preprocessing runs once; the others read the cache
        out = ds.map(tokenize, remove_columns=ds.column_names, desc="tokenizing prompts")
        kept = out.filter(
            lambda row: len(row["input_ids"]) <= max_prompt_length, desc="filtering long prompts"
        )
    if len(kept) < len(out) and PartialState().is_main_process:
        logger.warning(
            "Dropped %d of %d prompts longer than max_prompt_length=%d tokens.",
            len(out) - len(kept),
            len(out),
            max_prompt_length,
        )
    if len(kept) == 0:
        raise ValueError(f"Every prompt is longer than max_prompt_length={max_prompt_length}; raise it.")
    return kept


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
