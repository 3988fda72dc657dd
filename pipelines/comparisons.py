"""Comparisons between the policy's own samples, labelled by the gold judge.

InstructGPT's labelers ranked K = 4..9 samples of the SFT policy per prompt, and every pair of a
ranking became one comparison for the reward model. `sample_comparisons` does the same with the
embedded task's gold judge as the labeler: it samples K answers per prompt, scores them, and
keeps each pair the judge separates by at least `min_margin` (two answers a few hundredths of
partial credit apart are a preference no labeler could state). A share `label_noise` of the
pairs is flipped, as labelers disagree.

Why the reward stage needs them: a reward model trained only on the embedded near-misses
(correct answer vs one-edit violation) ranks those at ~0.9 but the SFT policy's own samples at
~0.75 (measured on the tiny recipe), because the policy's mistakes are not one-edit violations.
PPO climbs the reward model on the policy's samples, so those are the pairs it must rank.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import random
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from accelerate import PartialState
from datasets import Dataset, concatenate_datasets
from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["POLICY_COMPARISONS_FILE", "add_policy_comparisons", "distinct_prompts", "sample_comparisons"]

logger = logging.getLogger("pipelines")

#: Where the reward stage keeps the comparisons it sampled, so that a resumed run reuses them.
POLICY_COMPARISONS_FILE = "policy_comparisons.jsonl"

Messages = list[dict[str, str]]


def distinct_prompts(rows: Dataset, limit: int | None = None, seed: int = 0) -> list[Messages]:
    """The distinct prompts of a preference split, in a seeded random order, at most `limit`.

    Each prompt is drawn once (and answered K times), as InstructGPT deduplicated its prompts. A
    kind's share of the draw is its share of the distinct prompts, not of the rows: in the embedded
    task list instructions have 80 distinct training prompts against 6000 for end words, so the tiny
    recipe's 4000 prompts hold 28 list prompts. Drawing prompts as often as they have rows (every
    kind a quarter) was measured on the tiny recipe and not kept: on-policy reward accuracy rose
    (0.817 -> 0.833; lists 0.63 -> 0.68), but PPO learned to repeat one item ("wolf, wolf, wolf")
    and lost on lists, and its win rate over SFT fell on both seeds tried (seed 42: 0.520 -> 0.495,
    seed 1: 0.527 -> 0.453).
    """
    seen: set[str] = set()
    prompts: list[Messages] = []
    for prompt in rows["prompt"]:
        key = repr(prompt)
        if key not in seen:
            seen.add(key)
            prompts.append(prompt)
    random.Random(seed).shuffle(prompts)
    return prompts[:limit] if limit is not None else prompts


def sample_comparisons(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Messages],
    *,
    samples_per_prompt: int = 4,
    min_margin: float = 0.1,
    label_noise: float = 0.0,
    max_new_tokens: int = 32,
    temperature: float = 1.0,
    seed: int = 0,
    judge: Callable[[Any, str], float] | None = None,
    batch_size: int = 256,
) -> Dataset:
    """Every pair of `samples_per_prompt` sampled answers per prompt that `judge` separates.

    Returns rows with the embedded preference schema: ``prompt``, ``chosen``, ``rejected``,
    ``kind`` (the instruction's), ``chosen_score``/``rejected_score`` (the judge's, as placed) and
    ``label_flipped``. Empty answers and identical pairs are left out. `judge` defaults to the
    embedded task's `gold_score`.
    """
    from pipelines.data import gold_score, parse_instruction
    from pipelines.evaluation import generate_responses

    if samples_per_prompt < 2:
        raise ValueError(f"samples_per_prompt must be >= 2 to make a pair, got {samples_per_prompt}")
    judge = judge or gold_score
    k = samples_per_prompt
    answers = generate_responses(
        model, tokenizer, [p for p in prompts for _ in range(k)], max_new_tokens=max_new_tokens,
        batch_size=batch_size, do_sample=True, temperature=temperature, seed=seed,
    )  # fmt: skip
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for i, prompt in enumerate(prompts):
        group = answers[i * k : (i + 1) * k]
        scores = [judge(prompt, a) for a in group]
        kind = parse_instruction(prompt).kind if judge is gold_score else "policy"
        for a, b in itertools.combinations(range(k), 2):
            gap = abs(scores[a] - scores[b])
            if not group[a] or not group[b] or group[a] == group[b] or gap == 0 or gap < min_margin:
                continue
            if scores[a] < scores[b]:
                a, b = b, a
            flipped = rng.random() < label_noise
            if flipped:
                a, b = b, a
            rows.append({
                "prompt": prompt,
                "chosen": [{"role": "assistant", "content": group[a]}],
                "rejected": [{"role": "assistant", "content": group[b]}],
                "kind": kind,
                "chosen_score": scores[a],
                "rejected_score": scores[b],
                "label_flipped": flipped,
            })  # fmt: skip
    if not rows:
        raise ValueError(
            f"no comparisons from {len(prompts)} prompts x {k} samples: the judge gave every pair the same "
            f"score (within min_margin={min_margin}). Sample more answers per prompt or lower the margin."
        )
    return Dataset.from_list(rows)


def add_policy_comparisons(
    train: Dataset,
    test: Dataset,
    script_args: Any,
    policy: str | Path,
    tokenizer: PreTrainedTokenizerBase,
    output_dir: str | Path,
    seed: int,
    trust_remote_code: bool = False,
    revision: str | None = None,
) -> tuple[Dataset, Dataset | None]:
    """The reward stage's training set with the policy's labelled samples added, and their test pairs.

    Reads `script_args.policy_comparison_prompts` (0: off, returns ``(train, None)``),
    `policy_samples_per_prompt` and `policy_comparison_margin`. `policy` is the folder or Hub id of
    the model to sample (the reward stage's `model_name_or_path`: the SFT model), at `revision`. Train comparisons
    come from training prompts with the embedded task's label noise, test comparisons from the test prompts without noise. They are
    sampled once, on the main process, and kept in `output_dir` so that a resumed run reuses them.
    """
    n_prompts = script_args.policy_comparison_prompts
    if not n_prompts:
        return train, None
    from pipelines.data import TaskConfig
    from pipelines.evaluation import load_policy

    path = {split: Path(output_dir) / f"{split}_{POLICY_COMPARISONS_FILE}" for split in ("train", "test")}
    state = PartialState()
    with state.main_process_first():
        if not all(p.is_file() for p in path.values()):  # only the main process gets here first
            with _full_weights():
                model = load_policy(policy, trust_remote_code, revision).to(state.device)
            noise = TaskConfig(seed=script_args.task_seed).label_noise
            for split, rows, count, split_noise in (
                ("train", train, n_prompts, noise),
                ("test", test, None, 0.0),
            ):
                prompts = distinct_prompts(rows, count, seed)
                sampled = sample_comparisons(
                    model, tokenizer, prompts, samples_per_prompt=script_args.policy_samples_per_prompt,
                    min_margin=script_args.policy_comparison_margin, label_noise=split_noise, seed=seed,
                )  # fmt: skip
                sampled.to_json(str(path[split]) + ".tmp", lines=True)
                Path(str(path[split]) + ".tmp").replace(path[split])
                logger.info("%d %s comparisons from %d prompts x %d policy samples -> %s", len(sampled), split,
                            len(prompts), script_args.policy_samples_per_prompt, path[split])  # fmt: skip
            del model
        loaded = {split: Dataset.from_json(str(p)) for split, p in path.items()}
    extra = loaded["train"].select_columns(train.column_names).cast(train.features)  # same schema, same order
    return concatenate_datasets([train, extra]), loaded["test"]


@contextlib.contextmanager
def _full_weights() -> Iterator[None]:
    """Load models unsharded even under DeepSpeed ZeRO-3.

    Once ZeRO-3 training arguments exist, `from_pretrained` partitions every new model's weights
    across ranks (`zero.Init`), and a partitioned model cannot `generate` outside the engine. The
    policy sampled here is used by the main process alone, so it is loaded whole.
    """
    from transformers.integrations import deepspeed as hf_deepspeed

    ref = hf_deepspeed._hf_deepspeed_config_weak_ref  # transformers keeps the config behind a weak reference
    config = ref() if ref is not None else None
    hf_deepspeed.unset_hf_deepspeed_config()
    try:
        yield
    finally:
        if config is not None:
            hf_deepspeed.set_hf_deepspeed_config(config)
