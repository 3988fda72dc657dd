"""Data cards of the embedded datasets, rendered from the generator's real statistics.

`render_embedded_cards` builds the task and writes its numbers into the cards, so the committed
cards in ``data_cards/embedded-*`` cannot drift: ``python -m pipelines.data.cards`` rewrites them and
a test checks that they equal a fresh rendering. The cards of real datasets are hand-written.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict

from pipelines.data.task import KINDS, RECIPE_TASK_SEED, TaskConfig, build_task, task_space

__all__ = [
    "DATA_CARDS_DIR",
    "EMBEDDED_NAMES",
    "RECIPE_TASK",
    "embedded_statistics",
    "render_embedded_cards",
    "write_data_cards",
]

#: The repository's ``data_cards`` folder (present in a source checkout).
DATA_CARDS_DIR = Path(__file__).resolve().parents[2] / "data_cards"
#: Dataset kind -> card / export folder name.
EMBEDDED_NAMES: dict[str, str] = {
    "pretrain": "embedded-pretrain",
    "sft": "embedded-sft",
    "preference": "embedded-preference",
    "prompts": "embedded-prompts",
}


#: The data every recipe trains on.
RECIPE_TASK = TaskConfig(seed=RECIPE_TASK_SEED)


def _words(text: str) -> int:
    return len(text.split())


def _mean(values: list[float]) -> float:
    return round(statistics.fmean(values), 3) if values else 0.0


def _kinds(ds: Dataset) -> dict[str, int]:
    counts = Counter(ds["kind"]) if "kind" in ds.column_names else Counter()
    return {k: counts[k] for k in KINDS if counts[k]}


def _prompt_texts(ds: Dataset, column: str) -> set[str]:
    if column == "messages":
        return {m[0]["content"] for m in ds["messages"]}
    return {p[-1]["content"] for p in ds["prompt"]}


def _split_stats(kind: str, ds: Dataset) -> dict[str, Any]:
    stats: dict[str, Any] = {"rows": len(ds)}
    if kind == "pretrain":
        words = [_words(t) for t in ds["text"]]
        stats |= {
            "words": sum(words),
            "mean_words": _mean(words),
            "characters": sum(len(t) for t in ds["text"]),
        }
        return stats
    stats["kinds"] = _kinds(ds)
    if kind == "sft":
        stats["mean_prompt_words"] = _mean([_words(m[0]["content"]) for m in ds["messages"]])
        answers = [_words(m[-1]["content"]) for m in ds["messages"]]
        stats |= {"mean_response_words": _mean(answers), "max_response_words": max(answers, default=0)}
        stats["distinct_prompts"] = len(_prompt_texts(ds, "messages"))
    elif kind == "preference":
        chosen = [_words(c[0]["content"]) for c in ds["chosen"]]
        rejected = [_words(r[0]["content"]) for r in ds["rejected"]]
        longer = [1.0 if c > r else 0.5 if c == r else 0.0 for c, r in zip(chosen, rejected, strict=True)]
        stats |= {
            "distinct_prompts": len(_prompt_texts(ds, "prompt")),
            "label_noise_measured": _mean([float(f) for f in ds["label_flipped"]]),
            "mean_chosen_gold_score": _mean(ds["chosen_score"]),
            "mean_rejected_gold_score": _mean(ds["rejected_score"]),
            "chosen_is_perfect": _mean([float(s == 1.0) for s in ds["chosen_score"]]),
            "mean_chosen_words": _mean(chosen),
            "mean_rejected_words": _mean(rejected),
            "length_baseline_accuracy": _mean(longer),
        }
    else:
        stats["mean_prompt_words"] = _mean([_words(p[-1]["content"]) for p in ds["prompt"]])
        stats["distinct_prompts"] = len(_prompt_texts(ds, "prompt"))
    return stats


def embedded_statistics(task_config: TaskConfig | None = None) -> dict[str, Any]:
    """Statistics of every embedded dataset and split, measured on a fresh `build_task(task_config)`
    (default: `RECIPE_TASK`, the data the recipes train on)."""
    config = task_config or RECIPE_TASK
    task: dict[str, DatasetDict] = build_task(config)
    stats: dict[str, Any] = {"config": dataclasses.asdict(config)}
    for kind, dd in task.items():
        stats[kind] = {split: _split_stats(kind, ds) for split, ds in dd.items()}
    trained = (
        _prompt_texts(task["sft"]["train"], "messages")
        | _prompt_texts(task["sft"]["test"], "messages")
        | _prompt_texts(task["preference"]["train"], "prompt")
        | _prompt_texts(task["preference"]["test"], "prompt")
    )
    stats["prompts_overlap_with_training"] = {
        split: len(_prompt_texts(ds, "prompt") & trained) for split, ds in task["prompts"].items()
    }
    return stats


def _size_category(n: int) -> str:
    for bound, label in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
    ):
        if n < bound:
            return label
    return "n>1M"


def _yaml(pretty_name: str, task_categories: list[str], total: int, splits: list[str]) -> str:
    lines = [
        "---",
        f"pretty_name: {json.dumps(pretty_name)}",
        "license: apache-2.0",
        "language:",
        "- en",
        "task_categories:",
        *[f"- {c}" for c in task_categories],
        "size_categories:",
        f"- {_size_category(total)}",
        "source_datasets:",
        "- original",
        "tags:",
        "- synthetic",
        "- instruction-following",
        "- rlhf",
        "configs:",
        "- config_name: default",
        "  data_files:",
        *[line for s in splits for line in (f"  - split: {s}", f"    path: {s}.jsonl")],
        "---",
    ]
    return "\n".join(lines)


def _kinds_table(per_split: dict[str, dict[str, Any]]) -> str:
    splits = list(per_split)
    rows = ["| kind | " + " | ".join(splits) + " |", "|---|" + "---:|" * len(splits)]
    for k in KINDS:
        counts = [per_split[s]["kinds"].get(k, 0) for s in splits]
        if any(counts):
            rows.append(f"| `{k}` | " + " | ".join(str(c) for c in counts) + " |")
    return "\n".join(rows)


def _stats_table(per_split: dict[str, dict[str, Any]], keys: list[str]) -> str:
    splits = list(per_split)
    rows = ["| statistic | " + " | ".join(splits) + " |", "|---|" + "---:|" * len(splits)]
    rows += [f"| {k} | " + " | ".join(str(per_split[s][k]) for s in splits) + " |" for k in keys]
    return "\n".join(rows)


_COMMON = """\
## How it was made

