"""Inputs of the online RL recipes (PPO, RLOO, GRPO): every model source, scalar head and tokenizer
is checked before any weights load, then the models and prompts load. One loader per trainer's
needs (PPO: four models and tokenized prompts; RLOO and GRPO: two models and conversational
prompts), not one copy per recipe."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from datasets import Dataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from pipelines.configs import ConfigError
from pipelines.data import get_dataset
from pipelines.loading import (
    check_model_source,
    check_reward_head,
    check_same_tokenizer,
    get_model,
    get_peft_config,
    get_tokenizer,
    load_splits,
    reference_source,
)
from pipelines.preprocessing import drop_long_prompts, pack_pretraining_text, tokenize_prompts
from pipelines.rewards import JudgeRewardModel, gold_reward_function

__all__ = ["OnlineRLInputs", "PPOInputs", "check_sources", "load_online_rl_inputs", "load_ppo_inputs"]


Source = tuple[str, str | None]  # (folder or Hub id, revision)


def check_sources(
    sources: dict[str, Source], heads: Iterable[str] = (), trust_remote_code: bool = False
) -> None:
    """Fail before any weights load: each model source must exist, and those named in `heads` must
    have a scalar head (reward and value models).

    `sources` maps the field a user set, which the error names, to its source. A source named by
    several fields (by default PPO's reference is the policy and its value model the reward model)
    is looked up once, under the first field that names it; its head is checked once, under the
    first of `heads` that names it.
    """
    looked_up: set[Source] = set()
    for field, source in sources.items():
        if source not in looked_up:
            looked_up.add(source)
            check_model_source(*source, field)
    head_fields: dict[Source, str] = {}
    for field in heads:
        head_fields.setdefault(sources[field], field)
    for (path, revision), field in head_fields.items():
        check_reward_head(path, revision, trust_remote_code, field)


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
    remote = training_args.trust_remote_code
    sources = {"model_name_or_path": (policy_path, model_args.model_revision)}
    if not gold:
        sources["reward_model_path"] = (reward_path, script_args.reward_model_revision)
    check_sources(sources, heads=[] if gold else ["reward_model_path"], trust_remote_code=remote)
    tokenizer = get_tokenizer(script_args.tokenizer_name_or_path or policy_path, revision=model_args.model_revision,
                              trust_remote_code=remote, padding_side="left")  # fmt: skip
    if not gold:
        reward_tokenizer = get_tokenizer(
            reward_path, revision=script_args.reward_model_revision, trust_remote_code=remote
        )
        check_same_tokenizer(tokenizer, reward_tokenizer, policy_path, reward_path)

    train, test = load_splits(script_args, "prompts")
    train = drop_long_prompts(train, tokenizer, script_args.max_prompt_length, "train")
    test = drop_long_prompts(test, tokenizer, script_args.max_prompt_length, "test")
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


@dataclass
class PPOInputs:
    tokenizer: PreTrainedTokenizerBase
    policy: PreTrainedModel
    ref_model: PreTrainedModel | None  # None with PEFT: the policy with its adapter switched off
    reward_model: PreTrainedModel | JudgeRewardModel  # the gold judge with `gold_reward`
    value_model: PreTrainedModel
    train: Dataset  # `input_ids` of the prompts, each ending with the assistant turn's opening
    test: Dataset
    ptx: Dataset | None  # pretraining blocks for PPO-ptx (`ptx_coef > 0`)
    peft_config: Any


def load_ppo_inputs(script_args, training_args, model_args) -> PPOInputs:
    """PPO's four models and its prompts.

    Policy and reference start from `model_name_or_path` (`ref_model_path` sets the reference
    apart); reward and value models from `reward_model_path` (`value_model_path` sets the value
    model apart). Sources, heads and tokenizers are checked before any weights load.
    """
    policy_path = model_args.model_name_or_path
    reward_path = training_args.reward_model_path  # a PPOConfig field, unlike RLOO's and GRPO's
    value_path = script_args.value_model_path or reward_path
    ref_path, ref_revision = reference_source(
        script_args.ref_model_path, script_args.ref_model_revision, model_args
    )
    remote = script_args.trust_remote_code
    check_sources(
        {
            "model_name_or_path": (policy_path, model_args.model_revision),
            "ref_model_path": (ref_path, ref_revision),
            "reward_model_path": (reward_path, script_args.reward_model_revision),
            "value_model_path": (value_path, script_args.value_model_revision),
        },
        heads=["reward_model_path", "value_model_path"],
        trust_remote_code=remote,
    )
    # PPO generates on the right of the prompt: left padding is required.
    tokenizer = get_tokenizer(
        script_args.tokenizer_name_or_path or policy_path,
        revision=model_args.model_revision,
        trust_remote_code=remote,
        padding_side="left",
    )
    check_same_tokenizer(
        tokenizer,
        get_tokenizer(reward_path, revision=script_args.reward_model_revision, trust_remote_code=remote),
        policy_path,
        reward_path,
    )
    if ref_path != policy_path:  # the KL penalty compares the two models' log-probs of the same ids
        check_same_tokenizer(
            tokenizer,
            get_tokenizer(ref_path, revision=ref_revision, trust_remote_code=remote),
            policy_path,
            ref_path,
            role="reference model",
            fix="point ref_model_path at the SFT model the policy descends from",
        )
    if value_path != reward_path:  # the value model scores the same ids, token by token
        check_same_tokenizer(
            tokenizer,
            get_tokenizer(value_path, revision=script_args.value_model_revision, trust_remote_code=remote),
            policy_path,
            value_path,
            role="value model",
            fix="point value_model_path at a reward model trained from the policy's SFT checkpoint",
        )
    train, test = load_splits(script_args, "prompts")
    train = tokenize_prompts(train, tokenizer, script_args.max_prompt_length, "train")
    test = tokenize_prompts(test, tokenizer, script_args.max_prompt_length, "test")
    ptx = None
    if script_args.ptx_coef > 0:
        text = get_dataset(script_args.ptx_dataset_name, "pretrain", seed=script_args.task_seed)["train"]
        ptx = pack_pretraining_text(text, tokenizer, script_args.ptx_max_length)

    peft_config = get_peft_config(model_args)
    policy = get_model(policy_path, model_args, revision=model_args.model_revision, trust_remote_code=remote)
    ref_model = (
        None
        if peft_config
        else get_model(ref_path, model_args, revision=ref_revision, trust_remote_code=remote)
    )
    reward_model = (
        JudgeRewardModel(tokenizer, scale=script_args.gold_reward_scale)  # the ceiling: a perfect reward model
        if script_args.gold_reward
        else get_model(reward_path, model_args, task="reward", revision=script_args.reward_model_revision,
                       trust_remote_code=remote)
    )  # fmt: skip
    value_model = get_model(
        value_path,
        model_args,
        task="reward",
        revision=script_args.value_model_revision,
        trust_remote_code=remote,
    )
    return PPOInputs(tokenizer, policy, ref_model, reward_model, value_model, train, test, ptx, peft_config)
