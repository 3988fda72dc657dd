"""Kill -9 a training stage, start it again with the same command: it continues where it stopped.

Each test runs the stage as a subprocess through a small driver (`recipe_runs.DRIVER`) that runs
the recipe unchanged, freezes at a known point of checkpoint N (so that the kill always lands
mid-training) and records every training step that ends. The resumed run must execute only the
steps after its checkpoint, and end with the same global step, weights and logged losses as the
uninterrupted run of the same command (the tiny chain's stage).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from recipe_runs import REPO, build_chain, driver_command, logged_numbers, stage_args, start, weights
from safetensors.torch import load_file

from pipelines.stages import is_complete, last_complete_checkpoint

pytestmark = pytest.mark.slow

TIMEOUT_S = 600


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> Path:
    """The uninterrupted tiny pretrain -> SFT -> reward -> PPO chain (shared with test_reliability)."""
    return build_chain(tmp_path_factory.getbasetemp() / "reliability-chain", "chain-a")


def _kill_at(command: list[str], folder: Path, step: int, where: str) -> list[int]:
    """Start `command`, wait until it freezes at checkpoint `step`, SIGKILL it; return the steps it ran."""
    flag, steps, log = folder / "paused", folder / "steps-killed", folder / "killed.log"
    env = {"PAUSE_AT_STEP": str(step), "PAUSE_WHERE": where, "PAUSE_FLAG": str(flag), "STEP_FILE": str(steps)}
    process = start(command, env, log)
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while not flag.exists():
            assert process.poll() is None, f"the run ended before step {step}:\n{log.read_text()[-4000:]}"
            assert time.monotonic() < deadline, "timed out waiting for the checkpoint"
            time.sleep(0.1)
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=60) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    return [int(s) for s in steps.read_text().split()]


def _rerun(command: list[str], folder: Path) -> tuple[list[int], str]:
    steps = folder / "steps-resumed"
    env = {**os.environ, "STEP_FILE": str(steps)}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return [int(s) for s in steps.read_text().split()], output


def _assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), (
            f"{name} differs by {(a[name] - b[name]).abs().max().item():.3g}"
        )


def test_sft_killed_while_saving_a_checkpoint_resumes_from_the_last_complete_one(chain, tmp_path):
    out = tmp_path / "sft"
    argv = stage_args("sft", chain.parent / "configs", out, {"model_name_or_path": chain / "pretrain"})
    command = driver_command(tmp_path, "sft", argv)

    # Killed while writing checkpoint-4 (model written, optimizer and trainer state not yet).
    assert _kill_at(command, tmp_path, step=4, where="mid") == [1, 2, 3, 4]
    assert not is_complete(out) and not (out / "stage_info.json").exists()
    assert (out / "checkpoint-4" / "model.safetensors").is_file()
    assert not (out / "checkpoint-4" / "trainer_state.json").exists()
    assert last_complete_checkpoint(out) == str(out / "checkpoint-2")

    steps, output = _rerun(command, tmp_path)
    assert "checkpoint-4 is incomplete" in output and f"resuming from {out / 'checkpoint-2'}" in output
    assert steps == [3, 4, 5, 6]  # only what the killed run had not saved
    assert is_complete(out)
    state = json.loads((out / "checkpoint-6" / "trainer_state.json").read_text())
    reference = json.loads((chain / "sft" / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == reference["global_step"] == 6
    _assert_same_weights(weights(out), weights(chain / "sft"))
    losses = [e["loss"] for e in logged_numbers(out) if "loss" in e]
    assert len(losses) == 6 and losses == [e["loss"] for e in logged_numbers(chain / "sft") if "loss" in e]


def test_ppo_killed_mid_training_resumes_exactly(chain, tmp_path):
    out = tmp_path / "ppo"
    inputs = {"model_name_or_path": chain / "sft", "reward_model_path": chain / "reward"}
    command = driver_command(tmp_path, "ppo", stage_args("ppo", chain.parent / "configs", out, inputs))

    assert _kill_at(command, tmp_path, step=4, where="after") == [1, 2, 3, 4]
    assert not is_complete(out)
    assert last_complete_checkpoint(out) == str(out / "checkpoint-4")

    steps, output = _rerun(command, tmp_path)
    assert f"Resuming PPO from {out / 'checkpoint-4'} (step 4)" in output
    assert steps == [5, 6]
    assert is_complete(out)
    for folder in (out, chain / "ppo"):
        state = json.loads((folder / "checkpoint-6" / "pipelines_ppo_state.json").read_text())
        assert (state["global_step"], state["episode"]) == (6, 24)
    # The policy, and the value model (only in the checkpoint: PPO saves the policy as the stage's model).
    _assert_same_weights(weights(out), weights(chain / "ppo"))
    _assert_same_weights(
        load_file(out / "checkpoint-6" / "training_state" / "model.safetensors"),
        load_file(chain / "ppo" / "checkpoint-6" / "training_state" / "model.safetensors"),
    )
    # The log of steps 1-4 comes back from the checkpoint; steps 5 and 6 log what the uninterrupted run did.
    resumed, reference = logged_numbers(out), logged_numbers(chain / "ppo")
    assert [e["episode"] for e in resumed] == [4, 8, 12, 16, 20, 24]
    assert resumed == reference
    assert any(e["loss/policy_avg"] != 0 for e in resumed) and all("loss/value_avg" in e for e in resumed)
