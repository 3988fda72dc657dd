"""Opt-in evidence of what each process of a distributed run did, and a guard against fake DDP.

Every recipe calls `attach_debug_hooks(trainer)` once, after building its trainer. It does two
things:

1. Always: `check_process_group()` fails fast when a launcher started several processes
   (`WORLD_SIZE > 1`) but Accelerate set up a single-process state in each of them: the
   `accelerate launch --multi_gpu` trap on a machine without GPUs (without
   `ACCELERATE_USE_CPU=1`), where every process believes it is rank 0, trains its own
   replica on the same data and writes the same output folder, and the launch exits 0.
2. Only when the environment variable `PIPELINES_DEBUG_RANK_DIR` names a folder: each
   process writes there

   - `rank{R}.json`: its rank, world size, pid, distributed type and backend, and a SHA-256
     of its model's parameters before and after training;
   - `rank{R}.batches.jsonl`: one line per training batch it collated, with a hash per
     sample (the sample's tokens, padding removed; a preference pair counts as one sample).

   The tests use these files to prove that a run had N real ranks, that the ranks saw
   disjoint samples and that their parameters agree after training (so gradients were
   synchronised). It costs one hash per batch; leave it off otherwise.

The recipes never branch on the distribution type; this module only observes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState
from transformers import TrainerCallback

__all__ = [
    "DEBUG_DIR_ENV",
    "RankRecorder",
    "attach_debug_hooks",
    "check_process_group",
    "parameter_hash",
    "sample_hashes",
]

DEBUG_DIR_ENV = "PIPELINES_DEBUG_RANK_DIR"


def check_process_group() -> None:
    """Raise when the launcher started `WORLD_SIZE` processes but Accelerate sees fewer.

    Without this, N unsynchronised replicas each train the whole run as "rank 0" and all
    write the same files: N times the compute, one model, and no error.
    """
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    state = PartialState()
    if launched > 1 and state.num_processes != launched:
        raise RuntimeError(
            f"The launcher started {launched} processes (WORLD_SIZE={launched}) but Accelerate set up "
            f"{state.num_processes} ({state.distributed_type}): the processes would train unsynchronised "
            "replicas. On a machine without GPUs, launch with `ACCELERATE_USE_CPU=1 accelerate launch "
            "--config_file accelerate_configs/cpu_ddp.yaml ...` (or `--multi_gpu --num_processes N` with "
            "ACCELERATE_USE_CPU=1); on GPUs, check that CUDA is visible to every process."
        )


def parameter_hash(model: torch.nn.Module) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of every parameter, in a fixed order."""
    digest = hashlib.sha256()
    for name, param in sorted(model.named_parameters(), key=lambda item: item[0]):
        tensor = param.detach()
        if hasattr(tensor, "full_tensor"):  # an FSDP2 shard (DTensor): gather it (every rank calls this)
            tensor = tensor.full_tensor()
        tensor = tensor.to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}|{tensor.dtype}|{tuple(param.shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _row_tokens(row: torch.Tensor, mask: torch.Tensor | None, pad_token_id: int | None) -> list[int]:
    if mask is not None:
        return row[mask.bool()].tolist()
    if pad_token_id is not None:
        return row[row != pad_token_id].tolist()
    return row.tolist()


def sample_hashes(batch: Mapping[str, Any], pad_token_id: int | None, paired: bool = False) -> list[str]:
    """One short hash per sample of a collated batch (`input_ids`, optional `attention_mask`).

    Padding is removed first, so a sample hashes the same whatever batch it lands in. With
    `paired=True` (RewardTrainer: chosen rows, then rejected rows) rows i and i + B/2 are one
    sample.
    """
    input_ids = batch["input_ids"]
    mask = batch.get("attention_mask")
    rows = [
        _row_tokens(input_ids[i], None if mask is None else mask[i], pad_token_id)
        for i in range(len(input_ids))
    ]
    if paired:
        half = len(rows) // 2
        rows = [rows[i] + [-1] + rows[i + half] for i in range(half)]
    return [hashlib.sha256(json.dumps(tokens).encode()).hexdigest()[:16] for tokens in rows]


def _zero_stage() -> int | None:
    """DeepSpeed's ZeRO stage when DeepSpeed drives this run, else None."""
    from accelerate.state import AcceleratorState

    if not AcceleratorState._shared_state:
        return None
    plugin = getattr(AcceleratorState(), "deepspeed_plugin", None)
    return None if plugin is None else int(plugin.zero_stage)


def _mixed_precision() -> str | None:
    """Accelerate's mixed-precision mode ("no", "bf16", "fp16") once the trainer set it up."""
    from accelerate.state import AcceleratorState

    if not AcceleratorState._shared_state:
        return None
    return str(AcceleratorState().mixed_precision)


class RankRecorder(TrainerCallback):
    """Writes this process's identity and parameter hashes (see the module docstring)."""

    def __init__(self, directory: str | os.PathLike, model_getter: Callable[[], torch.nn.Module]) -> None:
        state = PartialState()
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.rank, self.world_size = state.process_index, state.num_processes
        self.model_getter = model_getter
        self.record: dict[str, Any] = {
            "rank": self.rank,
            "world_size": self.world_size,
            "pid": os.getpid(),
            "distributed_type": str(state.distributed_type),
            "backend": state.backend,
            "zero_stage": _zero_stage(),
            "device": str(state.device),
            "mixed_precision": _mixed_precision(),
            "torch_distributed_world_size": (
                torch.distributed.get_world_size() if torch.distributed.is_initialized() else None
            ),
        }
        self.batches_path = self.directory / f"rank{self.rank}.batches.jsonl"
        self.training = False  # only batches collated between train begin and end are training batches
        self._write()

    def _write(self) -> None:
        path = self.directory / f"rank{self.rank}.json"
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.record, indent=2, sort_keys=True))
        os.replace(tmp, path)

    def log_batch(self, hashes: list[str]) -> None:
        if not self.training:
            return
        with self.batches_path.open("a") as handle:
            handle.write(json.dumps({"pid": os.getpid(), "samples": hashes}) + "\n")

    def on_train_begin(self, args, state, control, **kwargs):
        self.record["params_before"] = parameter_hash(self.model_getter())
        self.training = True
        self._write()

    def on_train_end(self, args, state, control, **kwargs):
        self.training = False
        self.record["params_after"] = parameter_hash(self.model_getter())
        self.record["global_step"] = state.global_step
        self._write()


