"""Script arguments of the recipes, and the YAML/CLI parser they share.

Each recipe parses `(<Stage>ScriptArguments, <Stage>Config, ModelConfig)` with TRL's
`TrlParser`: the YAML given with `--config` sets defaults, command-line flags override them.
Unknown keys are errors, reported with the file, the key and the closest valid names.
"""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml
from trl import ScriptArguments as TrlScriptArguments
from trl import TrlParser

from pipelines.data.task import RECIPE_TASK_SEED

__all__ = [
    "ConfigError",
    "GoldRewardArguments",
    "PPOScriptArguments",
    "PretrainScriptArguments",
    "RLScriptArguments",
    "RewardScriptArguments",
    "SFTScriptArguments",
    "ScriptArguments",
    "check_pretrain_model_args",
    "parse_recipe_args",
    "recipe_dataclasses",
]


class ConfigError(ValueError):
    """A recipe's YAML or command line is wrong; the message says where and how to fix it."""


@dataclass
class ScriptArguments(TrlScriptArguments):
    """Arguments shared by every stage (TRL's `ScriptArguments` plus ours).

    `dataset_name` is `embedded` (the built-in task, generated from `task_seed`), a local
    JSON/JSONL(.gz)/text file or folder, or a Hub dataset id (pinned with `dataset_revision`).
    """

    dataset_name: str | None = field(
        default="embedded", metadata={"help": "'embedded', a local path or a Hub id."}
    )
    dataset_revision: str | None = field(default=None, metadata={"help": "Hub revision of the dataset."})
    task_seed: int = field(
        default=RECIPE_TASK_SEED, metadata={"help": "Seed of the embedded task's data (not of training)."}
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Keep only this many training rows."}
    )
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep only this many eval rows."})
    tokenizer_name_or_path: str | None = field(
        default=None, metadata={"help": "Tokenizer to use; defaults to the one saved with the model."}
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Replace an output folder that holds something else than an earlier run of this stage."
        },
    )


@dataclass
class PretrainScriptArguments(ScriptArguments):
    """Pretraining builds a new model (unless `model_name_or_path` is given) and its tokenizer."""

    vocab_size: int = field(
        default=2048, metadata={"help": "Tokenizer vocabulary to train (if none is given)."}
    )
    tokenizer_train_samples: int | None = field(
        default=None, metadata={"help": "Train the tokenizer on at most this many texts."}
    )
    hidden_size: int = 256
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int | None = None
    intermediate_size: int | None = None
    max_position_embeddings: int = 1024


def check_pretrain_model_args(model_args: Any) -> None:
    """LoRA and k-bit loading adapt an existing model: pretraining needs `model_name_or_path` for them.

    Without it the recipe builds a new model, whose every weight must be trained; an adapter on
    random weights (or quantised random weights) would learn nothing useful, silently.
    """
    asked = [
        flag for flag in ("use_peft", "load_in_4bit", "load_in_8bit") if getattr(model_args, flag, False)
    ]
    if asked and not model_args.model_name_or_path:
        raise ConfigError(
            f"{', '.join(asked)} set without model_name_or_path: LoRA and quantised loading adapt an existing "
            "model (continued pretraining), but this run builds a new one from the size fields. Set "
            "model_name_or_path to the model to continue from, or remove " + " / ".join(asked) + "."
        )


@dataclass
class SFTScriptArguments(ScriptArguments):
    pass


