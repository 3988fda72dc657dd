"""Output-folder bookkeeping shared by the recipes: protect, resume, finish atomically.

A stage's output folder goes through three states:

1. started:   `.pipelines_run.json` names the stage (written before training);
2. training:  `checkpoint-*` folders appear; one is complete once its last file is written
              (`trainer_state.json` for the Hugging Face trainers, `pipelines_ppo_state.json` for
              PPO), and a run resumes from the newest complete one (a kill during a save leaves
              a partial folder, which is skipped);
3. complete:  the final model is moved in, then `stage_info.json` is written last, with
              `os.replace`. No `stage_info.json` means the stage is not complete,
              whatever else the folder holds.

A folder that is not empty and not an earlier run of the same stage is never written to
unless `overwrite_output_dir` is set. Even then its contents are not deleted up front: they are
moved aside to `.<name>.overwritten` beside it and deleted only when the new run completes, so a
run that fails on bad input (or is killed) loses nothing; the first set-aside copy is the one kept.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from accelerate import PartialState
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from pipelines.configs import ConfigError
from pipelines.debug import check_process_group

logger = logging.getLogger("pipelines")

__all__ = [
    "CHECKPOINT_COMPLETE_FILES",
    "RUN_MARKER",
    "STAGE_INFO",
    "config_hash",
    "dataclass_config",
    "finalize_stage",
    "finish_stage",
    "log_length_report",
    "is_complete",
    "overwritten_dir",
    "last_complete_checkpoint",
    "package_versions",
    "prepare_output_dir",
    "read_stage_info",
]

RUN_MARKER = ".pipelines_run.json"
STAGE_INFO = "stage_info.json"
#: Files written last into a checkpoint: HF Trainer's state, and the PPO trainer's (pipelines.ppo).
CHECKPOINT_COMPLETE_FILES = ("trainer_state.json", "pipelines_ppo_state.json")
_PACKAGES = ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "instructgpt-pipelines")


def package_versions() -> dict[str, str]:
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def config_hash(config: dict[str, Any]) -> str:
    """A short, stable hash of a (redacted) config, recorded in stage_info and the report."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def read_stage_info(output_dir: str | os.PathLike) -> dict[str, Any] | None:
    path = Path(output_dir) / STAGE_INFO
    return json.loads(path.read_text()) if path.is_file() else None


def is_complete(output_dir: str | os.PathLike) -> bool:
    info = read_stage_info(output_dir)
    return bool(info and info.get("complete"))


