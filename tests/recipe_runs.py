"""Helpers of the reliability tests: run the recipes in-process or as killable subprocesses, on tiny data.

Not a test module. Everything here builds its own inputs (CI has no `outputs/`): tiny JSONL
datasets, and a tiny pretrain -> SFT -> reward -> PPO chain (hidden 32, 2 layers, a few steps)
cached under pytest's session base folder so that several test modules share one build.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
STAGES = ("pretrain", "sft", "reward", "ppo")

__all__ = [
    "DRIVER",
    "REPO",
    "STAGES",
    "build_chain",
    "driver_command",
    "load_recipe",
    "logged_numbers",
    "parse_for",
    "run_recipe",
    "stage_args",
    "start",
    "tiny_data",
    "weights",
    "without_timings",
    "write_jsonl",
]

# ----------------------------------------------------------------------------------- recipes


def load_recipe(name: str):
    """`recipes/<name>.py` as a fresh module (its `main` and its imported helpers, patchable)."""
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", REPO / "recipes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_for(name: str, argv: list[str]) -> tuple[Any, ...]:
    from pipelines.configs import parse_recipe_args, recipe_dataclasses

    return parse_recipe_args(recipe_dataclasses(name), argv)


def run_recipe(name: str, argv: list[str], module=None) -> None:
    """`python recipes/<name>.py ARGV`, in this process."""
    module = module or load_recipe(name)
    module.main(*parse_for(name, argv))


# ---------------------------------------------------------------------------------- tiny data


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


_WORDS = ("red", "blue", "green", "fox", "owl", "hen", "cat", "dog")


def _question(i: int) -> str:
    return f"Count from {i % 7} to {i % 7 + 3} and name a {_WORDS[i % len(_WORDS)]}."


def _answer(i: int) -> str:
    return " ".join(str(n) for n in range(i % 7, i % 7 + 4)) + f", {_WORDS[(i + 3) % len(_WORDS)]}."


def tiny_data(folder: Path, n: int = 40) -> dict[str, Path]:
    """Small pretrain / sft / preference / prompts files in the formats `get_dataset` reads."""
    folder.mkdir(parents=True, exist_ok=True)
    text = folder / "pretrain.txt"
    text.write_text(
        "\n\n".join(f"{_question(i)} {_answer(i)} The {_WORDS[i % 8]} jumps." for i in range(5 * n))
    )
    sft = [
        {
            "messages": [
                {"role": "user", "content": _question(i)},
                {"role": "assistant", "content": _answer(i)},
            ]
        }
        for i in range(n)
    ]
    preference = [
        {"prompt": _question(i), "chosen": _answer(i), "rejected": _answer(i + 1)} for i in range(n)
    ]
    # 14 prompts: 13 to train on (one is carved out as `test`), 3 batches of 4 per epoch, so that
    # the 6 PPO steps span two epochs and a resume at step 4 lands inside the second one.
    prompts = [{"prompt": _question(i)} for i in range(14)]
    return {
        "pretrain": text,
        "sft": write_jsonl(folder / "sft.jsonl", sft),
        "preference": write_jsonl(folder / "preference.jsonl", preference),
        "prompts": write_jsonl(folder / "prompts.jsonl", prompts),
    }


# ------------------------------------------------------------------------------ the tiny chain

_COMMON = {"seed": 42, "bf16": False, "report_to": "none", "logging_steps": 1, "save_strategy": "steps",
           "save_steps": 2, "save_total_limit": 1, "per_device_train_batch_size": 4}  # fmt: skip
_TRAINER = {"gradient_checkpointing": False, "eval_strategy": "no", "max_steps": 6, "learning_rate": 1.0e-3,
            "lr_scheduler_type": "cosine", "warmup_steps": 1}  # fmt: skip
_YAML = {
    "pretrain": {**_COMMON, **_TRAINER, "vocab_size": 300, "hidden_size": 32, "num_hidden_layers": 2,
                 "num_attention_heads": 4, "max_position_embeddings": 128, "max_length": 64, "packing": True},
    "sft": {**_COMMON, **_TRAINER, "max_length": 64, "assistant_only_loss": True},
    "reward": {**_COMMON, **_TRAINER, "max_length": 64, "per_device_eval_batch_size": 8},
    # 24 episodes / batch 4 = 6 PPO steps; no sample generations between updates (they draw on the RNG).
    "ppo": {**_COMMON, "total_episodes": 24, "response_length": 8, "num_ppo_epochs": 1, "num_mini_batches": 1,
            "local_rollout_forward_batch_size": 4, "max_prompt_length": 64, "stop_token": "eos",
            "missing_eos_penalty": 1.0, "kl_coef": 0.05, "learning_rate": 1.0e-3, "num_sample_generations": 0},
}  # fmt: skip
_KIND = {"pretrain": "pretrain", "sft": "sft", "reward": "preference", "ppo": "prompts"}


def stage_args(
    stage: str, folder: Path, output_dir: Path, inputs: dict[str, Path], **overrides: Any
) -> list[str]:
    """The command line of one tiny stage: its YAML (written to `folder`), data and input models."""
    import yaml

    config = folder / f"{stage}.yaml"
    if not config.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        config.write_text(yaml.safe_dump(_YAML[stage]))
    data = tiny_data(folder / "data")
    values = {"output_dir": output_dir, "dataset_name": data[_KIND[stage]], **inputs, **overrides}
    argv = ["--config", str(config)]
    for key, value in values.items():
        argv += [f"--{key}", str(value)]
    return argv


def _inputs(stage: str, root: Path) -> dict[str, Path]:
    return {
        "pretrain": {},
        "sft": {"model_name_or_path": root / "pretrain"},
        "reward": {"model_name_or_path": root / "sft"},
        "ppo": {"model_name_or_path": root / "sft", "reward_model_path": root / "reward"},
    }[stage]


def build_chain(base: Path, name: str) -> Path:
    """Run the tiny pretrain -> SFT -> reward -> PPO chain in-process; return `base/name`.

    Every chain is run at the same paths (`base/run`) and then moved to `base/name`, so two chains
    have identical command lines (and config hashes). A finished `base/name` is reused.
    """
    from pipelines.stages import is_complete

    final = base / name
    if all(is_complete(final / stage) for stage in STAGES):
        return final
    run = base / "run"
    shutil.rmtree(run, ignore_errors=True)
    for stage in STAGES:
        run_recipe(stage, stage_args(stage, base / "configs", run / stage, _inputs(stage, run)))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(run, final)
    return final


# ----------------------------------------------------------------------------------- results


def weights(folder: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


_NOISE = ("runtime", "per_second", "eps", "total_flos")


def logged_numbers(folder: Path) -> list[dict[str, Any]]:
    """What a stage logged (losses, metrics, learning rates, steps), without timings."""
    path = folder / "log_history.json"
    if path.is_file():
        history = json.loads(path.read_text())["log_history"]
    else:  # older stage folders: the last checkpoint's trainer state
        checkpoint = max(folder.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
        history = json.loads((checkpoint / "trainer_state.json").read_text())["log_history"]
    return [without_timings(entry) for entry in history]


def without_timings(metrics: dict[str, Any]) -> dict[str, Any]:
    """A logged dict without its wall-clock entries (runtimes, throughputs), which never repeat; NaN as "nan"."""
    return {
        k: "nan" if isinstance(v, float) and math.isnan(v) else v
        for k, v in metrics.items()
        if not any(n in k for n in _NOISE)
    }


# --------------------------------------------------------------------- killable subprocess runs

DRIVER = '''\
"""`python DRIVER recipes/X.py ARGS` runs the recipe like `python recipes/X.py ARGS`, and can
freeze after (PAUSE_WHERE=after) or in the middle of (PAUSE_WHERE=mid) saving checkpoint
PAUSE_AT_STEP, touching PAUSE_FLAG, so that a test can kill -9 it at a known point. Every
training step that ends is appended to STEP_FILE."""
import os
import runpy
import sys
import time
from pathlib import Path

import transformers
from transformers.trainer_callback import CallbackHandler

from pipelines import ppo

PAUSE_AT = int(os.environ.get("PAUSE_AT_STEP", "0"))


def pause(step):
    if PAUSE_AT and step == PAUSE_AT:
        Path(os.environ["PAUSE_FLAG"]).write_text(str(step))
        time.sleep(600)


on_step_end = CallbackHandler.on_step_end


def record_step(self, args, state, control):
    with open(os.environ["STEP_FILE"], "a") as f:
        f.write(f"{state.global_step}\\n")
    return on_step_end(self, args, state, control)


CallbackHandler.on_step_end = record_step
if os.environ.get("PAUSE_WHERE") == "mid":  # the model is saved, optimizer and trainer state are not
    save_optimizer = transformers.Trainer._save_optimizer_and_scheduler

    def mid(self, output_dir):
        pause(self.state.global_step)
        return save_optimizer(self, output_dir)

    transformers.Trainer._save_optimizer_and_scheduler = mid
else:
    for cls in (transformers.Trainer, ppo.PPOTrainer):
        def after(self, model, trial, _save=cls._save_checkpoint):
            _save(self, model, trial)
            pause(self.state.global_step)

        cls._save_checkpoint = after

recipe = sys.argv[1]
sys.argv = [recipe, *sys.argv[2:]]
runpy.run_path(recipe, run_name="__main__")
'''


def driver_command(folder: Path, recipe: str, argv: list[str]) -> list[str]:
    driver = folder / "recipe_driver.py"
    if not driver.is_file():
        driver.write_text(DRIVER)
    return [sys.executable, str(driver), f"recipes/{recipe}.py", *argv]


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start `command` in the repository root with `env` added, its output going to `log`."""
    with log.open("w") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            command, cwd=REPO, env={**os.environ, **env}, stdout=handle, stderr=subprocess.STDOUT
        )