Generated by `pipelines.data.task.build_task(TaskConfig(seed={seed}))`: no download, no model. The
generator knows {n_kinds} kinds of short instruction with verifiable constraints (IFEval-style):
{all_kinds}, each with {phrasings} phrasings, over a vocabulary of {categories} categories of
{category_words} words, numbers {numbers} and counts {counts}. This dataset holds {kinds}
(`TaskConfig.kinds`; the default keeps the kinds where a ~1M-parameter SFT policy leaves room that
RLHF can take, see `pipelines.data.task.DEFAULT_KINDS`). Every prompt of a kind is enumerated and
shuffled; evaluation and PPO prompts are taken first, then the test (validation) prompts, and SFT
and preference prompts come from the rest, so PPO and evaluation prompts are new combinations of
kind, words, numbers and phrasing that no training set contains. Answers are at most
{max_answer_words} words. `pipelines.data.task.gold_score(prompt, response)` judges any answer from
the prompt text alone, in [0, 1], with partial credit (e.g. a list of the right category but the
wrong count).

Regenerate this card with `python -m pipelines.data.cards`; a test checks that it equals a fresh
rendering of the default configuration.

## Limitations and biases

- A toy world: English only, lower-case vocabulary, {categories} categories. It measures whether the recipe
  works (knowledge from pretraining, format from SFT, refinement from RLHF), not general ability.
- The gold judge is a set of regexes and rules: it defines "correct" for this task only.
- Category membership is the generator's choice (e.g. `tomato` is absent; `pepper` is a vegetable).
"""


def _common(config: TaskConfig) -> str:
    space = task_space()
    ranges = {k: f"{space[k][0]}-{space[k][1]}" for k in ("phrasings", "category_words", "numbers", "counts")}
    text = _COMMON.format(
        seed=config.seed,
        kinds=", ".join(f"`{k}`" for k in config.kinds),
        n_kinds=len(space["kinds"]),
        all_kinds=", ".join(f"`{k}`" for k in space["kinds"]),
        categories=space["categories"],
        max_answer_words=space["max_answer_words"],
        **ranges,
    )
    # The quoted ranges change the line lengths: re-wrap the prose paragraphs (not headings or lists).
    paragraphs = text.split("\n\n")
    wrapped = [p if p.startswith(("#", "-")) else textwrap.fill(" ".join(p.split()), 100) for p in paragraphs]
    return "\n\n".join(wrapped)


def _render_pretrain(stats: dict[str, Any], config: TaskConfig) -> str:
    per = stats["pretrain"]
    total = sum(s["rows"] for s in per.values())
    return f"""{_yaml("InstructGPT pipelines embedded task: pretraining corpus", ["text-generation"], total, list(per))}

# embedded-pretrain

Plain-text documents (`text`) that teach the WORLD of the embedded instruction task: which words
belong to which category, upper-case forms, spellings, reversals, number words and counting, sums and
differences of numbers up to 20, sentences and their word counts and final words. They never use
the instruction-following format itself: the format comes from SFT, refinement from RLHF.

## Statistics (measured)

{_stats_table(per, ["rows", "words", "mean_words", "characters"])}

Each document is 4-8 sentences drawn at random from 12 kinds of fact.

## Intended use

Pretraining the tiny causal LM of the recipe's first stage on CPU in minutes.

{_common(config)}"""


def _render_sft(stats: dict[str, Any], config: TaskConfig) -> str:
    per = stats["sft"]
    total = sum(s["rows"] for s in per.values())
    keys = ["rows", "distinct_prompts", "mean_prompt_words", "mean_response_words", "max_response_words"]
    return f"""{_yaml("InstructGPT pipelines embedded task: demonstrations (SFT)", ["text-generation"], total, list(per))}