def last_complete_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest `checkpoint-N` folder whose save finished, or None; partial ones are skipped (and logged).

    Hugging Face's Trainer writes a checkpoint file by file, `trainer_state.json` last, so a run killed
    while saving leaves a `checkpoint-N` that cannot be resumed from; the previous one is still there
    (rotation deletes old checkpoints only after a new one is complete).
    """
    found = []
    for item in Path(output_dir).iterdir():
        name = item.name
        if item.is_dir() and name.startswith(PREFIX_CHECKPOINT_DIR + "-") and name.split("-", 1)[1].isdigit():
            found.append((int(name.split("-", 1)[1]), item))
    for _, item in sorted(found, reverse=True):
        if any((item / f).is_file() for f in CHECKPOINT_COMPLETE_FILES):
            return str(item)
        if PartialState().is_main_process:
            logger.warning(
                "%s is incomplete (the run was stopped while saving it): not resuming from it.", item
            )
    return None


# Keys that may change between an interrupted run and its resumption without changing the run.
_RESUME_NEUTRAL_KEYS = {"overwrite_output_dir", "logging_steps", "logging_dir", "report_to", "disable_tqdm"}


def prepare_output_dir(
    output_dir: str | os.PathLike, stage: str, overwrite: bool = False, args: tuple | None = None
) -> str | None:
    """Check an output folder before any model is loaded; return the checkpoint to resume from.

    - empty or missing: start fresh;
    - an unfinished earlier run of this stage: resume from its last complete `checkpoint-*`,
      provided `args` (the parsed recipe arguments) are the ones it was started with;
    - a finished run of this stage, or anything else: refuse, unless `overwrite` (then the
      folder's contents are set aside, on the main process only, until the new run completes).
    """
    # Unsynchronised replicas (a multi-process launch Accelerate did not join) would race on the folder.
    check_process_group()
    config = (
        {k: v for k, v in dataclass_config(*args).items() if k not in _RESUME_NEUTRAL_KEYS} if args else None
    )
    path = Path(output_dir)
    state = PartialState()
    resume_from = None
    if path.is_dir() and any(path.iterdir()):
        marker = path / RUN_MARKER
        own_run = marker.is_file() and json.loads(marker.read_text()).get("stage") == stage
        if overwrite:
            if state.is_main_process:
                _set_aside(path)
        elif own_run and is_complete(path):
            raise ConfigError(
                f"{path} already holds a finished {stage} run (stage_info.json). Nothing to do; to train again, "
                "choose another output_dir or pass --overwrite_output_dir true (it replaces the folder)."
            )
        elif own_run:
            resume_from = last_complete_checkpoint(path)
            started_with = json.loads(marker.read_text()).get("config")
            # Only a run with a checkpoint has anything to mix up; one that never saved restarts freely.
            # An argument that one side lacks and the other leaves at None (a field added by a newer
            # version, at its default) changes nothing.
            if resume_from and config is not None and started_with is not None:
                changed = sorted(
                    k for k in set(config) | set(started_with) if config.get(k) != started_with.get(k)
                )
                if changed:
                    raise ConfigError(
                        f"{path} holds an unfinished {stage} run started with other arguments "
                        f"({', '.join(changed)}); resuming it would mix two runs. Run the same command as before "
                        "to resume, or choose another output_dir, or pass --overwrite_output_dir true to start over."
                    )
            if state.is_main_process:
                logger.warning(
                    "%s holds an unfinished %s run: %s", path, stage,
                    f"resuming from {resume_from}." if resume_from else "no complete checkpoint, starting at step 0.",
                )  # fmt: skip
        else:
            raise ConfigError(
                f"{path} is not empty and is not an earlier run of the {stage} stage: refusing to write into it. "
                "Choose another output_dir, or pass --overwrite_output_dir true to replace its contents."
            )
    state.wait_for_everyone()
    if state.is_main_process:
        path.mkdir(parents=True, exist_ok=True)
        _write_json_atomic(path / RUN_MARKER, {"stage": stage, "config": config})
    state.wait_for_everyone()
    return resume_from


def overwritten_dir(output_dir: str | os.PathLike) -> Path:
    """Where `overwrite_output_dir` keeps a folder's previous contents until the new run completes."""
    path = Path(output_dir).resolve()
    return path.with_name(f".{path.name}.overwritten")


def _set_aside(path: Path) -> None:
    aside = overwritten_dir(path)
    if aside.exists():  # set aside by an earlier attempt that did not finish: that copy is the user's
        shutil.rmtree(path)
        logger.warning(
            "%s: starting over; its contents before the first overwrite are still in %s.", path, aside
        )
        return
    try:
        os.replace(path, aside)
    except OSError as err:  # a mount point or another filesystem: cannot move, delete as asked
        logger.warning(
            "%s cannot be moved aside (%s): deleting it, as --overwrite_output_dir asks.", path, err
        )
        shutil.rmtree(path)
        return
    logger.warning("%s: previous contents moved to %s; deleted once this run completes.", path, aside)


def finalize_stage(
    trainer,
    output_dir: str | os.PathLike,
    info: dict[str, Any],
) -> Path:
    """Save the final model into `output_dir` atomically, then write `stage_info.json`.

    The model is saved into a temporary sub-folder, its files are moved in with `os.replace`,
    and the completion marker comes last, so an interrupted save never looks complete.
    """
    path = Path(output_dir)
    tmp = path / ".incomplete-final"
    state = PartialState()
    if state.is_main_process and tmp.exists():
        shutil.rmtree(tmp)  # left by a save that crashed: start clean, no stale files
    state.wait_for_everyone()
    unwrapped = trainer.accelerator.unwrap_model(trainer.model)
    # Gradient checkpointing turns the KV cache off in the config; a saved model must generate with it.
    for model in (unwrapped, getattr(unwrapped, "policy", None), getattr(unwrapped, "base_model", None)):
        if model is not None and hasattr(model, "config"):
            model.config.use_cache = True
    trainer.save_model(str(tmp))
    state.wait_for_everyone()
    if state.is_main_process:
        for item in tmp.iterdir():
            os.replace(item, path / item.name)
        shutil.rmtree(tmp, ignore_errors=True)
        history = trainer.state.log_history
        _write_json_atomic(path / "log_history.json", {"log_history": history})
        info = {**info, "versions": package_versions(), "complete": True}
        _write_json_atomic(path / STAGE_INFO, info)
        shutil.rmtree(overwritten_dir(path), ignore_errors=True)  # the new run is complete
    state.wait_for_everyone()
    return path


def log_length_report(ds, tokenizer, max_length: int | None, kind: str, source: str) -> None:
    """Say before training how many rows exceed `max_length` and what the trainer will do with them."""
    if not max_length:
        return
    from pipelines.data import check_lengths

    report = check_lengths(ds, tokenizer, max_length, kind, source)
    if PartialState().is_main_process:
        (logger.warning if report.n_too_long else logger.info)(report.message)


def dataclass_config(*objs) -> dict[str, Any]:
    """The parsed arguments as one JSON-able dict, secrets redacted."""
    from pipelines.hub import redact_secrets

    merged: dict[str, Any] = {}
    for obj in objs:
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if isinstance(value, (str, int, float, bool, type(None), list, dict)):
                merged[f.name] = value
            else:
                merged[f.name] = str(value)
    return redact_secrets(merged)


def _write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)


