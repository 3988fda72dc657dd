"""KL(policy || reference) estimated on policy-sampled responses, as PPO does."""

import datasets
import evaluate

_DESCRIPTION = """
Sample estimate of KL(policy || reference) from responses sampled from the policy: for each sequence,
the sum over its response tokens of (logp_policy - logp_ref); `kl` is the mean over sequences (the
estimator of PPO's KL penalty), `kl_per_token` the total divided by the number of tokens.
"""

_KWARGS_DESCRIPTION = """
Args:
    policy_logprobs (list of list of float): per sequence, log-probability of each response token
        under the policy.
    reference_logprobs (list of list of float): the same tokens' log-probabilities under the reference
        model, aligned with policy_logprobs.
Returns:
    kl (float): nats per sequence, kl_per_token (float), n_sequences (int), n_tokens (int).
Examples:
    >>> metric = pipelines.metrics.load_metric("kl_divergence")
    >>> metric.compute(policy_logprobs=[[-1.0, -1.0]], reference_logprobs=[[-2.0, -1.5]])
    {'kl': 1.5, 'kl_per_token': 0.75, 'n_sequences': 1, 'n_tokens': 2}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class KlDivergence(evaluate.Metric):
    """Per-sequence and per-token KL estimates between a policy and its reference."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "policy_logprobs": datasets.Sequence(datasets.Value("float64")),
                    "reference_logprobs": datasets.Sequence(datasets.Value("float64")),
                }
            ),
        )

    def _compute(self, policy_logprobs, reference_logprobs):
        if not policy_logprobs:
            raise ValueError("kl_divergence needs at least one sequence")
        totals = []
        n_tokens = 0
        for i, (policy, ref) in enumerate(zip(policy_logprobs, reference_logprobs, strict=True)):
            if len(policy) != len(ref):
                raise ValueError(
                    f"sequence {i}: {len(policy)} policy log-probs but {len(ref)} reference log-probs; "
                    "they must score the same response tokens"
                )
            totals.append(sum(p - r for p, r in zip(policy, ref, strict=True)))
            n_tokens += len(policy)
        return {
            "kl": sum(totals) / len(totals),
            "kl_per_token": sum(totals) / n_tokens if n_tokens else 0.0,
            "n_sequences": len(totals),
            "n_tokens": n_tokens,
        }