@dataclass
class RewardScriptArguments(ScriptArguments):
    """The reward model can also learn from the SFT policy's own samples (InstructGPT's rankings).

    `policy_comparison_prompts > 0` samples `policy_samples_per_prompt` answers of the initial model
    (`model_name_or_path`) to that many training prompts, labels every pair with the embedded task's
    gold judge, and adds the pairs to the training set; test prompts give held-out pairs of the same
    kind (`eval_policy_accuracy`). Embedded task only: the gold judge is the labeler.
    """

    policy_comparison_prompts: int = field(
        default=0,
        metadata={"help": "Training prompts to sample policy comparisons on (0: off; embedded only)."},
    )
    policy_samples_per_prompt: int = field(default=4, metadata={"help": "Answers sampled per prompt (K)."})
    policy_comparison_margin: float = field(
        default=0.1, metadata={"help": "Keep pairs whose gold scores differ by at least this much."}
    )

    def __post_init__(self) -> None:  # checked at parse time, before any model is loaded
        if self.policy_comparison_prompts < 0:
            raise ConfigError(
                f"policy_comparison_prompts must be >= 0, got {self.policy_comparison_prompts}."
            )
        if self.policy_comparison_prompts and self.policy_samples_per_prompt < 2:
            raise ConfigError(
                f"policy_samples_per_prompt must be >= 2 to make a pair, got {self.policy_samples_per_prompt}."
            )
        if self.policy_comparison_prompts and self.dataset_name != "embedded":
            raise ConfigError(
                f"policy_comparison_prompts={self.policy_comparison_prompts} needs the embedded task's gold judge "
                f"to label the samples, but dataset_name is {self.dataset_name!r}. Set policy_comparison_prompts: 0."
            )


@dataclass
class GoldRewardArguments(ScriptArguments):
    """`gold_reward` replaces the reward model's score by the embedded task's gold judge: what an RL
    stage would reach with a perfect reward model, the ceiling of the learned one (a diagnostic)."""

    gold_reward: bool = field(
        default=False,
        metadata={
            "help": "Reward answers with the embedded task's gold judge (times gold_reward_scale) instead of the "
            "reward model: what a perfect reward model would give on the same budget. PPO's value model still "
            "starts from value_model_path (default: reward_model_path)."
        },
    )
    gold_reward_scale: float = field(
        default=4.0, metadata={"help": "The reward is this times the gold score."}
    )

    def __post_init__(self) -> None:  # checked at parse time, before any model is loaded
        if self.gold_reward and self.dataset_name != "embedded":
            raise ConfigError(
                f"gold_reward needs the embedded task's prompts, which its gold judge scores, but dataset_name is "
                f"{self.dataset_name!r}. Set dataset_name: embedded or gold_reward: false."
            )
        if self.gold_reward and self.gold_reward_scale <= 0:
            raise ConfigError(
                f"gold_reward_scale must be > 0, got {self.gold_reward_scale}: the reward is it times the gold score."
            )


@dataclass
class RLScriptArguments(GoldRewardArguments):
    """Online RL (RLOO, GRPO): a policy from `model_name_or_path`, a reward model from here (or the
    gold judge, `gold_reward`)."""

    reward_model_path: str | None = field(default=None, metadata={"help": "Reward model folder or Hub id."})
    reward_model_revision: str | None = None
    max_prompt_length: int = field(
        default=128, metadata={"help": "Longer prompts are dropped (and counted)."}
    )


