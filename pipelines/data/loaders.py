"""`get_dataset`: one entry point from a dataset name to the shape a trainer expects.

``name`` is ``"embedded"`` (the generated task), a local file or folder, or a Hub dataset id.
Local files: ``.json`` (a list of rows), ``.jsonl``/``.jsonl.gz`` (one row per line), ``.txt``
(plain text, one row per blank-line-separated paragraph; pretraining only). A folder holds such
files, one per split (``train.jsonl``, ``valid.txt``...), or is a ``save_to_disk`` folder.

The result always has ``train`` and ``test`` splits: ``validation`` (or ``valid``/``dev``) serves
as ``test`` when there is no test split, as ``train`` when there is no train split; a source with
a single split gets a deterministic ``test`` split of ``TEST_FRACTION`` of its rows (at least one).
"""

from __future__ import annotations

import gzip
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets
from datasets import Dataset, DatasetDict

from pipelines.data.task import TaskConfig, build_task
from pipelines.data.validation import DATASET_KINDS, DataValidationError, validate_dataset

__all__ = ["TEST_FRACTION", "get_dataset", "parse_hh_dialogue"]

logger = logging.getLogger(__name__)

#: Fraction of rows carved out as ``test`` when a source has a single split.
TEST_FRACTION = 0.05
_DATA_SUFFIXES = (".jsonl.gz", ".jsonl", ".json", ".txt")
_SPLIT_ALIASES = {
    "train": "train",
    "test": "test",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "eval": "test",
}
_HH_TURN = re.compile(r"\n\n(Human|Assistant):")
_HH_ROLES = {"Human": "user", "Assistant": "assistant"}


def _fix_for(kind: str) -> str:
    return {
        "pretrain": "give every row a non-empty 'text' field",
        "sft": "give every row 'messages' (user/assistant turns) or 'prompt' and 'completion'",
        "preference": "give every row 'prompt', 'chosen' and 'rejected' (or HH-RLHF 'chosen'/'rejected' dialogues)",
        "prompts": "give every row a 'prompt' (or 'messages' / preference fields to take it from)",
    }[kind]


def _missing(source: str, row: int, field: str, kind: str, found: dict[str, Any]) -> DataValidationError:
    return DataValidationError(
        source,
        row,
        field,
        f"no field '{field}' (fields present: {sorted(found)})",
        f"a {kind} row with '{field}'",
        _fix_for(kind),
    )


# --------------------------------------------------------------------------------- reading files