# embedded-sft

Conversational demonstrations (`messages`: a user instruction and the correct assistant answer, gold
score 1.0) for supervised fine-tuning, plus a `kind` column. Fewer demonstrations than comparisons,
as in InstructGPT.

## Statistics (measured)

{_stats_table(per, keys)}

### Kinds

{_kinds_table(per)}

## Intended use

The SFT stage. The test split's prompts are held out from the training split and from PPO and
evaluation prompts.

{_common(config)}"""


def _render_preference(stats: dict[str, Any], config: TaskConfig) -> str:
    per = stats["preference"]
    total = sum(s["rows"] for s in per.values())
    keys = [
        "rows",
        "distinct_prompts",
        "label_noise_measured",
        "mean_chosen_gold_score",
        "mean_rejected_gold_score",
        "chosen_is_perfect",
        "mean_chosen_words",
        "mean_rejected_words",
        "length_baseline_accuracy",
    ]
    return f"""{
        _yaml(
            "InstructGPT pipelines embedded task: comparisons (reward model)",
            ["text-classification"],
            total,
            list(per),
        )
    }

# embedded-preference

Explicit-prompt conversational comparisons: `prompt` (a user message), `chosen` and `rejected`
(one assistant message each). Every pair is a correct answer against a plausible near-miss that
violates the instruction (count off by one, wrong case, arithmetic off by one, wrong final word, a
word from another category, a letter dropped or swapped, a sentence of the right length padded by
repeating one phrase, the right count of a related word...). Hard negatives (list answers of the
right length with a duplicated or off-category item) are {
        "included" if config.hard_negatives else "not included (`TaskConfig(hard_negatives=True)` adds them)"
    }.

The preference is labelled by the gold judge, then flipped with probability `label_noise` =
{config.label_noise} in the TRAIN split only (InstructGPT's labelers agreed about 73% of the time; at
that rate the tiny reward model needs about four times its CPU budget); the test split is labelled
without noise.

The tiny recipe's reward stage adds comparisons of the SFT policy's own samples to these
(`policy_comparison_prompts` in `recipes/tiny/reward.yaml`, see `pipelines.comparisons`): K answers
sampled per training prompt, every pair the gold judge separates by at least 0.1, with the same label
noise. They depend on the SFT model, so they are made when the reward stage runs (and kept in its
output folder), not stored here.

Metadata columns: `kind`, `chosen_score` and `rejected_score` (gold scores of the answers as placed, so
a flipped pair has `chosen_score < rejected_score`) and `label_flipped`. TRL's RewardTrainer ignores
them (`remove_unused_columns`).

## Statistics (measured)

{_stats_table(per, keys)}

`length_baseline_accuracy` is the accuracy of "prefer the longer answer" (ties count half): read a
reward model's accuracy beside it. On the train split, the best possible accuracy against the noisy
labels is about 1 - label_noise.

### Kinds

{_kinds_table(per)}

## Intended use

Training and evaluating the reward model. Train prompts may repeat (several comparisons per prompt,
as in InstructGPT's K-way rankings); test prompts are held out from training.

{_common(config)}"""


def _render_prompts(stats: dict[str, Any], config: TaskConfig) -> str:
    per = stats["prompts"]
    total = sum(s["rows"] for s in per.values())
    overlap = stats["prompts_overlap_with_training"]
    return f"""{_yaml("InstructGPT pipelines embedded task: PPO and evaluation prompts", ["text-generation"], total, list(per))}

# embedded-prompts

Conversational prompts (`prompt`: one user message) and their `kind`: `train` holds the PPO prompts,
`test` the evaluation prompts. Every prompt is distinct, and none appears in the SFT or preference
datasets (overlap measured: train {overlap["train"]}, test {overlap["test"]}).

## Statistics (measured)

{_stats_table(per, ["rows", "distinct_prompts", "mean_prompt_words"])}

### Kinds

{_kinds_table(per)}

## Intended use

PPO rollouts (train) and the gold-judge evaluation of every stage's policy (test), with
`pipelines.data.task.judge_batch` and the `gold_win_rate` metric.

{_common(config)}"""


_RENDERERS = {
    "pretrain": _render_pretrain,
    "sft": _render_sft,
    "preference": _render_preference,
    "prompts": _render_prompts,
}


def render_embedded_cards(task_config: TaskConfig | None = None) -> dict[str, str]:
    """Card folder name (``embedded-sft``...) -> README.md text, from the statistics of a fresh build."""
    config = task_config or RECIPE_TASK
    stats = embedded_statistics(config)
    return {EMBEDDED_NAMES[kind]: render(stats, config) for kind, render in _RENDERERS.items()}


def write_data_cards(root: str | Path = DATA_CARDS_DIR, task_config: TaskConfig | None = None) -> list[Path]:
    """Write the embedded cards to ``root/<name>/README.md``; returns the paths written."""
    written = []
    for name, text in render_embedded_cards(task_config).items():
        path = Path(root) / name / "README.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_data_cards():
        print(written_path)
