"""`instructgpt run`: every stage in order, each through `accelerate launch`, then the report.

A recipe directory holds one YAML per stage. The stages run in this order when their YAML
is present; each is chained to the outputs of the stages before it:

    pretrain -> sft -> reward -> ppo        (the InstructGPT recipe)
                             -> ppo_ptx     (PPO-ptx: recipes/ppo.py with ptx_coef > 0)
                             -> ppo_gold    (PPO against the gold judge: the reward model's ceiling)
                             -> rloo, grpo  (TRL's maintained online RL trainers)
                             -> rloo_gold, grpo_gold  (the same against the gold judge; need no reward stage)

A stage whose output folder is complete (`stage_info.json`) is skipped; an interrupted one
resumes from its last checkpoint, because the recipes do that on their own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pipelines.stages import is_complete

__all__ = ["STAGES", "Stage", "default_recipe_dir", "plan_stages", "run_pipeline"]

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Stage:
    name: str
    script: str
    # CLI flag -> the earlier stage whose output folder it receives
    inputs: tuple[tuple[str, str], ...] = ()


STAGES: tuple[Stage, ...] = (
    Stage("pretrain", "pretrain.py"),
    Stage("sft", "sft.py", (("--model_name_or_path", "pretrain"),)),
    Stage("reward", "reward.py", (("--model_name_or_path", "sft"),)),
    Stage("ppo", "ppo.py", (("--model_name_or_path", "sft"), ("--reward_model_path", "reward"))),
    Stage("ppo_ptx", "ppo.py", (("--model_name_or_path", "sft"), ("--reward_model_path", "reward"))),
    Stage("ppo_gold", "ppo.py", (("--model_name_or_path", "sft"), ("--reward_model_path", "reward"))),
    Stage("rloo", "rloo.py", (("--model_name_or_path", "sft"), ("--reward_model_path", "reward"))),
    Stage("rloo_gold", "rloo.py", (("--model_name_or_path", "sft"),)),
    Stage("grpo", "grpo.py", (("--model_name_or_path", "sft"), ("--reward_model_path", "reward"))),
    Stage("grpo_gold", "grpo.py", (("--model_name_or_path", "sft"),)),
)
POLICY_STAGES = ("sft", "ppo", "ppo_ptx", "ppo_gold", "rloo", "rloo_gold", "grpo", "grpo_gold")


def default_recipe_dir() -> Path:
    return PROJECT_ROOT / "recipes" / "tiny"


def plan_stages(recipe_dir: Path, only: list[str] | None = None) -> list[Stage]:
    """The stages whose YAML exists in `recipe_dir` (optionally only those named)."""
    planned = [s for s in STAGES if (recipe_dir / f"{s.name}.yaml").is_file()]
    if only:
        unknown = sorted(set(only) - {s.name for s in planned})
        if unknown:
            raise ValueError(
                f"--stages {', '.join(unknown)}: no such stage YAML in {recipe_dir} "
                f"(found: {', '.join(s.name for s in planned) or 'none'})."
            )
        planned = [s for s in planned if s.name in only]
    if not planned:
        raise ValueError(f"{recipe_dir} holds no stage YAML ({', '.join(s.name + '.yaml' for s in STAGES)}).")
    return planned


def _launch_command(
    stage: Stage,
    recipe_dir: Path,
    output_dir: Path,
    accelerate_config: Path,
    ran: set[str],
    extra_args: list[str],
) -> list[str]:
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(accelerate_config),
        str(PROJECT_ROOT / "recipes" / stage.script),
        "--config", str(recipe_dir / f"{stage.name}.yaml"),
        "--output_dir", str(output_dir / stage.name),
    ]  # fmt: skip
    for flag, source in stage.inputs:
        if source in ran:  # chain to this run's output; otherwise the YAML's own value (a folder or Hub id)
            command += [flag, str(output_dir / source)]
    return command + extra_args


def run_pipeline(
    recipe_dir: str | os.PathLike | None = None,
    output_dir: str | os.PathLike = "outputs/tiny",
    accelerate_config: str | os.PathLike | None = None,
    stages: list[str] | None = None,
    extra_args: list[str] | None = None,
    evaluate: bool = True,
    seed: int | None = None,
) -> dict:
    """Run the stages of `recipe_dir` into `output_dir/<stage>`, then evaluate and report.

    Returns the report (also written to `output_dir/report.json`).
    """
    recipe_dir = Path(recipe_dir) if recipe_dir else default_recipe_dir()
    accelerate_config = (
        Path(accelerate_config) if accelerate_config else PROJECT_ROOT / "accelerate_configs" / "cpu.yaml"
    )
    output_dir = Path(output_dir)
    for path, what in ((recipe_dir, "recipe directory"), (accelerate_config, "accelerate config")):
        if not path.exists():
            raise FileNotFoundError(f"{what} {path} does not exist.")
    planned = plan_stages(recipe_dir, stages)
    extra = list(extra_args or []) + (["--seed", str(seed)] if seed is not None else [])
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "logs").mkdir(exist_ok=True)
    timings = _read_timings(output_dir)
    # A stage's inputs come from this run's folders: stages of this recipe dir, or finished ones
    # already in output_dir (e.g. `--stages ppo_ptx` after a run); otherwise the YAML's own value.
    ran = {
        s.name
        for s in STAGES
        if (recipe_dir / f"{s.name}.yaml").is_file() or is_complete(output_dir / s.name)
    }
    env = {**os.environ, "TRL_EXPERIMENTAL_SILENCE": "1", "TOKENIZERS_PARALLELISM": "false"}

    for index, stage in enumerate(planned, 1):
        target = output_dir / stage.name
        header = f"[{index}/{len(planned)}] {stage.name}"
        if is_complete(target):
            print(f"{header}: complete, skipped ({target})", flush=True)
            continue
        command = _launch_command(stage, recipe_dir, output_dir, accelerate_config, ran, extra)
        log_path = output_dir / "logs" / f"{stage.name}.log"
        resuming = target.is_dir() and any(target.glob("checkpoint-*"))
        print(f"{header}: {'resuming' if resuming else 'running'} -> {target} (log: {log_path})", flush=True)
        start = time.time()
        with log_path.open("a") as log:
            log.write(f"\n$ {' '.join(command)}\n")
            log.flush()
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True
            )
            for line in process.stdout:  # progress goes to the console and the log
                log.write(line)
                if _worth_showing(line):
                    print(f"    {line.rstrip()[:160]}", flush=True)
            code = process.wait()
        elapsed = time.time() - start
        timings[stage.name] = timings.get(stage.name, 0.0) + elapsed
        _write_timings(output_dir, timings)
        if code != 0:
            tail = "".join(log_path.read_text().splitlines(keepends=True)[-25:])
            raise RuntimeError(
                f"Stage {stage.name} failed (exit {code}) after {elapsed:.0f}s. Last lines of {log_path}:\n{tail}\n"
                "Fix the cause and run the same command again: finished stages are skipped and this one resumes."
            )
        print(f"{header}: done in {elapsed:.0f}s", flush=True)

    if not evaluate:
        return {}
    from pipelines.report import write_report

    policies = {name: output_dir / name for name in POLICY_STAGES if is_complete(output_dir / name)}
    return write_report(output_dir, recipe_dir=recipe_dir, policies=policies, timings=timings)


def _worth_showing(line: str) -> bool:
    """Stage output worth echoing: losses and errors, not every progress-bar redraw."""
    return (
        line.startswith(("{'loss'", "{'train_", "{'eval_", "{'eps'", "Traceback", "pipelines."))
        or "Error" in line
    )


def _read_timings(output_dir: Path) -> dict[str, float]:
    path = output_dir / "logs" / "timings.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _write_timings(output_dir: Path, timings: dict[str, float]) -> None:
    path = output_dir / "logs" / "timings.json"
    path.write_text(json.dumps(timings, indent=2))