def _read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSON / JSONL(.gz) file; a line that is not a JSON object raises naming file and row."""
    if path.name.endswith(".json"):
        with path.open(encoding="utf-8") as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                raise DataValidationError(
                    str(path),
                    None,
                    None,
                    f"invalid JSON ({e})",
                    "a JSON list of objects",
                    "fix the file, or use .jsonl with one object per line",
                ) from e
        if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
            yield from ({k: data[k][i] for k in data} for i in range(min(map(len, data.values()), default=0)))
            return
        if not isinstance(data, list):
            raise DataValidationError(
                str(path),
                None,
                None,
                type(data).__name__,
                "a JSON list of objects",
                "write the rows as a JSON list, or as JSONL",
            )
        rows: Any = data
    else:
        opener = gzip.open if path.name.endswith(".gz") else open
        rows = _jsonl_rows(path, opener)
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DataValidationError(
                str(path),
                i,
                None,
                f"a {type(row).__name__} ({row!r:.60})",
                "a JSON object per row",
                "write one JSON object per row",
            )
        yield row


def _jsonl_rows(path: Path, opener: Any) -> Iterator[Any]:
    with opener(path, "rt", encoding="utf-8") as f:
        row = 0
        for line_number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                raise DataValidationError(
                    str(path),
                    row,
                    None,
                    f"invalid JSON on line {line_number} ({e.msg})",
                    "one JSON object per line",
                    "repair or delete that line",
                ) from e
            row += 1


def _read_text(path: Path) -> list[dict[str, str]]:
    text = path.read_text(encoding="utf-8")
    return [{"text": p.strip()} for p in re.split(r"\n\s*\n", text) if p.strip()]


def _split_name(path: Path) -> str:
    stem = path.name
    for suffix in _DATA_SUFFIXES:
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    stem = re.sub(r"-\d+-of-\d+$", "", stem).lower()
    return _SPLIT_ALIASES.get(stem, "train")


# ------------------------------------------------------------------------------------- converting


def parse_hh_dialogue(text: str) -> list[dict[str, str]]:
    """Anthropic HH-RLHF's raw ``"\\n\\nHuman: ...\\n\\nAssistant: ..."`` text as chat messages.

    Turn contents are stripped; an empty final assistant turn is kept (with empty content).
    """
    parts = _HH_TURN.split(text)
    if parts[0].strip() or len(parts) < 3:
        raise ValueError(f"not an HH-RLHF dialogue (expected '\\n\\nHuman: ...' turns): {text[:80]!r}")
    return [
        {"role": _HH_ROLES[r], "content": c.strip()} for r, c in zip(parts[1::2], parts[2::2], strict=True)
    ]


def _is_hh(value: Any) -> bool:
    return isinstance(value, str) and value.lstrip(" ").startswith("\n\nHuman:")


def _as_user(value: Any) -> Any:
    return [{"role": "user", "content": value}] if isinstance(value, str) else value


def _as_assistant(value: Any) -> Any:
    return [{"role": "assistant", "content": value}] if isinstance(value, str) else value


def _split_last_assistant(messages: Any) -> tuple[Any, Any]:
    """(messages before the last assistant turn, [last assistant turn])."""
    if not isinstance(messages, list):
        return messages, None
    for i in range(len(messages) - 1, -1, -1):
        if isinstance(messages[i], dict) and messages[i].get("role") == "assistant":
            return messages[:i], messages[i:]
    return messages, None


class _Skip(Exception):
    """A well-formed row the trainer cannot use (e.g. HH-RLHF with an empty answer); dropped and counted."""


def _convert_preference(row: dict[str, Any], i: int, source: str) -> dict[str, Any]:
    for field in ("chosen", "rejected"):
        if row.get(field) is None:
            raise _missing(source, i, field, "preference", row)
    chosen, rejected = row["chosen"], row["rejected"]
    if row.get("prompt") is not None:
        return {
            "prompt": _as_user(row["prompt"]),
            "chosen": _as_assistant(chosen),
            "rejected": _as_assistant(rejected),
        }
    if _is_hh(chosen) and _is_hh(rejected):
        chosen, rejected = parse_hh_dialogue(chosen), parse_hh_dialogue(rejected)
    if isinstance(chosen, list) and isinstance(rejected, list):  # implicit prompt: split the shared prefix
        prompt_c, answer_c = _split_last_assistant(chosen)
        prompt_r, answer_r = _split_last_assistant(rejected)
        if answer_c is None or answer_r is None:
            raise DataValidationError(
                source,
                i,
                "chosen",
                "a dialogue without an assistant turn",
                "dialogues ending with the assistant's answer",
                _fix_for("preference"),
            )
        if prompt_c != prompt_r:
            raise _Skip("chosen and rejected dialogues differ before the last assistant turn")
        if not answer_c[0]["content"].strip() or not answer_r[0]["content"].strip():
            raise _Skip("an empty final answer")
        return {"prompt": prompt_c, "chosen": answer_c, "rejected": answer_r}
    raise _missing(source, i, "prompt", "preference", row)


def _convert_sft(row: dict[str, Any], i: int, source: str) -> dict[str, Any]:
    if row.get("messages") is not None:
        return {"messages": row["messages"]}
    if row.get("prompt") is not None or row.get("completion") is not None:
        for field in ("prompt", "completion"):
            if row.get(field) is None:
                raise _missing(source, i, field, "sft", row)
        return {"prompt": row["prompt"], "completion": row["completion"]}
    if row.get("instruction") is not None:  # Alpaca: instruction (+ input) -> output
        if row.get("output") is None:
            raise _missing(source, i, "output", "sft", row)
        user = row["instruction"] + (f"\n\n{row['input']}" if row.get("input") else "")
        return {
            "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": row["output"]}]
        }
    if row.get("chosen") is not None:  # a preference dataset: its chosen answers are demonstrations
        pref = _convert_preference(row, i, source)
        return {"messages": _as_user(pref["prompt"]) + pref["chosen"]}
    raise _missing(source, i, "messages", "sft", row)


def _convert_prompts(row: dict[str, Any], i: int, source: str) -> dict[str, Any]:
    if row.get("prompt") is not None:
        return {"prompt": _as_user(row["prompt"])}
    if row.get("messages") is not None:
        prompt, answer = _split_last_assistant(row["messages"])
        return {"prompt": prompt if answer is not None else row["messages"]}
    if row.get("chosen") is not None:
        return {"prompt": _convert_preference(row, i, source)["prompt"]}
    raise _missing(source, i, "prompt", "prompts", row)


def _convert_pretrain(row: dict[str, Any], i: int, source: str) -> dict[str, Any]:
    for field in ("text", "content"):
        if field in row and row[field] is not None:
            return {"text": row[field]}
    raise _missing(source, i, "text", "pretrain", row)


_CONVERTERS = {
    "pretrain": _convert_pretrain,
    "sft": _convert_sft,
    "preference": _convert_preference,
    "prompts": _convert_prompts,
}


_RESERVED = frozenset(
    {
        "prompt",
        "completion",
        "chosen",
        "rejected",
        "messages",
        "text",
        "content",
        "instruction",
        "input",
        "output",
    }
)
_SCALARS = (str, int, float, bool)


def _convert(rows: Any, kind: str, source: str, max_rows: int | None) -> Dataset:
    if (
        kind == "pretrain"
        and isinstance(rows, Dataset)
        and rows.features.get("text") == datasets.Value("string")
    ):
        # fast path for large Hub corpora already in shape: Arrow-side filtering of blank rows
        kept = rows.select_columns(["text"]).filter(
            lambda batch: [bool(t and t.strip()) for t in batch["text"]], batched=True
        )
        return kept.select(range(min(max_rows, len(kept)))) if max_rows is not None else kept
    converter = _CONVERTERS[kind]
    out: list[dict[str, Any]] = []
    skipped: dict[str, list[int]] = {}
    seen: set[str] = set()
    for i, row in enumerate(rows):
        if max_rows is not None and len(out) >= max_rows:
            break
        try:
            converted = converter(row, i, source)
        except _Skip as why:
            skipped.setdefault(str(why), []).append(i)
            continue
        if kind == "pretrain" and isinstance(converted["text"], str) and not converted["text"].strip():
            continue  # blank lines of line-per-row corpora (wikitext)
        if kind == "prompts":  # one row per distinct prompt
            key = json.dumps(converted["prompt"], sort_keys=True)
            if key in seen:
                continue
            seen.add(key)
        if kind in ("sft", "preference"):
            converted.update((k, v) for k, v in row.items() if k not in _RESERVED and isinstance(v, _SCALARS))
        elif kind == "prompts" and "kind" in row:
            converted["kind"] = row["kind"]
        out.append(converted)
    for why, indices in skipped.items():
        logger.warning("%s: dropped %d rows: %s (rows %s)", source, len(indices), why, indices[:10])
    if not out:
        raise DataValidationError(
            source, None, None, "no usable rows", f"at least one {kind} row", _fix_for(kind)
        )
    return Dataset.from_list(out)


# -------------------------------------------------------------------------------------- sources


def _local_splits(path: Path, kind: str, split: str | None) -> dict[str, tuple[str, Any]]:
    """split -> (source name, rows) for a local file or folder."""
    if path.is_dir():
        if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
            loaded = datasets.load_from_disk(str(path))
            parts = loaded if isinstance(loaded, DatasetDict) else {"train": loaded}
            return {_SPLIT_ALIASES.get(s, s): (f"{path} [{s}]", part) for s, part in parts.items()}
        files = sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(_DATA_SUFFIXES))
        if not files:
            raise FileNotFoundError(
                f"{path}: no data files ({', '.join(_DATA_SUFFIXES)}) and not a save_to_disk folder"
            )
        grouped: dict[str, list[Path]] = {}
        for f in files:
            grouped.setdefault(_split_name(f), []).append(f)
        if split is not None:
            wanted = _SPLIT_ALIASES.get(split, split)
            if wanted not in grouped:
                raise ValueError(f"{path}: no split {split!r}; found {sorted(grouped)}")
            grouped = {"train": grouped[wanted]}
        return {s: _read_files(fs, kind) for s, fs in grouped.items()}
    if not path.is_file():
        raise FileNotFoundError(f"no such file or folder: {path}")
    return {"train": _read_files([path], kind)}


def _read_files(files: list[Path], kind: str) -> tuple[str, Any]:
    def rows() -> Iterator[dict[str, Any]]:
        for f in files:
            if f.name.endswith(".txt"):
                if kind != "pretrain":
                    raise ValueError(
                        f"{f}: plain text only makes a pretrain dataset, not {kind!r}; use JSON(L)"
                    )
                yield from _read_text(f)
            else:
                yield from _read_records(f)

    return (
        str(files[0]) if len(files) == 1 else f"{files[0].parent} ({', '.join(f.name for f in files)})",
        rows(),
    )


def _hub_splits(
    name: str, config: str | None, revision: str | None, split: str | None
) -> dict[str, tuple[str, Any]]:
    source = name + (f" ({config})" if config else "")
    try:
        loaded = datasets.load_dataset(name, config, revision=revision, split=split)
    except Exception as e:
        raise ValueError(
            f"could not load {source!r} as a Hub dataset ({type(e).__name__}: {e}). Check the id, config and "
            "revision; offline (HF_HUB_OFFLINE=1) a dataset must already be in the cache. For local data pass "
            "an existing path, for the generated task pass 'embedded'."
        ) from e
    if isinstance(loaded, Dataset):
        return {"train": (f"{source} [{split}]", loaded)}
    return {_SPLIT_ALIASES.get(s, s): (f"{source} [{s}]", part) for s, part in loaded.items()}


def _arrange(parts: dict[str, Dataset], seed: int) -> DatasetDict:
    """Ensure ``train`` and ``test`` splits (see module docstring)."""
    parts = dict(parts)
    if "train" not in parts and "validation" in parts:
        parts["train"] = parts.pop("validation")
    if "test" not in parts and "validation" in parts:
        parts["test"] = parts.pop("validation")
    if "train" not in parts:
        raise ValueError(f"no train, validation or test split to train on; found {sorted(parts)}")
    if "test" not in parts:
        train = parts["train"]
        if len(train) < 2:
            raise ValueError(f"{len(train)} row(s): too few to carve a test split")
        n_test = max(1, round(len(train) * TEST_FRACTION))
        carved = train.train_test_split(test_size=n_test, seed=seed, shuffle=True)
        parts["train"], parts["test"] = carved["train"], carved["test"]
    order = ["train", "test"] + sorted(k for k in parts if k not in ("train", "test"))
    return DatasetDict({k: parts[k] for k in order})


def _looks_local(name: str) -> bool:
    return name.startswith((".", "/", "~")) or name.endswith(_DATA_SUFFIXES) or name.count("/") > 1


def get_dataset(
    name: str,
    kind: str,
    *,
    config: str | None = None,
    revision: str | None = None,
    split: str | None = None,
    seed: int = 42,
    task_config: TaskConfig | None = None,
    max_rows: int | None = None,
) -> DatasetDict:
    """Load ``name`` as a ``kind`` dataset ("pretrain", "sft", "preference", "prompts"), validated.

    Shapes: pretrain -> ``text``; sft -> conversational ``messages`` (``prompt``/``completion`` pass
    through; Alpaca ``instruction``/``output`` and preference ``chosen`` dialogues are converted);
    preference -> conversational ``prompt``/``chosen``/``rejected`` (HH-RLHF raw dialogues are split
    at the last assistant turn; rows whose two dialogues differ before it, or with an empty answer,
    are dropped with a warning); prompts -> conversational ``prompt``, one row per distinct prompt
    (taken from preference or SFT rows when needed). Other scalar columns (``kind``, ``source``...)
    are kept for sft and preference; prompts keep only ``kind``.

    ``"embedded"`` builds the generated task from ``task_config`` (default ``TaskConfig(seed=seed)``).
    ``split`` reads one source split (a Hub split expression such as ``"train[:1000]"`` works) and
    carves ``test`` from it. ``max_rows`` stops reading each split after that many usable rows
    (local files are read lazily). ``seed`` also fixes the carved test split.
    """
    if kind not in DATASET_KINDS:
        raise ValueError(f"unknown dataset kind {kind!r}; expected one of {sorted(DATASET_KINDS)}")
    if name == "embedded":
        result = build_task(task_config or TaskConfig(seed=seed))[kind]
        if split is not None:
            result = _arrange({"train": result[split]}, seed)
        if max_rows is not None:
            result = DatasetDict({s: d.select(range(min(max_rows, len(d)))) for s, d in result.items()})
        return result

    path = Path(name).expanduser()
    if path.exists():
        sources = _local_splits(path, kind, split)
    elif _looks_local(name):
        raise FileNotFoundError(f"no such file or folder: {name} (a Hub id looks like 'org/name')")
    else:
        sources = _hub_splits(name, config, revision, split)

    parts: dict[str, Dataset] = {}
    for split_name, (source, rows) in sources.items():
        parts[split_name] = _convert(rows, kind, source, max_rows)
        validate_dataset(parts[split_name], kind, source)
    return _arrange(parts, seed)
