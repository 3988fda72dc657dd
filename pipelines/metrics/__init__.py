"""Project-local `evaluate` metric modules, loadable offline (``evaluate.load`` by path).

Each metric lives in ``pipelines/metrics/<name>/<name>.py``: ``reward_accuracy``,
``gold_win_rate``, ``perplexity`` and ``kl_divergence``.
"""

from __future__ import annotations

from pathlib import Path

import evaluate

__all__ = ["METRICS", "load_metric", "metric_path"]

_ROOT = Path(__file__).resolve().parent
#: Names of the metrics shipped with the project.
METRICS: tuple[str, ...] = ("reward_accuracy", "gold_win_rate", "perplexity", "kl_divergence")


def metric_path(name: str) -> Path:
    """The folder of metric ``name`` (what ``evaluate.load`` takes)."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; the project's metrics are {METRICS}")
    return _ROOT / name


def load_metric(name: str) -> evaluate.EvaluationModule:
    """Load a project metric from its local folder; works offline."""
    return evaluate.load(str(metric_path(name)))
