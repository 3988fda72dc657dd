"""Project-local evaluate modules, loaded offline by path, against hand-computed values."""

from __future__ import annotations

import math

import pytest

from pipelines.metrics import METRICS, load_metric, metric_path


def test_every_metric_loads_offline_from_its_folder():
    for name in METRICS:
        assert (metric_path(name) / f"{name}.py").is_file()
        assert load_metric(name).name == name
    with pytest.raises(ValueError, match="unknown metric 'bleu'"):
        metric_path("bleu")


def test_reward_accuracy_ties_count_half():
    result = load_metric("reward_accuracy").compute(
        chosen_rewards=[2.0, 0.5, 1.0, -1.0],
        rejected_rewards=[1.0, 0.5, 3.0, -2.0],  # win, tie, loss, win -> (1 + 0.5 + 0 + 1) / 4
        chosen_lengths=[10, 4, 7, 3],
        rejected_lengths=[5, 4, 9, 3],  # longer, tie, shorter, tie -> (1 + 0.5 + 0 + 0.5) / 4
    )
    assert result == {"accuracy": 0.625, "length_baseline_accuracy": 0.5, "n": 4}


def test_gold_win_rate():
    result = load_metric("gold_win_rate").compute(
        scores_a=[1.0, 0.6, 0.0, 0.2], scores_b=[0.5, 0.6, 1.0, 0.1]
    )
    assert result["win_rate"] == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    assert result["mean_a"] == pytest.approx(0.45) and result["mean_b"] == pytest.approx(0.55)
    assert result["n"] == 4


def test_perplexity_is_token_weighted():
    # nll = -(ln .5 + ln .25 + ln .125) = 6 ln 2 over 3 tokens -> mean 2 ln 2, perplexity 4
    result = load_metric("perplexity").compute(
        token_logprobs=[[math.log(0.5)], [math.log(0.25), math.log(0.125)]]
    )
    assert result["mean_nll"] == pytest.approx(2 * math.log(2))
    assert result["perplexity"] == pytest.approx(4.0)
    assert (result["n_tokens"], result["n_sequences"]) == (3, 2)
    with pytest.raises(ValueError, match="must be log-probabilities"):
        load_metric("perplexity").compute(token_logprobs=[[0.3]])


def test_kl_divergence_sums_over_tokens_then_averages_sequences():
    result = load_metric("kl_divergence").compute(
        policy_logprobs=[[-1.0, -2.0], [-0.5, -0.5, -0.5]],
        reference_logprobs=[[-1.5, -2.5], [-0.5, -1.5, 0.0]],  # sums: 1.0 and 0.5
    )
    assert result["kl"] == pytest.approx(0.75)
    assert result["kl_per_token"] == pytest.approx(1.5 / 5)
    assert (result["n_sequences"], result["n_tokens"]) == (2, 5)
    with pytest.raises(ValueError, match="sequence 0: 2 policy log-probs but 1 reference"):
        load_metric("kl_divergence").compute(policy_logprobs=[[-1.0, -1.0]], reference_logprobs=[[-1.0]])
