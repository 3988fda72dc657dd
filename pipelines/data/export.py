"""Write the embedded datasets to disk as JSONL, with their data cards and a summary."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from pipelines.data.cards import EMBEDDED_NAMES, embedded_statistics, render_embedded_cards
from pipelines.data.task import TaskConfig, build_task

__all__ = ["export_embedded"]

_EXAMPLES = 2


def _summary_markdown(summary: dict[str, Any]) -> str:
    lines = ["# Embedded task export", "", f"Configuration: `{json.dumps(summary['config'])}`", ""]
    lines += ["| dataset | split | rows |", "|---|---|---:|"]
    for name, info in summary["datasets"].items():
        lines += [f"| {name} | {split} | {n} |" for split, n in info["rows"].items()]
    noise = summary["label_noise_measured"]
    lines += [
        "",
        f"Label noise measured on preference pairs: train {noise['train']}, test {noise['test']}.",
        "",
    ]
    for name, info in summary["datasets"].items():
        if info["kinds"]:
            lines += [
                f"Kinds in {name} (train): " + ", ".join(f"{k} {n}" for k, n in info["kinds"].items()),
                "",
            ]
    lines += ["## Example rows", ""]
    for name, info in summary["datasets"].items():
        lines += [f"### {name}", ""]
        lines += [f"```json\n{json.dumps(row, ensure_ascii=False)}\n```" for row in info["examples"]]
        lines.append("")
    return "\n".join(lines)


def export_embedded(
    output_dir: str | Path, task_config: TaskConfig | None = None, *, overwrite: bool = False
) -> dict[str, Any]:
    """Export every embedded dataset to ``output_dir/<embedded-kind>/<split>.jsonl`` + ``README.md``.

    Also writes ``summary.json`` and ``summary.md`` (sizes, kinds, example rows, measured label
    noise) and returns the summary. Each folder loads with ``datasets.load_dataset("json", ...)`` and
    with ``get_dataset(folder, kind)``. Refuses a non-empty ``output_dir`` unless ``overwrite=True``,
    which replaces the export's own folders and files and leaves anything else in place.
    """
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"output_dir {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(
            f"output folder {out} is not empty; choose an empty or new folder, or pass overwrite=True "
            "(--overwrite) to replace the exported datasets in it"
        )
    config = task_config or TaskConfig()
    task = build_task(config)
    cards = render_embedded_cards(config)
    stats = embedded_statistics(config)
    out.mkdir(parents=True, exist_ok=True)

    summary: dict[str, Any] = {"config": stats["config"], "datasets": {}}
    for kind, name in EMBEDDED_NAMES.items():
        folder = out / name
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir()
        for split, ds in task[kind].items():
            with (folder / f"{split}.jsonl").open("w", encoding="utf-8") as f:
                for row in ds:
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
        (folder / "README.md").write_text(cards[name], encoding="utf-8")
        train = task[kind]["train"]
        summary["datasets"][name] = {
            "kind": kind,
            "path": str(folder),
            "rows": {split: len(ds) for split, ds in task[kind].items()},
            "kinds": stats[kind]["train"].get("kinds", {}),
            "examples": [train[i] for i in range(min(_EXAMPLES, len(train)))],
        }
    summary["label_noise_measured"] = {
        split: stats["preference"][split]["label_noise_measured"] for split in task["preference"]
    }
    summary["prompts_overlap_with_training"] = stats["prompts_overlap_with_training"]
    (out / "summary.json").write_text(
        json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (out / "summary.md").write_text(_summary_markdown(summary), encoding="utf-8")
    return summary
