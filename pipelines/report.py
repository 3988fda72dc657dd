"""The report `instructgpt run` leaves: report.json, report.md, plots, samples and the final card.

Everything is computed from the stage folders (`stage_info.json`, `log_history.json`) and a
fresh evaluation of the policies on held-out prompts with the gold judge, so the report can
be rebuilt at any time with `instructgpt report OUTPUT_DIR`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pipelines.stages import package_versions, read_stage_info

__all__ = ["write_report"]

_FINAL_ORDER = ("ppo", "ppo_ptx", "rloo", "grpo", "sft")


def _history(stage_dir: Path) -> list[dict[str, Any]]:
    path = stage_dir / "log_history.json"
    return json.loads(path.read_text())["log_history"] if path.is_file() else []


def _eval_prompts(infos: dict[str, dict]):
    """Held-out prompts of the embedded task the policies were trained on, or None for other data."""
    from pipelines.data import RECIPE_TASK_SEED, get_dataset

    source = infos.get("ppo") or infos.get("sft") or {}
    config = source.get("config", {})
    if config.get("dataset_name") != "embedded":
        return None
    return get_dataset("embedded", "prompts", seed=config.get("task_seed", RECIPE_TASK_SEED))["test"][
        "prompt"
    ]


def write_report(
    output_dir: str | os.PathLike,
    recipe_dir: str | os.PathLike | None = None,
    policies: dict[str, Path] | None = None,
    timings: dict[str, float] | None = None,
    max_new_tokens: int = 32,
) -> dict[str, Any]:
    """Evaluate the policies and write report.json, report.md, plots and samples.md."""
    from pipelines.evaluation import evaluate_policies

    output_dir = Path(output_dir)
    from pipelines.runner import STAGES

    order = {stage.name: i for i, stage in enumerate(STAGES)}
    folders = sorted(
        (p for p in output_dir.iterdir() if p.is_dir()), key=lambda p: (order.get(p.name, 99), p.name)
    )
    infos = {p.name: info for p in folders if (info := read_stage_info(p))}
    report: dict[str, Any] = {
        "recipe_dir": str(recipe_dir) if recipe_dir else None,
        "seed": next((i.get("seed") for i in infos.values()), None),
        "versions": package_versions(),
        "config_hashes": {name: info.get("config_hash") for name, info in infos.items()},
        "timings_seconds": {k: round(v, 1) for k, v in (timings or {}).items()},
        "stages": {},
        "evaluation": {},
    }
    for name, info in infos.items():
        entry = {"output_dir": str(output_dir / name), **info.get("metrics", {})}
        if name == "reward":
            entry["eval_accuracy"] = info["metrics"].get("eval_accuracy")
            entry["length_baseline_accuracy"] = info["metrics"].get("eval_length_baseline_accuracy")
            entry["eval_pairs"] = info["metrics"].get("eval_n")
        report["stages"][name] = entry

    prompts = _eval_prompts(infos)
    samples: list[dict[str, Any]] = []
    if policies and "sft" in policies and prompts is not None:
        results = evaluate_policies(
            {k: str(v) for k, v in policies.items()}, prompts, max_new_tokens=max_new_tokens
        )
        responses, scores = results.pop("_responses"), results.pop("_scores")
        report["evaluation"] = results
        for i in range(min(8, len(prompts))):
            samples.append(
                {
                    "prompt": prompts[i][-1]["content"],
                    **{f"{name}_response": responses[name][i] for name in responses},
                    **{f"{name}_gold": round(scores[name][i], 3) for name in scores},
                }
            )
        _attach_results_to_final_card(output_dir, report)
    elif prompts is None:
        report["evaluation"] = {"note": "gold-judge evaluation applies to the embedded task only"}

    (output_dir / "report.json").write_text(json.dumps(report, indent=2, default=str))
    _plots(output_dir, infos, report)
    _samples_md(output_dir, samples)
    _report_md(output_dir, report)
    return report


def _attach_results_to_final_card(output_dir: Path, report: dict[str, Any]) -> None:
    """Put the gold-judge results into the final policy's stage_info and rebuild its model card."""
    from pipelines.model_card import write_model_card

    final = next((name for name in _FINAL_ORDER if name in report["evaluation"]), None)
    if final is None:
        return
    stage_dir = output_dir / final
    info = read_stage_info(stage_dir)
    results = report["evaluation"][final]
    info["metrics"] = {**info.get("metrics", {}), **{f"eval_{k}": v for k, v in results.items() if k != "n"}}
    info["lineage"] = {
        name: {
            "output_dir": entry["output_dir"],
            "datasets": (read_stage_info(output_dir / name) or {}).get("datasets"),
        }
        for name, entry in report["stages"].items()
    }
    tmp = stage_dir / "stage_info.json.tmp"
    tmp.write_text(json.dumps(info, indent=2, sort_keys=True, default=str))
    os.replace(tmp, stage_dir / "stage_info.json")
    write_model_card(stage_dir)


