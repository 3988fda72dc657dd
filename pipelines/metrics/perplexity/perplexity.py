"""Perplexity from per-token log-probabilities computed by the caller's model."""

import math

import datasets
import evaluate

_DESCRIPTION = """
Corpus perplexity from the natural-log probabilities a model gave to each target token of each
sequence (the caller runs the model; this module needs no download). Token-weighted:
mean_nll = -(sum of all log-probs) / (number of tokens), perplexity = exp(mean_nll).
"""

_KWARGS_DESCRIPTION = """
Args:
    token_logprobs (list of list of float): per sequence, the natural-log probability of each
        predicted token (padding excluded).
Returns:
    perplexity (float), mean_nll (float): nats per token, n_tokens (int), n_sequences (int).
Examples:
    >>> metric = pipelines.metrics.load_metric("perplexity")
    >>> metric.compute(token_logprobs=[[math.log(0.5), math.log(0.25)]])
    {'perplexity': 2.828..., 'mean_nll': 1.0397..., 'n_tokens': 2, 'n_sequences': 1}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Perplexity(evaluate.Metric):
    """Token-weighted perplexity of a corpus."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"token_logprobs": datasets.Sequence(datasets.Value("float64"))}),
        )

    def _compute(self, token_logprobs):
        n_tokens = sum(len(seq) for seq in token_logprobs)
        if n_tokens == 0:
            raise ValueError("perplexity needs at least one token")
        if any(lp > 0 for seq in token_logprobs for lp in seq):
            raise ValueError("token_logprobs must be log-probabilities (<= 0), not logits or probabilities")
        mean_nll = -sum(sum(seq) for seq in token_logprobs) / n_tokens
        return {
            "perplexity": math.exp(mean_nll),
            "mean_nll": mean_nll,
            "n_tokens": n_tokens,
            "n_sequences": len(token_logprobs),
        }
