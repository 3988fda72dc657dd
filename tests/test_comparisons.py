"""Comparisons of the policy's own samples, labelled by a judge (the reward stage's InstructGPT rankings)."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest

from pipelines.configs import ConfigError


def _length_judge(prompt, answer: str) -> float:
    return (len(answer) % 5) / 4  # any deterministic function of the answer separates most pairs


@pytest.fixture(scope="module")
def policy(tiny_model_dir):
    from transformers import AutoTokenizer

    from pipelines.evaluation import load_policy

    return load_policy(tiny_model_dir), AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def preference():
    from pipelines.data import get_dataset

    return get_dataset("embedded", "preference", seed=0)


def test_pairs_are_ordered_by_the_judge_with_the_embedded_schema(policy, preference):
    from pipelines.comparisons import distinct_prompts, sample_comparisons

    model, tokenizer = policy
    prompts = distinct_prompts(preference["train"].select(range(40)), limit=6, seed=0)
    assert len(prompts) == 6 and len({repr(p) for p in prompts}) == 6
    rows = sample_comparisons(
        model,
        tokenizer,
        prompts,
        samples_per_prompt=4,
        min_margin=0.25,
        judge=_length_judge,
        max_new_tokens=8,
    )
    assert set(rows.column_names) == set(preference["train"].column_names)
    assert 0 < len(rows) <= 6 * len(list(itertools.combinations(range(4), 2)))
    for row in rows:
        chosen, rejected = row["chosen"][0]["content"], row["rejected"][0]["content"]
        assert chosen and rejected and chosen != rejected
        assert row["chosen_score"] == _length_judge(row["prompt"], chosen)
        assert row["rejected_score"] == _length_judge(row["prompt"], rejected)
        assert row["chosen_score"] - row["rejected_score"] >= 0.25 and not row["label_flipped"]
        assert row["prompt"] in prompts


def test_label_noise_flips_pairs_and_says_so(policy, preference):
    from pipelines.comparisons import distinct_prompts, sample_comparisons

    model, tokenizer = policy
    prompts = distinct_prompts(preference["train"].select(range(40)), limit=4, seed=0)
    rows = sample_comparisons(
        model, tokenizer, prompts, label_noise=1.0, judge=_length_judge, max_new_tokens=8
    )
    assert all(r["label_flipped"] and r["chosen_score"] < r["rejected_score"] for r in rows)


def test_same_seed_same_comparisons(policy, preference):
    from pipelines.comparisons import distinct_prompts, sample_comparisons

    model, tokenizer = policy
    prompts = distinct_prompts(preference["train"].select(range(40)), limit=4, seed=1)
    runs = [
        sample_comparisons(model, tokenizer, prompts, judge=_length_judge, max_new_tokens=8, seed=s)
        for s in (3, 3, 4)
    ]
    assert runs[0].to_list() == runs[1].to_list()
    assert runs[0].to_list() != runs[2].to_list()


def test_bad_arguments_are_refused(policy, preference):
    from pipelines.comparisons import sample_comparisons

    model, tokenizer = policy
    prompts = list(preference["train"]["prompt"][:2])
    with pytest.raises(ValueError, match="samples_per_prompt must be >= 2"):
        sample_comparisons(model, tokenizer, prompts, samples_per_prompt=1)
    with pytest.raises(ValueError, match="no comparisons .* lower the margin"):
        sample_comparisons(model, tokenizer, prompts, judge=lambda p, a: 0.5, max_new_tokens=4)


def _reward_args(prompts: int, samples: int, margin: float) -> SimpleNamespace:
    """The reward recipe's script arguments that `add_policy_comparisons` reads."""
    return SimpleNamespace(
        policy_comparison_prompts=prompts,
        policy_samples_per_prompt=samples,
        policy_comparison_margin=margin,
        dataset_name="embedded",
        task_seed=0,
    )


