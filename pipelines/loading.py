"""Small named loaders shared by every recipe: tokenizer, model, PEFT config, model source check.

Stage differences are arguments (`task="causal"` or `task="reward"`), not copies.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from trl import ModelConfig, get_quantization_config
from trl import get_peft_config as trl_get_peft_config

from pipelines.configs import ConfigError

__all__ = [
    "check_model_source",
    "check_reward_head",
    "check_same_tokenizer",
    "get_model",
    "get_peft_config",
    "get_tokenizer",
    "load_splits",
    "reference_source",
]

Task = Literal["causal", "reward"]


def check_model_source(
    name_or_path: str, revision: str | None = None, field_name: str = "model_name_or_path"
) -> None:
    """Fail fast, before any training, when a model is neither a local folder nor a reachable Hub repo."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
            raise ConfigError(
                f"{field_name}={name_or_path!r} is a folder without config.json or adapter_config.json: "
                "it holds no saved model. Point it at the output folder of an earlier stage (the folder with "
                "config.json), or at a Hub id."
            )
        return
    looks_local = (
        name_or_path.startswith((".", "/", "~"))
        or name_or_path.count("/") > 1
        or os.sep + os.sep in name_or_path
    )
    if looks_local:
        raise ConfigError(
            f"{field_name}={name_or_path!r}: no such folder. Run the stage that writes it first, or fix the path."
        )
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import (
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if constants.is_offline_mode():  # a repo pulled earlier (`instructgpt pull`) loads from the local cache
        if _in_hub_cache(name_or_path, revision):
            return
        pull = f"instructgpt pull {name_or_path}" + (f" --revision {revision}" if revision else "")
        raise ConfigError(
            f"{field_name}={name_or_path!r} is not a local folder and the Hub cannot be reached (offline mode is "
            f"enabled: HF_HUB_OFFLINE=1), and the Hugging Face cache does not hold it at revision "
            f"{revision or 'main'!r}. Pull it first with `{pull}` (online), or unset HF_HUB_OFFLINE."
        )
    try:
        HfApi().model_info(name_or_path, revision=revision)
    except RevisionNotFoundError as err:
        raise ConfigError(
            f"{field_name}={name_or_path!r}: revision {revision!r} does not exist on the Hub. "
            "List the repo's branches and tags, or drop the revision."
        ) from err
    except RepositoryNotFoundError as err:
        raise ConfigError(
            f"{field_name}={name_or_path!r} is neither a local folder nor a Hub repo you can access "
            "(for a private repo, log in with `hf auth login` or set HF_TOKEN)."
        ) from err
    except (OfflineModeIsEnabled, HfHubHTTPError, OSError) as err:
        raise ConfigError(
            f"{field_name}={name_or_path!r} is not a local folder and the Hub cannot be reached ({err}). "
            "Pull it first with `instructgpt pull`, or fix the path."
        ) from err


def _in_hub_cache(repo_id: str, revision: str | None) -> bool:
    """Whether the Hugging Face cache holds a model (or adapter) of `repo_id` at `revision` (default main)."""
    from huggingface_hub import try_to_load_from_cache

    return any(
        isinstance(try_to_load_from_cache(repo_id, name, revision=revision), str)
        for name in ("config.json", "adapter_config.json")
    )


def check_reward_head(
    name_or_path: str,
    revision: str | None = None,
    trust_remote_code: bool = False,
    field_name: str = "reward_model_path",
) -> None:
    """Fail before any weights are loaded when a saved sequence classifier has more than one output.

    A causal checkpoint is fine (only its new `score` head is initialised, with one output); a
    classifier saved with `num_labels != 1` would otherwise end in a size-mismatch error.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir() and not (path / "config.json").is_file():
        return  # a LoRA adapter folder: its base model's config is checked when it loads
    config = AutoConfig.from_pretrained(name_or_path, revision=revision, trust_remote_code=trust_remote_code)
    architectures = getattr(config, "architectures", None) or []
    classifier = next((a for a in architectures if a.endswith("ForSequenceClassification")), None)
    if classifier and config.num_labels != 1:
        raise ConfigError(
            f"{field_name}={name_or_path!r} is a {classifier} with a {config.num_labels}-way head "
            f"(num_labels={config.num_labels}); reward and value models need a scalar head (num_labels=1). "
            "Point it at the output of recipes/reward.py, or at a causal checkpoint to start a new head from."
        )


def get_tokenizer(
    name_or_path: str,
    *,
    revision: str | None = None,
    trust_remote_code: bool = False,
    padding_side: Literal["left", "right"] = "right",
    require_chat_template: bool = True,
) -> PreTrainedTokenizerBase:
    """Load a tokenizer and check what the trainers need: a pad token (and a chat template)."""
    tokenizer = AutoTokenizer.from_pretrained(
        name_or_path, revision=revision, trust_remote_code=trust_remote_code
    )
    if tokenizer.pad_token is None:
        raise ConfigError(
            f"The tokenizer of {name_or_path!r} has no pad token. Batches cannot be padded without one: add one "
            "(e.g. `tokenizer.add_special_tokens({'pad_token': '<|pad|>'})`, then resize the model's embeddings) "
            "and save it, or set `tokenizer_name_or_path` to a tokenizer that has one."
        )
    if require_chat_template and not tokenizer.chat_template:
        raise ConfigError(
            f"The tokenizer of {name_or_path!r} has no chat template, and this stage formats conversations. "
            "Use a tokenizer trained by `recipes/pretrain.py` (it has one), or set `chat_template_path`."
        )
    tokenizer.padding_side = padding_side
    return tokenizer


def check_same_tokenizer(
    a: PreTrainedTokenizerBase,
    b: PreTrainedTokenizerBase,
    a_name: str,
    b_name: str,
    role: str = "reward and value models",
    fix: str = "train the reward model from the same SFT checkpoint as the policy",
) -> None:
    """Models fed the same token ids must share a vocabulary (policy, reward, value, reference)."""
    if a.get_vocab() != b.get_vocab() or a.pad_token_id != b.pad_token_id or a.eos_token_id != b.eos_token_id:
        raise ConfigError(
            f"The tokenizers of {a_name!r} and {b_name!r} differ (vocabulary, pad or EOS token). PPO feeds the "
            f"policy's token ids to the {role}, so they must come from the same tokenizer: {fix}."
        )


def reference_source(
    ref_model_path: str | None, ref_model_revision: str | None, model_args: ModelConfig
) -> tuple[str, str | None]:
    """`(path, revision)` of PPO's frozen reference: `ref_model_path`, else the policy's own start.

    With `use_peft` the reference is the policy with its adapter switched off, which is
    `model_name_or_path` by construction, so a separate `ref_model_path` is refused.
    """
    if ref_model_path is None:
        return model_args.model_name_or_path, model_args.model_revision
    if model_args.use_peft:
        raise ConfigError(
            f"ref_model_path={ref_model_path!r} with use_peft: with an adapter the reference is the policy with "
            "its adapter switched off, which is model_name_or_path. Drop ref_model_path, or train without "
            "use_peft (merge an earlier adapter into its base model first)."
        )
    return ref_model_path, ref_model_revision


def get_model(
    name_or_path: str,
    model_args: ModelConfig,
    *,
    task: Task = "causal",
    revision: str | None = None,
    trust_remote_code: bool = False,
    num_labels: int = 1,
) -> PreTrainedModel:
    """Load a causal LM (`task="causal"`) or a scalar-head sequence classifier (`task="reward"`).

    dtype, attention implementation and 4/8-bit quantization come from TRL's `ModelConfig`
    (`dtype`, `attn_implementation`, `load_in_4bit`/`load_in_8bit`...). A reward model built
    from a causal checkpoint initialises only its `score` head.
    """
    dtype = model_args.dtype
    kwargs = {
        "revision": revision,
        "trust_remote_code": trust_remote_code,
        "dtype": getattr(torch, dtype) if dtype not in (None, "auto") else dtype,
    }
    if model_args.attn_implementation:
        kwargs["attn_implementation"] = model_args.attn_implementation
    quantization_config = get_quantization_config(model_args)
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
        if torch.cuda.is_available():
            from accelerate import PartialState

            kwargs["device_map"] = {"": PartialState().local_process_index}  # one full copy per process
    if task == "reward":
        check_reward_head(name_or_path, revision, trust_remote_code, field_name="model")
        model = AutoModelForSequenceClassification.from_pretrained(
            name_or_path, num_labels=num_labels, **kwargs
        )
        if model.config.num_labels != 1:
            raise ConfigError(
                f"{name_or_path!r} has a {model.config.num_labels}-way head; reward and value models need a scalar "
                "head (num_labels=1). Train it with recipes/reward.py."
            )
    else:
        model = AutoModelForCausalLM.from_pretrained(name_or_path, **kwargs)
    if quantization_config is not None and not torch.cuda.is_available():
        _disable_cpu_4bit_repacking(model)
    if model.config.pad_token_id is None:
        raise ConfigError(
            f"{name_or_path!r}: config.pad_token_id is not set; set it to the tokenizer's pad token id."
        )
    return model


def _disable_cpu_4bit_repacking(model: PreTrainedModel) -> None:
    """Keep bitsandbytes from repacking 4-bit weights for CPU inference (CPUs with AVX512-BF16).

    An eval-mode forward (evaluation, `generate`) without gradients converts each `Linear4bit`
    weight in place to a layout whose matmul has no backward, and never converts it back: any
    training after that (QLoRA after a mid-run evaluation, an eval-mode `generate`) silently gets
    zero gradients through those layers. The unpacked kernel is slower but differentiable.
    """
    try:
        from bitsandbytes.nn import Linear4bit
    except ImportError:  # pragma: no cover - quantization_config already required bitsandbytes
        return
    for module in model.modules():
        if isinstance(module, Linear4bit):
            module.support_avx512bf16_for_cpu = False


def get_peft_config(model_args: ModelConfig, task: Task = "causal"):
    """TRL's LoRA config, with the task type a reward/value model needs.

    `SEQ_CLS` makes PEFT train and save the `score` head; without it the head stays a frozen
    random projection and the reward model learns nothing.
    """
    if not model_args.use_peft:
        return None
    if task == "reward":
        model_args.lora_task_type = "SEQ_CLS"
    config = trl_get_peft_config(model_args)
    if config.target_modules is None:
        config.target_modules = "all-linear"
    return config


def load_splits(script_args, kind: str):
    """The train and test splits of `script_args.dataset_name` as a `kind` dataset, validated.

    `kind` is "pretrain", "sft", "preference" or "prompts"; `max_train_samples` and
    `max_eval_samples` keep the first rows of each split.
    """
    from pipelines.data import get_dataset

    dataset = get_dataset(
        script_args.dataset_name, kind, config=script_args.dataset_config,
        revision=script_args.dataset_revision, seed=script_args.task_seed,
    )  # fmt: skip
    splits = []
    for name, limit in ((script_args.dataset_train_split, script_args.max_train_samples),
                        (script_args.dataset_test_split, script_args.max_eval_samples)):  # fmt: skip
        if name not in dataset:
            raise ConfigError(
                f"{script_args.dataset_name!r} has no split {name!r} (it has: {', '.join(dataset)}). "
                "Set dataset_train_split / dataset_test_split to one of those."
            )
        split = dataset[name]
        splits.append(split.select(range(min(limit, len(split)))) if limit else split)
    return splits[0], splits[1]
