"""Win rate of policy A over policy B under the gold judge, on the same prompts."""

import datasets
import evaluate

_DESCRIPTION = """
Compares two policies answering the same prompts, from the gold scores of their answers
(`pipelines.data.task.gold_score`): mean score of each and the share of prompts where A scores
higher than B, ties counting half (InstructGPT's "win rate against the SFT model").
"""

_KWARGS_DESCRIPTION = """
Args:
    scores_a (list of float): gold score of policy A's answer to each prompt.
    scores_b (list of float): gold score of policy B's answer to the same prompts, in the same order.
Returns:
    mean_a (float), mean_b (float), win_rate (float): A beats B, ties half, n (int).
Examples:
    >>> metric = pipelines.metrics.load_metric("gold_win_rate")
    >>> metric.compute(scores_a=[1.0, 0.5], scores_b=[0.0, 0.5])
    {'mean_a': 0.75, 'mean_b': 0.25, 'win_rate': 0.75, 'n': 2}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class GoldWinRate(evaluate.Metric):
    """Mean gold scores of two policies and the win rate of the first (ties half)."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"scores_a": datasets.Value("float64"), "scores_b": datasets.Value("float64")}
            ),
        )

    def _compute(self, scores_a, scores_b):
        n = len(scores_a)
        if n == 0:
            raise ValueError("gold_win_rate needs at least one prompt")
        wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in zip(scores_a, scores_b, strict=True))
        return {"mean_a": sum(scores_a) / n, "mean_b": sum(scores_b) / n, "win_rate": wins / n, "n": n}