def test_reward_stage_samples_once_and_a_resumed_run_reuses_the_file(
    policy, preference, tiny_model_dir, tmp_path, monkeypatch
):
    import pipelines.comparisons as comparisons

    calls = []
    original = comparisons.sample_comparisons

    def counting(*args, **kwargs):
        calls.append(kwargs["label_noise"])
        return original(*args, **{**kwargs, "judge": _length_judge})

    monkeypatch.setattr(comparisons, "sample_comparisons", counting)
    args = _reward_args(prompts=5, samples=3, margin=0.25)
    train, test = preference["train"].select(range(60)), preference["test"].select(range(12))
    _, tokenizer = policy
    first, first_test = comparisons.add_policy_comparisons(
        train, test, args, tiny_model_dir, tokenizer, tmp_path, seed=0
    )
    assert calls == [0.1, 0.0]  # train pairs carry the task's label noise, test pairs none
    assert (tmp_path / f"train_{comparisons.POLICY_COMPARISONS_FILE}").is_file()
    assert len(first) > len(train) and first.features == train.features
    assert first.select(range(len(train))).to_list() == train.to_list()
    assert not any(first_test["label_flipped"])

    again, again_test = comparisons.add_policy_comparisons(
        train, test, args, tiny_model_dir, tokenizer, tmp_path, seed=0
    )
    assert len(calls) == 2  # nothing sampled the second time
    assert again.to_list() == first.to_list() and again_test.to_list() == first_test.to_list()

    args.policy_comparison_prompts = 0
    assert comparisons.add_policy_comparisons(
        train, test, args, tiny_model_dir, tokenizer, tmp_path / "off", seed=0
    ) == (train, None)


def test_the_sampled_policy_is_loaded_at_the_model_revision(
    policy, preference, tiny_model_dir, tmp_path, monkeypatch
):
    import pipelines.comparisons as comparisons
    import pipelines.evaluation as evaluation

    loaded = []
    original = evaluation.load_policy

    def recording(path, trust_remote_code=False, revision=None):
        loaded.append((str(path), revision))
        return original(path, trust_remote_code)

    monkeypatch.setattr(evaluation, "load_policy", recording)
    args = _reward_args(prompts=2, samples=2, margin=0.0)
    train, test = preference["train"].select(range(20)), preference["test"].select(range(4))
    monkeypatch.setattr(comparisons, "sample_comparisons", lambda *a, **k: train.select(range(2)))
    comparisons.add_policy_comparisons(
        train, test, args, tiny_model_dir, policy[1], tmp_path, seed=0, revision="v1.0"
    )
    assert loaded == [(str(tiny_model_dir), "v1.0")]


def test_policy_comparisons_need_the_embedded_judge(tmp_path, repo_root):
    from recipe_runs import parse_for, write_jsonl

    data = write_jsonl(tmp_path / "prefs.jsonl", [{"prompt": "q", "chosen": "a", "rejected": "b"}])
    config = str(repo_root / "recipes" / "tiny" / "reward.yaml")
    with pytest.raises(ConfigError, match="policy_comparison_prompts=8 needs the embedded task's gold judge"):
        parse_for(
            "reward", ["--config", config, "--dataset_name", str(data), "--policy_comparison_prompts", "8"]
        )
    with pytest.raises(ConfigError, match="policy_samples_per_prompt must be >= 2"):
        parse_for(
            "reward",
            ["--config", config, "--policy_comparison_prompts", "8", "--policy_samples_per_prompt", "1"],
        )


def test_reward_recipe_trains_on_policy_comparisons_and_reports_their_accuracy(
    tiny_model_dir, tmp_path, monkeypatch
):
    import json

    from recipe_runs import run_recipe, stage_args

    import pipelines.comparisons as comparisons

    original = comparisons.sample_comparisons
    monkeypatch.setattr(
        comparisons,
        "sample_comparisons",
        lambda *a, **k: original(*a, **{**k, "judge": _length_judge, "max_new_tokens": 8}),
    )  # a random model's answers all score 0 under the gold judge
    out = tmp_path / "reward"
    argv = stage_args("reward", tmp_path / "cfg", out, {"model_name_or_path": tiny_model_dir})
    argv += ["--dataset_name", "embedded", "--max_train_samples", "64", "--max_eval_samples", "16",
             "--policy_comparison_prompts", "6", "--policy_samples_per_prompt", "3", "--max_steps", "2", "--max_length", "128"]  # fmt: skip
    run_recipe("reward", argv)

    metrics = json.loads((out / "stage_info.json").read_text())["metrics"]
    assert 0.0 <= metrics["eval_policy_accuracy"] <= 1.0 and metrics["eval_policy_n"] > 0
    assert metrics["eval_n"] == 16  # the embedded test pairs are still the headline accuracy
    sampled = [
        json.loads(line)
        for line in (out / f"test_{comparisons.POLICY_COMPARISONS_FILE}").read_text().splitlines()
    ]
    assert len(sampled) == metrics["eval_policy_n"]
