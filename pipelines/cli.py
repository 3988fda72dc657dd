"""The `instructgpt` command.

    instructgpt run [RECIPE_DIR] [--output-dir DIR] [--accelerate-config FILE]   every stage, then the report
    instructgpt data --output-dir DIR [--seed N]                                 the embedded datasets + cards
    instructgpt report OUTPUT_DIR                                                rebuild the report of a run
    instructgpt push OUTPUT_DIR REPO_ID [--revision BRANCH] [--merge-adapter]    a stage's model to the Hub
    instructgpt push-data DATA_DIR REPO_ID [--card README.md]                   a prepared dataset to the Hub
    instructgpt pull REPO_ID [--revision REV] [--repo-type model|dataset]        an artifact for offline use

Hub tokens come from `HF_TOKEN` or `hf auth login`; they are never accepted on the command
line (it would leak into shell history and process lists).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="instructgpt", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run every stage of a recipe directory, then evaluate and report")
    run.add_argument(
        "recipe_dir", nargs="?", default=None, help="folder of stage YAMLs (default: recipes/tiny)"
    )
    run.add_argument(
        "--output-dir", default="outputs/tiny", help="where each stage's folder and the report go"
    )
    run.add_argument(
        "--accelerate-config", default=None, help="accelerate_configs/*.yaml (default: cpu.yaml)"
    )
    run.add_argument("--stages", nargs="+", default=None, help="run only these stages (in pipeline order)")
    run.add_argument(
        "--seed", type=int, default=None, help="training seed of every stage (default: the YAMLs')"
    )
    run.add_argument("--no-eval", action="store_true", help="skip the final evaluation and report")

    data = sub.add_parser("data", help="write the embedded datasets, their cards and a summary")
    data.add_argument("--output-dir", required=True)
    data.add_argument("--seed", type=int, default=None, help="task seed (default: the recipes', 0)")
    data.add_argument("--overwrite", action="store_true", help="replace an earlier export in the folder")

    report = sub.add_parser("report", help="(re)build report.json, plots and samples of a finished run")
    report.add_argument("output_dir")

    push = sub.add_parser(
        "push", help="push a stage's output folder (model or adapter, tokenizer, code, card)"
    )
    push.add_argument("output_dir")
    push.add_argument("repo_id")
    push.add_argument("--revision", default=None, help="branch to push to (created from main if missing)")
    push.add_argument("--private", action="store_true")
    push.add_argument(
        "--overwrite", action="store_true", help="replace what an earlier push left on the branch"
    )
    push.add_argument(
        "--merge-adapter", action="store_true", help="push the merged model instead of the adapter"
    )

    push_data = sub.add_parser("push-data", help="push a prepared dataset folder with its data card")
    push_data.add_argument(
        "data_dir", help="e.g. a folder written by `instructgpt data` (one dataset per subfolder)"
    )
    push_data.add_argument("repo_id")
    push_data.add_argument("--card", default=None, help="data card (default: DATA_DIR/README.md)")
    push_data.add_argument("--revision", default=None)
    push_data.add_argument("--private", action="store_true")
    push_data.add_argument("--overwrite", action="store_true")

    pull = sub.add_parser("pull", help="download a Hub artifact into the local cache (or a folder)")
    pull.add_argument("repo_id")
    pull.add_argument("--revision", default=None, help="branch, tag or commit sha (pin it for repeatability)")
    pull.add_argument("--repo-type", default="model", choices=["model", "dataset"])
    pull.add_argument("--local-dir", default=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    try:
        if args.command == "run":
            from pipelines.runner import run_pipeline

            report = run_pipeline(
                args.recipe_dir, args.output_dir, args.accelerate_config, args.stages,
                evaluate=not args.no_eval, seed=args.seed,
            )  # fmt: skip
            _print_summary(report, Path(args.output_dir))
        elif args.command == "data":
            from pipelines.data import RECIPE_TASK_SEED, TaskConfig, export_embedded

            seed = RECIPE_TASK_SEED if args.seed is None else args.seed
            summary = export_embedded(args.output_dir, TaskConfig(seed=seed), overwrite=args.overwrite)
            for name, info in summary["datasets"].items():
                print(f"{name}: {info['rows']}")
            print(f"Wrote {args.output_dir} (see summary.md there).")
        elif args.command == "report":
            from pipelines.report import write_report
            from pipelines.runner import POLICY_STAGES
            from pipelines.stages import is_complete

            out = Path(args.output_dir)
            policies = {n: out / n for n in POLICY_STAGES if is_complete(out / n)}
            _print_summary(write_report(out, policies=policies), out)
        elif args.command == "push":
            from pipelines.hub import push_stage

            sha = push_stage(
                args.output_dir, args.repo_id, revision=args.revision, private=args.private,
                overwrite=args.overwrite, merge_adapter=args.merge_adapter,
            )  # fmt: skip
            print(f"Pushed {args.output_dir} to {args.repo_id}@{args.revision or 'main'} (commit {sha}).")
        elif args.command == "push-data":
            from pipelines.hub import push_dataset

            sha = push_dataset(
                args.data_dir, args.repo_id, card_path=args.card, revision=args.revision,
                private=args.private, overwrite=args.overwrite,
            )  # fmt: skip
            print(
                f"Pushed {args.data_dir} to dataset {args.repo_id}@{args.revision or 'main'} (commit {sha})."
            )
        elif args.command == "pull":
            from pipelines.hub import pull

            path = pull(
                args.repo_id, revision=args.revision, repo_type=args.repo_type, local_dir=args.local_dir
            )
            print(path)
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as err:
        print(f"instructgpt {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


def _print_summary(report: dict, output_dir: Path) -> None:
    if not report:
        return
    reward = report.get("stages", {}).get("reward", {})
    if reward:
        print(
            f"reward model: accuracy {reward.get('eval_accuracy')} "
            f"(length baseline {reward.get('length_baseline_accuracy')})"
        )
    for name, entry in report.get("evaluation", {}).items():
        if isinstance(entry, dict) and "gold_score" in entry:
            extra = {k: round(v, 3) for k, v in entry.items() if k.startswith(("win_rate", "kl_"))}
            print(f"{name}: gold score {entry['gold_score']:.3f} {json.dumps(extra) if extra else ''}")
    print(f"Report: {output_dir / 'report.md'} (report.json, plots, samples.md)")


if __name__ == "__main__":
    sys.exit(main())
