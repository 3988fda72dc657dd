"""TRL's PPOTrainer (1.12, `trl.experimental.ppo`), extended rather than rewritten.

What this adds, each at one hook of TRL's trainer:

- **PPO-ptx** (InstructGPT, eq. 2): every PPO backward pass also back-propagates
  `ptx_coef * LM loss` on a batch of pretraining text (a wrapper around
  `accelerator.backward`, the single call through which TRL's update sends its loss).
- **Exact resume** (TRL cannot resume PPO): checkpoints hold the policy (loadable like any
  model) and, in `training_state/`, the policy and value weights, the optimizer and every
  process's RNG states; beside them the scheduler, the step and episode counters and the log
  history; the data order is a fixed permutation per epoch, so a resumed run replays the batches
  the uninterrupted run would have seen. Checkpoints are written to `checkpoint-N.tmp` and renamed.
- **A learning rate of the value model's own** (`value_learning_rate`, as OpenRLHF's
  `critic_learning_rate` and DeepSpeed-Chat's critic lr): TRL trains policy and value with one
  optimizer at one rate; `create_optimizer` puts the value model in groups of their own rate,
  under the same schedule.
- **Cheaper garbage collection**: TRL calls `gc.collect()` twice per update, and each walked every
  object the process tracks: 40% of a tiny CPU run. `train` freezes the objects that exist when
  training starts (`gc.freeze`) and unfreezes them after, so the collections see only what the
  updates made; the numbers trained are the same. A process that froze objects itself is left alone.
- **Distributed fixes**: under DDP, TRL reaches `model.policy` through the DDP wrapper (PEFT
  without a reference model fails) and `save_model` fails on a shared-tensor error; the
  wrapper here exposes `policy`/`value_model` and saves the unwrapped policy on the main process.
  Under DeepSpeed, TRL's own `Accelerator` cannot read the configs' `gradient_accumulation_steps:
  auto`, and DeepSpeed cannot wrap a reward model without weights (the gold judge); both are
  handled around TRL's `__init__`.

Generation with TRL's `num_sample_generations > 0` draws from the RNG between updates; set it
to 0 (the recipes do) when exact resume matters.
"""

from __future__ import annotations

import gc
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Sampler
from transformers import TrainerCallback
from trl.experimental.ppo import PPOConfig
from trl.experimental.ppo import PPOTrainer as TRLPPOTrainer
from trl.experimental.ppo import ppo_trainer as _trl_ppo_module

__all__ = ["PPOTrainer", "PPOConfig"]

_STATE_FILE = "pipelines_ppo_state.json"
_TRAINING_STATE = "training_state"  # accelerate's save_state: wrapper weights, optimizer, RNG states


class _EpochSeededSampler(Sampler[int]):
    """A permutation of the dataset that depends only on (seed, epoch): replayable on resume."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())

    def __len__(self) -> int:
        return self.size


class _SkipFirstBatches:
    """Iterates a prepared DataLoader, skipping `skip` batches on the first pass only."""

    def __init__(self, loader, skip: int) -> None:
        self.loader, self.skip = loader, skip

    def __iter__(self):
        skip, self.skip = self.skip, 0
        for index, batch in enumerate(self.loader):
            if index >= skip:
                yield batch

    def __len__(self) -> int:
        return len(self.loader)


class _RestoreCounters(TrainerCallback):
    """TRL's `train()` zeroes the step counters; put the resumed ones back before step 1."""

    def __init__(self, global_step: int, episode: int, max_steps: int) -> None:
        self.global_step, self.episode, self.max_steps = global_step, episode, max_steps

    def on_train_begin(self, args, state, control, **kwargs):
        state.global_step, state.episode, state.max_steps = self.global_step, self.episode, self.max_steps


def _resolve_auto_gradient_accumulation(args) -> None:
    """Give `"auto"` gradient accumulation (DeepSpeed configs) the value of the PPO config.

    `accelerate launch` with a DeepSpeed config whose `gradient_accumulation_steps` is `auto`
    exports ACCELERATE_GRADIENT_ACCUMULATION_STEPS=auto. transformers' Trainer resolves that
    from its arguments; TRL's PPOTrainer builds its own `Accelerator`, which calls `int()` on it
    and fails. "auto" means "from the training arguments" in both, so that is what it becomes.
    """
    key = "ACCELERATE_GRADIENT_ACCUMULATION_STEPS"
    if os.environ.get(key) == "auto" and args is not None:
        os.environ[key] = str(args.gradient_accumulation_steps)


