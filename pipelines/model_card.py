"""Model cards for stage outputs, built from the `stage_info.json` the recipes write.

`stage_info.json` schema (written by the recipes)::

    {"stage": "sft", "recipe": "recipes/sft.py", "config": {...},
     "base_model": {"name_or_path": "outputs/pretrain", "revision": null},
     "datasets": [{"name": "embedded", "kind": "sft", "revision": null}],
     "metrics": {"eval_loss": 1.23, ...}, "seed": 42, "versions": {"transformers": "..."},
     "hub": {"repo_id": null, "revision": null}}

The card's YAML metadata (license, base_model, datasets, tags, library_name, pipeline_tag, model-index) is
built with `ModelCardData`/`EvalResult`; the prose says what the model is, how it was trained (recipe and
config, secrets redacted), where it started from, how to load it, and its limitations.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from pipelines.hub import redact_secrets

__all__ = ["STAGE_TAGS", "build_model_card", "write_model_card"]

logger = logging.getLogger(__name__)

# stage name in stage_info.json -> the tag used on the Hub
STAGE_TAGS = {
    "pretrain": "pretraining", "pretraining": "pretraining",
    "sft": "sft",
    "reward": "reward-model", "reward_model": "reward-model", "reward-model": "reward-model", "rm": "reward-model",
    "ppo": "ppo", "rloo": "rloo", "grpo": "grpo", "rlhf": "rlhf",
}  # fmt: skip
_RL_STAGES = {"ppo", "rloo", "grpo", "rlhf"}
_STAGE_TITLES = {
    "pretraining": "a small causal language model pretrained from scratch",
    "sft": "a causal language model fine-tuned on demonstrations (supervised fine-tuning, SFT)",
    "reward-model": "a reward model: it scores a prompt and response with one scalar (higher is preferred)",
    "ppo": "a policy fine-tuned with reinforcement learning from human feedback (PPO against a reward model)",
    "rloo": "a policy fine-tuned with reinforcement learning from human feedback (RLOO)",
    "grpo": "a policy fine-tuned with reinforcement learning from human feedback (GRPO)",
    "rlhf": "a policy fine-tuned with reinforcement learning from human feedback",
}
_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _hub_id(name: str | None) -> bool:
    """Whether `name` looks like a Hub repo id (and is not an existing local path)."""
    return bool(name) and bool(_REPO_ID_RE.match(str(name))) and not Path(str(name)).exists()


def _source_line(source: dict | None) -> str:
    """One line naming where a model or dataset came from: Hub repo at a commit, or a local path."""
    if not source or not source.get("name_or_path", source.get("name")):
        return "unknown"
    name = source.get("name_or_path") or source.get("name")
    revision = source.get("revision")
    hub = source.get("hub") if isinstance(source.get("hub"), dict) else None
    if revision and _hub_id(name):  # a local folder is not a Hub repo, whatever `model_revision` said
        return f"`{name}` at revision `{revision}` (Hub)"
    if hub and hub.get("repo_id"):
        at = f" at revision `{hub['revision']}`" if hub.get("revision") else ""
        return f"the local folder `{name}`, pushed as `{hub['repo_id']}`{at}"
    return f"the local folder `{name}`"


def _pushed_as(name_or_path: str) -> dict:
    """`{"hub": {"repo_id", "revision"}}` when `name_or_path` is a local stage folder that was pushed."""
    path = Path(str(name_or_path))
    hub = _read_json(path / "stage_info.json").get("hub") if path.is_dir() else None
    if isinstance(hub, dict) and hub.get("repo_id"):
        return {"hub": {"repo_id": hub["repo_id"], "revision": hub.get("revision")}}
    return {}


def _adapter_base_ref(adapter: dict, base: dict, base_name: str | None) -> str:
    """The arguments naming an adapter's base model in the card's snippet: `"repo", revision="sha"` when
    known (the adapter was trained on that commit; `main` may have moved on since)."""
    name = adapter.get("base_model_name_or_path") or base_name
    revision = adapter.get("revision")
    hub = base.get("hub") if isinstance(base.get("hub"), dict) else {}
    if not revision and name == base.get("name_or_path"):
        if _hub_id(name):
            revision = base.get("revision")
        elif hub.get("repo_id"):  # a local folder: name the repo it was pushed as
            name, revision = hub["repo_id"], hub.get("revision")
    return f'"{name}"' + (f', revision="{revision}"' if revision else "")


def _metric_name(key: str) -> str:
    return key[len("eval_") :] if key.startswith("eval_") else key


def _policy_comparison_lines(output_dir: Path) -> list[str]:
    """The reward stage's comparisons of the policy's own samples, kept in its folder (and so in the repo)."""
    from pipelines.comparisons import POLICY_COMPARISONS_FILE

    counts = {}
    for split in ("train", "test"):
        path = output_dir / f"{split}_{POLICY_COMPARISONS_FILE}"
        if path.is_file():
            with path.open(encoding="utf-8") as f:
                counts[split] = sum(1 for line in f if line.strip())
    if not counts:
        return []
    parts = [
        f"{counts[split]:,} {role} (`{split}_{POLICY_COMPARISONS_FILE}`)"
        for split, role in (("train", "trained on"), ("test", "held out for `eval_policy_accuracy`"))
        if split in counts
    ]
    return [
        "- Comparisons of the SFT policy's own samples, labelled by the task's gold judge: "
        + ", ".join(parts)
        + "; the files are saved with this model (the training labels carry the task's label noise)."
    ]


def _reward_lines(config: dict) -> list[str]:
    """What an RL policy was optimised against: a reward model, or the gold judge itself (`gold_reward`)."""
    if config.get("gold_reward"):
        return [
            f"- Reward: the embedded task's gold judge x {config.get('gold_reward_scale')} (`gold_reward`), not a "
            "learned reward model: this policy measures what a perfect reward model would give its RL stage."
        ]
    lines = []
    for key, role in (("reward_model_path", "Reward model"), ("ref_model_path", "KL reference")):
        if config.get(key):
            revision = config.get(key.replace("_path", "_revision"))
            lines.append(f"- {role}: `{config[key]}`" + (f" at revision `{revision}`" if revision else ""))
    return lines


def build_model_card(
    output_dir: str | os.PathLike, *, repo_id: str | None = None, license: str = "apache-2.0"
) -> ModelCard:
    """Build the model card of the stage output in `output_dir` (reads `stage_info.json`, `config.json`,
    `adapter_config.json`). Secrets in the config are redacted."""
    output_dir = Path(output_dir)
    info = redact_secrets(_read_json(output_dir / "stage_info.json"))
    if not info:
        logger.warning("%s has no stage_info.json: the model card will lack training details", output_dir)
    config = _read_json(output_dir / "config.json")
    adapter = _read_json(output_dir / "adapter_config.json")
    is_adapter = bool(adapter)
    stage_raw = str(info.get("stage") or "unknown")
    stage = STAGE_TAGS.get(stage_raw.lower(), stage_raw.lower())
    architectures = config.get("architectures") or []
    is_classifier = (
        stage == "reward-model"
        or any(a.endswith("ForSequenceClassification") for a in architectures)
        or str(adapter.get("task_type", "")).endswith("SEQ_CLS")
    )
    remote_code = bool(config.get("auto_map")) or any(output_dir.glob("modeling_*.py"))
    name = repo_id or output_dir.resolve().name

    base = info.get("base_model") if isinstance(info.get("base_model"), dict) else {}
    if base.get("name_or_path") and not isinstance(base.get("hub"), dict):
        base = {**base, **_pushed_as(base["name_or_path"])}
    base_name = base.get("name_or_path") or adapter.get("base_model_name_or_path")
    base_hub = base.get("hub") if isinstance(base.get("hub"), dict) else {}
    # Sources are from the Hub when a revision was recorded (`resolve_source` gives None for local folders).
    if base.get("revision") and _hub_id(base.get("name_or_path")):
        base_model_id = base["name_or_path"]
    elif base_hub.get("repo_id"):
        base_model_id = base_hub["repo_id"]
    elif not base and adapter.get("revision") and _hub_id(base_name):
        base_model_id = base_name
    else:
        base_model_id = None
    datasets = [d for d in info.get("datasets") or [] if isinstance(d, dict)]
    dataset_ids = [d["name"] for d in datasets if d.get("revision") and _hub_id(d.get("name"))]

    tags = ["instructgpt-pipelines", stage]
    if stage in _RL_STAGES:
        tags += ["rlhf"] if stage != "rlhf" else []
    if stage != "pretraining":
        tags.append("trl")
    if remote_code:
        tags.append("trust_remote_code")
    if is_adapter:
        tags += ["peft", "lora"] if str(adapter.get("peft_type", "")).upper() == "LORA" else ["peft"]
    if is_classifier:
        tags.append("reward-model" if stage == "reward-model" else "text-classification")
    tags = list(dict.fromkeys(t for t in tags if t and t != "unknown"))

    pipeline_tag = "text-classification" if is_classifier else "text-generation"
    metrics = {
        k: v
        for k, v in (info.get("metrics") or {}).items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    eval_dataset = datasets[-1]["name"] if datasets else "unknown"
    eval_results = [
        EvalResult(
            task_type=pipeline_tag,
            dataset_type=str(eval_dataset),
            dataset_name=str(eval_dataset),
            dataset_revision=(datasets[-1].get("revision") if datasets else None),
            metric_type=_metric_name(key),
            metric_name=key,
            metric_value=value,
        )
        for key, value in metrics.items()
    ]
    card_data = ModelCardData(
        license=license,
        base_model=base_model_id,
        datasets=dataset_ids or None,
        tags=tags,
        library_name="peft" if is_adapter else "transformers",
        pipeline_tag=pipeline_tag,
        model_name=name,
        eval_results=eval_results or None,
    )
    body = _body(
        name=name, stage=stage, stage_raw=stage_raw, info=info, base=base, base_name=base_name,
        datasets=datasets, metrics=metrics, is_adapter=is_adapter, is_classifier=is_classifier,
        remote_code=remote_code, adapter=adapter,
        lineage=_policy_comparison_lines(output_dir) + _reward_lines(info.get("config") or {}),
    )  # fmt: skip
    content = f"---\n{card_data.to_yaml()}\n---\n\n{body}"
    return ModelCard(redact_secrets(content))


def _body(
    *, name: str, stage: str, stage_raw: str, info: dict, base: dict, base_name: str | None, datasets: list,
    metrics: dict, is_adapter: bool, is_classifier: bool, remote_code: bool, adapter: dict, lineage: list[str],
) -> str:  # fmt: skip
    what = _STAGE_TITLES.get(stage, f"the output of the `{stage_raw}` stage")
    lines = [f"# {name}", ""]
    lines.append(
        f"This is {what}, produced by the `{stage_raw}` stage of "
        "[instructgpt-pipelines](https://github.com/instructgpt-pipelines/instructgpt-pipelines), the InstructGPT "
        "recipe (pretraining -> SFT -> reward model -> PPO) on the Hugging Face stack."
        + (" It is a PEFT adapter: load it on top of its base model." if is_adapter else "")
    )
    lines += ["", "## Lineage", ""]
    lines.append(
        f"- Started from: {_source_line(base) if base else (f'`{base_name}`' if base_name else 'scratch')}"
    )
    for d in datasets:
        rev = f" at revision `{d['revision']}`" if d.get("revision") else ""
        lines.append(f"- Dataset ({d.get('kind', 'data')}): `{d.get('name')}`{rev}")
    lines += lineage
    hub = info.get("hub") if isinstance(info.get("hub"), dict) else {}
    if hub.get("repo_id"):
        lines.append(
            f"- Published as: `{hub['repo_id']}`"
            + (f" (branch `{hub['branch']}`)" if hub.get("branch") else "")
        )

    lines += ["", "## Training", ""]
    if info.get("recipe"):
        lines.append(
            f"Recipe: `{info['recipe']}`"
            + (f", seed {info['seed']}." if info.get("seed") is not None else ".")
        )
    if info.get("config"):
        config_yaml = yaml.safe_dump(info["config"], sort_keys=False, allow_unicode=True).strip()
        lines += ["", "Configuration (secrets redacted):", "", "```yaml", config_yaml, "```"]
    versions = info.get("versions") or {}
    if versions:
        lines += ["", "Library versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + "."]

    if metrics:
        lines += ["", "## Evaluation", "", "| metric | value |", "|---|---|"]
        lines += [
            f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items()
        ]

    lines += ["", "## How to use", "", "```python"]
    # AutoTokenizer reads the model's config first: without the flag a custom config means a prompt.
    remote = ", trust_remote_code=True" if remote_code or not is_adapter else ""
    if is_adapter:
        auto = "AutoModelForSequenceClassification" if is_classifier else "AutoModelForCausalLM"
        lines += [
            "from peft import PeftModel",
            f"from transformers import {auto}, AutoTokenizer",
            "",
            f"base = {auto}.from_pretrained({_adapter_base_ref(adapter, base, base_name)}, trust_remote_code=True)",
            f'model = PeftModel.from_pretrained(base, "{name}")',
            f'tokenizer = AutoTokenizer.from_pretrained("{name}")',
        ]
    elif is_classifier:
        lines += [
            "import torch",
            "from transformers import AutoModelForSequenceClassification, AutoTokenizer",
            "",
            f'model = AutoModelForSequenceClassification.from_pretrained("{name}"{remote})',
            f'tokenizer = AutoTokenizer.from_pretrained("{name}"{remote})',
            'text = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"},',
            '                                      {"role": "assistant", "content": "Hello!"}], tokenize=False)',
            "with torch.no_grad():",
            '    reward = model(**tokenizer(text, return_tensors="pt")).logits[0, 0].item()',
        ]
    else:
        lines += [
            "from transformers import AutoModelForCausalLM, AutoTokenizer",
            "",
            f'model = AutoModelForCausalLM.from_pretrained("{name}"{remote})',
            f'tokenizer = AutoTokenizer.from_pretrained("{name}"{remote})',
            'inputs = tokenizer("Hello", return_tensors="pt")',
            "print(tokenizer.decode(model.generate(**inputs, max_new_tokens=20)[0]))",
        ]
    lines.append("```")
    if remote_code:
        lines += [
            "",
            "The model's code ships with the weights (`configuration_*.py`, `modeling_*.py`), hence "
            "`trust_remote_code=True`: read it before running it.",
        ]

    lines += ["", "## Intended use and limitations", ""]
    lines.append(
        "This is a tiny research model, trained to study and test the InstructGPT pipeline: it is not fit for "
        "production or for any decision that matters. Its outputs can be wrong, incoherent, or reproduce the "
        "biases and errors of its training data."
    )
    if stage == "reward-model":
        lines.append(
            "\nA reward model inherits the biases of its preference data (for example a preference for longer "
            "answers) and can be exploited by a policy optimised against it (reward hacking). Its scores are "
            "only meaningful relative to each other, on text formatted as in training (chat template, EOS)."
        )
    elif stage in _RL_STAGES:
        lines.append(
            "\nA policy optimised against a learned reward model can exploit that model's errors: a higher "
            "reward does not mean a better answer. Check samples, not only the reward curve."
        )
    elif stage == "sft":
        lines.append("\nIt imitates its demonstrations, including their mistakes and their length.")
    return "\n".join(lines) + "\n"


def write_model_card(output_dir: str | os.PathLike, **kwargs: Any) -> Path:
    """Build the card of `output_dir` (see `build_model_card` for `kwargs`) and write it to its README.md."""
    card = build_model_card(output_dir, **kwargs)
    path = Path(output_dir) / "README.md"
    card.save(path)
    return path
