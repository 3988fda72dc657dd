"""Inputs of the online RL recipes (RLOO, GRPO): one loader, not one copy per recipe."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from accelerate import PartialState
from datasets import Dataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from pipelines.configs import ConfigError
from pipelines.loading import (
    check_model_source,
    check_same_tokenizer,
    get_model,
    get_peft_config,
    get_tokenizer,
    load_splits,
)
from pipelines.preprocessing import chat_token_ids
from pipelines.rewards import gold_reward_function

__all__ = ["OnlineRLInputs", "load_online_rl_inputs"]

logger = logging.getLogger("pipelines")


@dataclass
class OnlineRLInputs:
    tokenizer: PreTrainedTokenizerBase
    policy: PreTrainedModel
    reward_model: PreTrainedModel | Callable[..., list[float]]  # a reward function with `gold_reward`
    train: Dataset
    test: Dataset
    peft_config: Any


def load_online_rl_inputs(script_args, training_args, model_args) -> OnlineRLInputs:
    """Check sources, tokenizers and prompts first; then load the policy and the reward model."""
    policy_path, reward_path = model_args.model_name_or_path, script_args.reward_model_path
    gold = script_args.gold_reward  # the gold judge is the reward: no reward model to check or load
    if not reward_path and not gold:
        raise ConfigError(
            "reward_model_path is not set: point it at the reward stage's output folder or a Hub id."
        )
    check_model_source(policy_path, model_args.model_revision)
    if not gold:
        check_model_source(reward_path, script_args.reward_model_revision, "reward_model_path")
    remote = training_args.trust_remote_code
    tokenizer = get_tokenizer(policy_path, revision=model_args.model_revision, trust_remote_code=remote,
                              padding_side="left")  # fmt: skip
    if not gold:
        reward_tokenizer = get_tokenizer(
            reward_path, revision=script_args.reward_model_revision, trust_remote_code=remote
        )
        check_same_tokenizer(tokenizer, reward_tokenizer, policy_path, reward_path)

    def fits(row) -> bool:
        return (
            len(chat_token_ids(tokenizer, row["prompt"], add_generation_prompt=True))
            <= script_args.max_prompt_length
        )

    train, test = load_splits(script_args, "prompts")
    kept_train, kept_test = train.filter(fits), test.filter(fits)
    if len(kept_train) < len(train) and PartialState().is_main_process:
        logger.warning(
            "Dropped %d of %d training prompts longer than max_prompt_length=%d tokens.",
            len(train) - len(kept_train), len(train), script_args.max_prompt_length,
        )  # fmt: skip
    if len(kept_train) == 0:
        raise ConfigError(
            f"Every prompt is longer than max_prompt_length={script_args.max_prompt_length}; raise it."
        )
    train, test = kept_train, kept_test
    policy = get_model(policy_path, model_args, revision=model_args.model_revision, trust_remote_code=remote)
    reward_model = (
        gold_reward_function(script_args.gold_reward_scale)
        if gold
        else get_model(reward_path, model_args, task="reward", revision=script_args.reward_model_revision,
                       trust_remote_code=remote)
    )  # fmt: skip
    # TRL reads the generation length and stop from the policy's generation config.
    policy.generation_config.eos_token_id = tokenizer.eos_token_id
    policy.generation_config.pad_token_id = tokenizer.pad_token_id
    return OnlineRLInputs(tokenizer, policy, reward_model, train, test, get_peft_config(model_args))
