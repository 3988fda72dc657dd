"""Policy evaluation: greedy and sampled gold scores, win rates and KL, on what they claim to measure."""

from __future__ import annotations

import shutil

import pytest


def _length_judge(prompts, responses):
    return [(len(r) % 5) / 4 for r in responses]  # the gold judge gives a random model's answers all 0


@pytest.fixture
def prompts():
    from pipelines.data import get_dataset

    return get_dataset("embedded", "prompts", seed=0)["test"]["prompt"][:6]


def test_a_policy_against_itself_ties_and_has_no_kl(tiny_model_dir, tmp_path, prompts, monkeypatch):
    import pipelines.data
    from pipelines.evaluation import evaluate_policies

    monkeypatch.setattr(pipelines.data, "judge_batch", _length_judge)
    copy = shutil.copytree(tiny_model_dir, tmp_path / "copy")
    results = evaluate_policies({"sft": tiny_model_dir, "ppo": copy}, prompts, max_new_tokens=8, kl_samples=4)
    sft, ppo = results["sft"], results["ppo"]
    assert ppo["win_rate_vs_sft"] == 0.5 and ppo["sampled_win_rate_vs_sft"] == 0.5
    assert ppo["gold_score"] == sft["gold_score"] and ppo["sampled_gold_score"] == sft["sampled_gold_score"]
    assert ppo["kl_to_sft"] == pytest.approx(0.0, abs=1e-5)


def test_sampled_scores_judge_temperature_one_samples(tiny_model_dir, prompts, monkeypatch):
    from transformers import AutoTokenizer

    import pipelines.data
    from pipelines.evaluation import evaluate_policies, generate_responses, load_policy

    monkeypatch.setattr(pipelines.data, "judge_batch", _length_judge)
    results = evaluate_policies(
        {"sft": tiny_model_dir}, prompts, max_new_tokens=8, samples_per_prompt=3, seed=5
    )
    model, tokenizer = load_policy(tiny_model_dir), AutoTokenizer.from_pretrained(tiny_model_dir)
    samples = generate_responses(
        model, tokenizer, [p for p in prompts for _ in range(3)], 8, do_sample=True, seed=6
    )
    greedy = generate_responses(model, tokenizer, prompts, 8)
    assert results["sft"]["sampled_gold_score"] == pytest.approx(
        sum(_length_judge(None, samples)) / len(samples)
    )
    assert results["sft"]["gold_score"] == pytest.approx(sum(_length_judge(None, greedy)) / len(greedy))
    assert any(s != greedy[i // 3] for i, s in enumerate(samples))  # sampled, not greedy
    no_sampling = evaluate_policies({"sft": tiny_model_dir}, prompts, max_new_tokens=8, samples_per_prompt=0)
    assert "sampled_gold_score" not in no_sampling["sft"]