def finish_stage(
    trainer,
    stage: str,
    args: tuple,
    metrics: dict[str, Any],
    *,
    push_to_hub: bool = False,
    datasets: list[dict[str, Any]] | None = None,
) -> Path:
    """The end of every recipe: save atomically, write stage_info and the model card, push.

    `args` is the recipe's parsed `(script_args, training_args, model_args)`; the lineage (the
    exact model and revision the stage started from, its dataset), the seed and the Hub target
    are read from them. Cards and pushes are side effects: they run once, on the main process.
    """
    from pipelines.hub import resolve_source

    script_args, training_args, model_args = args
    output_dir = Path(training_args.output_dir)
    config = dataclass_config(*args)
    # The recipes clear `push_to_hub` on the trainer so that it does not push by itself: record the user's.
    config["push_to_hub"] = push_to_hub
    base_model = None
    if model_args.model_name_or_path:
        try:  # a Hub id resolves to the commit sha it was loaded at
            base_model = resolve_source(model_args.model_name_or_path, model_args.model_revision)
        except Exception:  # noqa: BLE001 - lineage must never fail a finished training run
            base_model = {
                "name_or_path": model_args.model_name_or_path,
                "revision": model_args.model_revision,
            }
    info = {
        "stage": stage,
        "recipe": f"recipes/{stage}.py",
        "config": config,
        "config_hash": config_hash(config),
        "base_model": base_model,
        "datasets": datasets
        or [
            {
                "name": script_args.dataset_name,
                "config": script_args.dataset_config,
                "revision": script_args.dataset_revision,
            }
        ],
        "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool))},
        "seed": training_args.seed,
        "hub": {"repo_id": None, "revision": None},
    }
    finalize_stage(trainer, output_dir, info)
    if PartialState().is_main_process:
        from pipelines.model_card import write_model_card

        write_model_card(output_dir)
        if push_to_hub:
            from pipelines.hub import push_stage

            if not training_args.hub_model_id:
                raise ConfigError(
                    "push_to_hub is set but hub_model_id is not: name the repo, e.g. `you/tiny-sft`."
                )
            sha = push_stage(output_dir, training_args.hub_model_id, revision=training_args.hub_revision)
            logger.warning("Pushed %s to %s (commit %s).", output_dir, training_args.hub_model_id, sha)
    PartialState().wait_for_everyone()
    return output_dir