def attach_debug_hooks(trainer) -> RankRecorder | None:
    """Check the process group; with `PIPELINES_DEBUG_RANK_DIR` set, record what this rank does.

    Works for TRL's SFT and Reward trainers (the collator is wrapped) and for our PPOTrainer
    (the collate function of its prepared prompt loader is wrapped). Returns the recorder, or
    None when recording is off.
    """
    check_process_group()
    directory = os.environ.get(DEBUG_DIR_ENV)
    if not directory:
        return None

    def model_getter() -> torch.nn.Module:
        return trainer.accelerator.unwrap_model(trainer.model)

    recorder = RankRecorder(directory, model_getter)
    tokenizer = getattr(trainer, "processing_class", None)
    pad_token_id = getattr(tokenizer, "pad_token_id", None)
    paired = type(trainer).__name__ == "RewardTrainer" or any(
        cls.__name__ == "RewardTrainer" for cls in type(trainer).__mro__
    )

    def recording(collate: Callable) -> Callable:
        def collate_and_record(features):
            batch = collate(features)
            recorder.log_batch(sample_hashes(batch, pad_token_id, paired=paired))
            return batch

        return collate_and_record

    ppo_loader = getattr(trainer, "dataloader", None)
    if ppo_loader is not None and hasattr(ppo_loader, "collate_fn"):
        # PPO iterates its own prepared loader. Accelerate's loader is an adapter around a plain
        # DataLoader, whose iterator reads `collate_fn` when it is created (at train time).
        base = getattr(ppo_loader, "base_dataloader", ppo_loader)
        base.collate_fn = recording(base.collate_fn)
    else:
        trainer.data_collator = recording(trainer.data_collator)
    trainer.add_callback(recorder)
    return recorder
