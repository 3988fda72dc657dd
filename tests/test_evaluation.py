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
    results = evaluate_policies({"sft": tiny_model_dir, "ppo": copy}, prompts, max_new_tokens=8)
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


def test_sampled_responses_are_scored_on_the_tokens_the_policy_generated(tiny_model_dir, prompts):
    """The KL's log-probabilities are those of the sampled tokens, EOS only where the policy produced it."""
    import torch
    from transformers import AutoTokenizer

    from pipelines.evaluation import (
        decode_responses,
        generate_response_ids,
        generate_responses,
        load_policy,
        response_logprobs,
    )

    model, tokenizer = load_policy(tiny_model_dir), AutoTokenizer.from_pretrained(tiny_model_dir)
    eos, max_new = tokenizer.eos_token_id, 6
    ids = generate_response_ids(model, tokenizer, prompts, max_new, do_sample=True, seed=3)
    for row in ids:  # ends at its first EOS, or is cut at max_new_tokens without one
        assert (row[-1] == eos and eos not in row[:-1]) or (len(row) == max_new and eos not in row)
    assert decode_responses(tokenizer, ids) == generate_responses(
        model, tokenizer, prompts, max_new, do_sample=True, seed=3
    )

    # The same samples through generate(): their log-probabilities as the sampler saw them.
    tokenizer.padding_side = "left"
    texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
    batch = tokenizer(texts, padding=True, return_tensors="pt", add_special_tokens=False)
    torch.manual_seed(3)
    out = model.generate(
        **batch, max_new_tokens=max_new, do_sample=True, top_k=0, top_p=1.0, temperature=1.0,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=eos, output_scores=True, return_dict_in_generate=True,
    )  # fmt: skip
    expected = model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
    new_tokens = out.sequences[:, batch["input_ids"].shape[1] :]
    for row, logprobs in enumerate(response_logprobs(model, tokenizer, prompts, ids)):
        assert new_tokens[row, : len(ids[row])].tolist() == ids[row]  # the same samples
        assert len(logprobs) == len(ids[row])
        assert logprobs == pytest.approx(expected[row, : len(ids[row])].tolist(), abs=1e-4)