@dataclass
class PPOScriptArguments(GoldRewardArguments):
    """PPO: policy (and reference) from `model_name_or_path`, reward and value from the reward stage.

    `ref_model_path` keeps the reference apart from the policy's starting point: a policy continued
    from an earlier PPO run stays penalised for drifting from SFT, not from that run.

    `gold_reward` (`GoldRewardArguments`) scores with the gold judge; the value model still starts
    from `value_model_path`.

    `ptx_coef > 0` turns PPO into InstructGPT's PPO-ptx: each update adds `ptx_coef` times the
    language-modelling loss on pretraining text (`ptx_dataset_name`) to the PPO loss.
    """

    value_model_path: str | None = field(default=None, metadata={"help": "Defaults to the reward model."})
    ref_model_path: str | None = field(
        default=None,
        metadata={
            "help": "Reference policy of the KL penalty; defaults to model_name_or_path. Point it at the SFT "
            "model when the policy continues from an earlier RL run (an iterated round)."
        },
    )
    ref_model_revision: str | None = None
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow code from model repos to run (PPOConfig has no such field)."}
    )
    value_model_revision: str | None = None
    reward_model_revision: str | None = None
    max_prompt_length: int = field(
        default=128, metadata={"help": "Longer prompts are dropped (and counted)."}
    )
    value_learning_rate: float | None = field(
        default=None,
        metadata={
            "help": "Learning rate of the value model (its own optimizer group, same schedule); defaults to "
            "learning_rate. OpenRLHF's critic_learning_rate and DeepSpeed-Chat's critic lr."
        },
    )
    ptx_coef: float = field(default=0.0, metadata={"help": "gamma of PPO-ptx; 0 is plain PPO."})
    ptx_dataset_name: str | None = field(
        default="embedded", metadata={"help": "Pretraining text for PPO-ptx."}
    )
    ptx_batch_size: int = field(default=8, metadata={"help": "Pretraining sequences per PPO micro-batch."})
    ptx_max_length: int = field(
        default=128, metadata={"help": "Tokens per pretraining sequence for PPO-ptx."}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.value_learning_rate is not None and self.value_learning_rate < 0:
            raise ConfigError(
                f"value_learning_rate must be >= 0, got {self.value_learning_rate}. Leave it unset to train the "
                "value model at learning_rate."
            )


def recipe_dataclasses(stage: str) -> tuple[type, ...]:
    """`(ScriptArguments, <Stage>Config, ModelConfig)` that `recipes/<stage>.py` parses.

    `ppo_ptx` is PPO; `ppo_gold`, `rloo_gold` and `grpo_gold` are their stage against the gold judge.
    """
    from trl import GRPOConfig, ModelConfig, RewardConfig, RLOOConfig, SFTConfig

    from pipelines.ppo import PPOConfig

    table = {
        "pretrain": (PretrainScriptArguments, SFTConfig),
        "sft": (SFTScriptArguments, SFTConfig),
        "reward": (RewardScriptArguments, RewardConfig),
        "ppo": (PPOScriptArguments, PPOConfig),
        "ppo_ptx": (PPOScriptArguments, PPOConfig),
        "ppo_gold": (PPOScriptArguments, PPOConfig),
        "rloo": (RLScriptArguments, RLOOConfig),
        "rloo_gold": (RLScriptArguments, RLOOConfig),
        "grpo": (RLScriptArguments, GRPOConfig),
        "grpo_gold": (RLScriptArguments, GRPOConfig),
    }
    if stage not in table:
        raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(table)}.")
    return (*table[stage], ModelConfig)


def parse_recipe_args(dataclass_types: tuple[type, ...], args: list[str] | None = None) -> tuple[Any, ...]:
    """Parse `--config recipe.yaml` plus command-line overrides into the dataclasses.

    Unknown YAML keys and command-line flags raise `ConfigError` naming the file (or the command
    line), the key and close matches, before anything is loaded (TRL's own message names neither
    the file nor a fix, and argparse would silently accept an abbreviated flag).
    """
    args = list(sys.argv[1:] if args is None else args)
    if "--config" in args:
        path = Path(args[args.index("--config") + 1])
        if not path.is_file():
            raise ConfigError(f"--config {path}: no such file.")
        config = yaml.safe_load(path.read_text())
        if not isinstance(config, dict):
            raise ConfigError(
                f"{path}: expected a YAML mapping of argument names to values, got {type(config).__name__}."
            )
        known = {f.name for cls in dataclass_types for f in fields(cls)} | {"env"}
        unknown = sorted(set(config) - known)
        if unknown:
            hints = []
            for key in unknown:
                close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
                hints.append(
                    f"  {key!r}" + (f" (did you mean {', '.join(map(repr, close))}?)" if close else "")
                )
            raise ConfigError(
                f"{path}: unknown key(s):\n"
                + "\n".join(hints)
                + "\nFix the spelling or remove the key; valid keys "
                f"are the fields of {', '.join(cls.__name__ for cls in dataclass_types)}."
            )
    parser = TrlParser(dataclass_types)
    _check_flags(parser, args)
    return tuple(parser.parse_args_and_config(args=args))


def _check_flags(parser: TrlParser, args: list[str]) -> None:
    """Every `--flag` on the command line must be spelt out in full and exist."""
    valid = set(parser._option_string_actions) | {"--config"}
    unknown = [a.split("=", 1)[0] for a in args if a.startswith("--") and a.split("=", 1)[0] not in valid]
    if unknown:
        hints = []
        for flag in unknown:
            close = difflib.get_close_matches(flag, [v for v in valid if "-" not in v[2:]], n=3, cutoff=0.6)
            hints.append(f"  {flag}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
        raise ConfigError(
            "unknown command-line flag(s):\n"
            + "\n".join(hints)
            + "\nFix the spelling (flags are the full field "
            f"names of {', '.join(cls.__name__ for cls in parser.dataclass_types)})."
        )
