"""Reward-model accuracy on preference pairs, beside the "prefer the longer answer" baseline."""

import datasets
import evaluate

_DESCRIPTION = """
Accuracy of a reward model on (chosen, rejected) pairs: the share of pairs where the chosen answer
gets the higher reward, ties counting half. `length_baseline_accuracy` is the accuracy of "prefer the
longer answer" on the same pairs (ties half): on length-biased data (e.g. alpaca-eval preferences,
about 0.83) a reward accuracy means little unless it beats this baseline.
"""

_KWARGS_DESCRIPTION = """
Args:
    chosen_rewards (list of float): reward of the chosen answer of each pair.
    rejected_rewards (list of float): reward of the rejected answer of each pair.
    chosen_lengths (list of float): length (tokens, words or characters) of each chosen answer.
    rejected_lengths (list of float): length of each rejected answer, in the same unit.
Returns:
    accuracy (float), length_baseline_accuracy (float), n (int): the number of pairs.
Examples:
    >>> metric = pipelines.metrics.load_metric("reward_accuracy")
    >>> metric.compute(chosen_rewards=[1.0, 0.0], rejected_rewards=[0.0, 0.0],
    ...                chosen_lengths=[5, 3], rejected_lengths=[4, 9])
    {'accuracy': 0.75, 'length_baseline_accuracy': 0.5, 'n': 2}
"""


def _win(a, b):
    return 1.0 if a > b else 0.5 if a == b else 0.0


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class RewardAccuracy(evaluate.Metric):
    """Pairwise accuracy (ties half) and the length baseline."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "chosen_rewards": datasets.Value("float64"),
                    "rejected_rewards": datasets.Value("float64"),
                    "chosen_lengths": datasets.Value("float64"),
                    "rejected_lengths": datasets.Value("float64"),
                }
            ),
        )

    def _compute(self, chosen_rewards, rejected_rewards, chosen_lengths, rejected_lengths):
        n = len(chosen_rewards)
        if n == 0:
            raise ValueError("reward_accuracy needs at least one pair")
        accuracy = sum(_win(c, r) for c, r in zip(chosen_rewards, rejected_rewards, strict=True)) / n
        baseline = sum(_win(c, r) for c, r in zip(chosen_lengths, rejected_lengths, strict=True)) / n
        return {"accuracy": accuracy, "length_baseline_accuracy": baseline, "n": n}