def _plots(output_dir: Path, infos: dict[str, dict], report: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trained = [n for n in infos if _history(output_dir / n)]
    if trained:
        fig, axes = plt.subplots(1, len(trained), figsize=(4 * len(trained), 3.2), squeeze=False)
        for ax, name in zip(axes[0], trained, strict=True):
            history = _history(output_dir / name)
            key = "loss" if any("loss" in h for h in history) else "loss/policy_avg"
            points = [(h["step"], h[key]) for h in history if key in h and "step" in h]
            if points:
                ax.plot(*zip(*points, strict=True))
            ax.set_title(f"{name}: {key}")
            ax.set_xlabel("step")
        fig.tight_layout()
        fig.savefig(output_dir / "loss_per_stage.png", dpi=110)
        plt.close(fig)

    rl = [n for n in ("ppo", "ppo_ptx") if _history(output_dir / n)]
    if rl:
        fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
        for name in rl:
            history = [h for h in _history(output_dir / name) if "objective/scores" in h]
            left.plot([h["step"] for h in history], [h["objective/scores"] for h in history], label=name)
            right.plot([h["step"] for h in history], [h["objective/kl"] for h in history], label=name)
        left.set_title("reward-model score of sampled responses")
        right.set_title("KL(policy || SFT)")
        for ax in (left, right):
            ax.set_xlabel("PPO step")
            ax.legend()
        fig.tight_layout()
        fig.savefig(output_dir / "ppo_reward_kl.png", dpi=110)
        plt.close(fig)

    evaluation = {k: v for k, v in report["evaluation"].items() if isinstance(v, dict) and "gold_score" in v}
    if evaluation:
        fig, ax = plt.subplots(figsize=(1.3 * len(evaluation) + 2, 3.2))
        names = list(evaluation)
        ax.bar(names, [evaluation[n]["gold_score"] for n in names], color="tab:blue")
        ax.set_ylim(0, 1)
        ax.set_ylabel("mean gold score (held-out prompts)")
        for i, name in enumerate(names):
            ax.text(
                i, evaluation[name]["gold_score"] + 0.02, f"{evaluation[name]['gold_score']:.2f}", ha="center"
            )
        fig.tight_layout()
        fig.savefig(output_dir / "gold_scores.png", dpi=110)
        plt.close(fig)


def _samples_md(output_dir: Path, samples: list[dict[str, Any]]) -> None:
    lines = ["# Sample responses on held-out prompts", ""]
    for sample in samples:
        lines.append(f"**Prompt:** {sample['prompt']}")
        for key, value in sample.items():
            if key.endswith("_response"):
                name = key[: -len("_response")]
                lines.append(f"- {name} (gold {sample[name + '_gold']}): `{value}`")
        lines.append("")
    (output_dir / "samples.md").write_text("\n".join(lines))


def _report_md(output_dir: Path, report: dict[str, Any]) -> None:
    lines = ["# InstructGPT pipeline report", ""]
    reward = report["stages"].get("reward")
    if reward:
        lines += [
            "## Reward model",
            f"- pairwise accuracy on held-out pairs: **{reward.get('eval_accuracy')}** "
            f"(length baseline {reward.get('length_baseline_accuracy')}, {reward.get('eval_pairs')} pairs)",
        ]
        if reward.get("eval_policy_accuracy") is not None:  # the stage's metrics are in its entry already
            lines.append(
                f"- on pairs of the SFT policy's own samples (held-out prompts): **{reward['eval_policy_accuracy']:.3f}** "
                f"({reward.get('eval_policy_n')} pairs)"
            )
        lines.append("")
    evaluation = {k: v for k, v in report["evaluation"].items() if isinstance(v, dict) and "gold_score" in v}
    if evaluation:
        lines += ["## Policies under the gold judge (held-out prompts)", "",
                  "Greedy: the policy's best answer. Sampled: answers at temperature 1, the policy's own distribution; "
                  "win rates count ties as half.", "",
                  "| policy | gold (greedy) | win rate vs SFT (greedy) | gold (sampled) | win rate vs SFT (sampled) "
                  "| KL to SFT |", "|---|---|---|---|---|---|"]  # fmt: skip

        def cell(value: float | None) -> str:
            return "" if value is None else f"{value:.3f}"

        for name, entry in evaluation.items():
            lines.append(
                f"| {name} | {entry['gold_score']:.3f} | {cell(entry.get('win_rate_vs_sft'))} | "
                f"{cell(entry.get('sampled_gold_score'))} | {cell(entry.get('sampled_win_rate_vs_sft'))} | "
                f"{cell(entry.get('kl_to_sft'))} |"
            )
        lines.append("")
    lines += ["## Plots", "", "![loss](loss_per_stage.png)", "", "![ppo](ppo_reward_kl.png)", "",
              "![gold](gold_scores.png)", "", "Samples: [samples.md](samples.md)", "",
              "## Stage timings (seconds)", ""]  # fmt: skip
    lines += [f"- {k}: {v}" for k, v in report["timings_seconds"].items()]
    (output_dir / "report.md").write_text("\n".join(lines) + "\n")