@contextmanager
def _deepspeed_leaves_weightless_models_alone() -> Iterator[None]:
    """While TRL's `__init__` runs: `prepare_deepspeed` returns a model without parameters as it is.

    Under DeepSpeed TRL wraps the reward model in an inference engine. A judge function behind the
    reward-model interface (`pipelines.rewards.JudgeRewardModel`) has nothing to place or shard,
    and DeepSpeed fails on it (no `config`; ZeRO-3 indexes its empty parameter list).
    """
    original = _trl_ppo_module.prepare_deepspeed

    def prepare_deepspeed(model, accelerator):
        if model is not None and next(model.parameters(), None) is None:
            return model
        return original(model, accelerator)

    _trl_ppo_module.prepare_deepspeed = prepare_deepspeed
    try:
        yield
    finally:
        _trl_ppo_module.prepare_deepspeed = original


class PPOTrainer(TRLPPOTrainer):
    """`trl.experimental.ppo.PPOTrainer` plus PPO-ptx, exact resume and DDP-safe saving.

    Extra arguments:
        ptx_dataset: a tokenized dataset with `input_ids` (fixed-length blocks of pretraining
            text); used when `ptx_coef > 0`.
        ptx_coef: gamma of PPO-ptx; 0 gives plain PPO.
        ptx_batch_size: pretraining sequences per PPO micro-batch.
    """

    def __init__(
        self,
        *args,
        ptx_dataset=None,
        ptx_coef: float = 0.0,
        ptx_batch_size: int = 8,
        value_learning_rate: float | None = None,
        **kwargs,
    ) -> None:
        self.value_learning_rate = value_learning_rate  # read by create_optimizer, inside TRL's __init__
        _resolve_auto_gradient_accumulation(kwargs.get("args", args[0] if args else None))
        with _deepspeed_leaves_weightless_models_alone():
            super().__init__(*args, **kwargs)
        unwrapped = self.accelerator.unwrap_model(self.model)
        if unwrapped is not self.model:
            # TRL calls `model.policy` on the prepared (possibly DDP-wrapped) model; a plain
            # attribute (not a registered submodule) makes that resolve without changing the
            # wrapper's parameters or state dict.
            object.__setattr__(self.model, "policy", unwrapped.policy)
            object.__setattr__(self.model, "value_model", unwrapped.value_model)

        # A replayable data order (see module docstring). The loader's own generator keeps
        # `iter()` from drawing on the global RNG, which a resumed run must find untouched.
        self._sampler = _EpochSeededSampler(len(self.train_dataset), self.args.seed)
        loader = DataLoader(
            self.train_dataset,
            batch_size=self.local_dataloader_batch_size,
            sampler=self._sampler,
            collate_fn=self.data_collator,
            drop_last=True,
            generator=torch.Generator().manual_seed(self.args.seed),
        )
        self.dataloader = self.accelerator.prepare(loader)

        self.ptx_coef = ptx_coef
        self._ptx_losses: list[torch.Tensor] = []
        self._ptx_iterator = None
        if ptx_coef > 0:
            if ptx_dataset is None:
                raise ValueError("ptx_coef > 0 needs a ptx_dataset (tokenized pretraining text).")
            ptx_loader = DataLoader(
                ptx_dataset.with_format("torch", columns=["input_ids"]),
                batch_size=ptx_batch_size,
                sampler=_EpochSeededSampler(len(ptx_dataset), self.args.seed + 1),
                drop_last=True,
                generator=torch.Generator().manual_seed(self.args.seed + 1),
            )
            self._ptx_loader = self.accelerator.prepare(ptx_loader)
            self._ptx_epoch = 0

    def create_optimizer(self, model=None):
        """TRL's single optimizer over policy and value, with the value model in groups of its own lr."""
        if self.value_learning_rate is None or self.optimizer is not None:
            return super().create_optimizer(model)
        wrapper = self.model
        decay = set(self.get_decay_parameter_names(wrapper))
        rates = {"policy.": self.args.learning_rate, "value_model.": self.value_learning_rate}
        buckets = {(prefix, decayed): [] for prefix in rates for decayed in (True, False)}
        for name, param in wrapper.named_parameters():
            if not param.requires_grad:
                continue
            prefix = next((p for p in rates if name.startswith(p)), None)
            if prefix is None:
                raise RuntimeError(
                    f"value_learning_rate: trainable parameter {name} is neither policy.* nor value_model.*"
                )
            buckets[prefix, name in decay].append(param)
        groups = [
            {"params": params, "lr": rates[prefix], "weight_decay": self.args.weight_decay * decayed}
            for (prefix, decayed), params in buckets.items()
            if params
        ]
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, wrapper)
        self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        return self.optimizer

    # ------------------------------------------------------------------ PPO-ptx
    def _next_ptx_batch(self) -> torch.Tensor:
        while True:
            if self._ptx_iterator is None:
                self._ptx_loader.set_epoch(self._ptx_epoch)
                self._ptx_iterator = iter(self._ptx_loader)
            try:
                return next(self._ptx_iterator)["input_ids"]
            except StopIteration:
                self._ptx_iterator, self._ptx_epoch = None, self._ptx_epoch + 1

    def _ptx_loss(self) -> torch.Tensor:
        input_ids = self._next_ptx_batch().to(self.accelerator.device)
        return self.model.policy(input_ids=input_ids, labels=input_ids, use_cache=False).loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self._ptx_losses:
            logs["loss/ptx_avg"] = torch.stack(self._ptx_losses).mean().item()
            self._ptx_losses.clear()
        super().log(logs, start_time)

    # ------------------------------------------------------------------ train / resume
    def train(self, resume_from_checkpoint: str | None = None) -> None:
        args = self.args
        total_batches = args.num_total_batches
        done = self._load_checkpoint(resume_from_checkpoint) if resume_from_checkpoint else (0, 0)
        global_step, episode = done
        batches_per_epoch = len(self.dataloader)
        if global_step:
            self.dataloader.iteration = global_step // batches_per_epoch
            self.dataloader = _SkipFirstBatches(self.dataloader, global_step % batches_per_epoch)
            args.num_total_batches = total_batches - global_step
            self.add_callback(_RestoreCounters(global_step, episode, total_batches))
        original_backward = self.accelerator.backward
        if self.ptx_coef > 0:

            def backward_with_ptx(loss, **kwargs):
                ptx_loss = self._ptx_loss()
                self._ptx_losses.append(ptx_loss.detach())
                return original_backward(loss + self.ptx_coef * ptx_loss, **kwargs)

            self.accelerator.backward = backward_with_ptx
        # TRL's two `gc.collect()` per update then walk only what the updates made (module docstring).
        # A caller that froze objects itself keeps its own policy: unfreezing would undo it.
        manage_gc = gc.get_freeze_count() == 0
        if manage_gc:
            gc.collect()
            gc.freeze()
        try:
            if args.num_total_batches > 0:
                super().train()
        finally:
            if manage_gc:
                gc.unfreeze()
            self.accelerator.backward = original_backward
            args.num_total_batches = total_batches

    def _save_checkpoint(self, model, trial) -> None:
        """Everything a resumed run needs, written to `checkpoint-N.tmp`, then renamed."""
        final = Path(self.args.output_dir) / f"checkpoint-{self.state.global_step}"
        tmp = final.with_name(final.name + ".tmp")
        if self.accelerator.is_main_process and tmp.exists():
            shutil.rmtree(tmp)
        self.accelerator.wait_for_everyone()
        # Policy + value weights, optimizer, RNG of every process: in a sub-folder, because the
        # policy saved below (so that a checkpoint loads like any model) is also `model.safetensors`.
        self.accelerator.save_state(str(tmp / _TRAINING_STATE))
        if self.accelerator.is_main_process:
            torch.save(self.lr_scheduler.state_dict(), tmp / "scheduler.pt")
            state = {
                "global_step": self.state.global_step,
                "episode": self.state.episode,
                "log_history": self.state.log_history,  # so that a resumed run's logs are whole
            }
            (tmp / _STATE_FILE).write_text(json.dumps(state))
            self._save_policy(tmp)
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            self._rotate_checkpoints()
        self.accelerator.wait_for_everyone()

    def _load_checkpoint(self, checkpoint: str) -> tuple[int, int]:
        self.accelerator.load_state(str(Path(checkpoint) / _TRAINING_STATE))
        self.lr_scheduler.load_state_dict(torch.load(Path(checkpoint) / "scheduler.pt", weights_only=True))
        state = json.loads((Path(checkpoint) / _STATE_FILE).read_text())
        self.state.log_history = list(state.get("log_history", []))
        self.accelerator.print(f"Resuming PPO from {checkpoint} (step {state['global_step']}).")
        return state["global_step"], state["episode"]

    def _rotate_checkpoints(self) -> None:
        limit = self.args.save_total_limit
        if not limit:
            return
        pattern = re.compile(r"^checkpoint-(\d+)$")
        found = sorted(
            (int(m.group(1)), p) for p in Path(self.args.output_dir).iterdir() if (m := pattern.match(p.name))
        )
        for _, path in found[:-limit]:
            shutil.rmtree(path)

    # ------------------------------------------------------------------ saving
    def _save_policy(self, output_dir: str | os.PathLike) -> None:
        policy = self.accelerator.unwrap_model(self.model).policy
        policy.save_pretrained(output_dir, safe_serialization=True)
        self.processing_class.save_pretrained(output_dir)

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Save the policy (the model PPO trains for inference) from the main process only."""
        output_dir = output_dir or self.args.output_dir
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            self._save_policy(output_dir)
        self.accelerator.wait_for_everyone()
