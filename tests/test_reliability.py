"""Never lose work, finish atomically, repeat exactly.

- `prepare_output_dir` refuses a non-empty folder that is not an earlier run of the same stage
  (unless `overwrite_output_dir`), refuses to redo a finished run, and resumes an unfinished one
  from its newest *complete* checkpoint;
- a crash while the final model is being saved leaves a folder that `is_complete()` calls
  incomplete, and the same command run again finishes it, with the uninterrupted run's weights;
- two runs of the tiny pretrain -> SFT -> reward -> PPO chain with the same seed give identical
  weights, logged losses and metrics, and stage_info records seed, versions and config hash.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
import torch
from recipe_runs import (
    STAGES,
    build_chain,
    load_recipe,
    logged_numbers,
    parse_for,
    stage_args,
    weights,
    without_timings,
)

from pipelines import stages
from pipelines.configs import ConfigError
from pipelines.stages import (
    RUN_MARKER,
    STAGE_INFO,
    is_complete,
    last_complete_checkpoint,
    overwritten_dir,
    prepare_output_dir,
    read_stage_info,
)


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> Path:
    """The tiny pretrain -> SFT -> reward -> PPO chain (built once per session, shared with test_resume)."""
    return build_chain(tmp_path_factory.getbasetemp() / "reliability-chain", "chain-a")


def _own_run(path: Path, stage: str, complete: bool = False) -> Path:
    path.mkdir(parents=True)
    (path / RUN_MARKER).write_text(json.dumps({"stage": stage}))
    if complete:
        (path / STAGE_INFO).write_text(json.dumps({"stage": stage, "complete": True}))
    return path


def _checkpoint(run: Path, step: int, complete: bool, name: str = "trainer_state.json") -> Path:
    folder = run / f"checkpoint-{step}"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights")
    if complete:
        (folder / name).write_text("{}")
    return folder


# ---------------------------------------------------------------------- overwrite protection


def test_refuses_a_folder_that_is_not_an_earlier_run_of_the_stage(tmp_path):
    foreign = tmp_path / "results"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("my notes")
    with pytest.raises(ConfigError) as info:
        prepare_output_dir(foreign, "sft")
    assert str(info.value).startswith(f"{foreign} is not empty and is not an earlier run of the sft stage")
    assert "--overwrite_output_dir true" in str(info.value)
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]  # nothing written, nothing deleted

    reward_run = _own_run(tmp_path / "reward-run", "reward")
    with pytest.raises(ConfigError, match="is not an earlier run of the sft stage"):
        prepare_output_dir(reward_run, "sft")


def test_refuses_to_redo_a_finished_run(tmp_path):
    done = _own_run(tmp_path / "sft", "sft", complete=True)
    with pytest.raises(ConfigError) as info:
        prepare_output_dir(done, "sft")
    assert str(info.value).startswith(f"{done} already holds a finished sft run (stage_info.json)")
    assert is_complete(done)


def test_overwrite_empties_the_folder_and_keeps_its_contents_aside(tmp_path):
    foreign = tmp_path / "results"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("my notes")
    assert prepare_output_dir(foreign, "sft", overwrite=True) is None
    assert sorted(p.name for p in foreign.iterdir()) == [RUN_MARKER]
    aside = overwritten_dir(foreign)
    assert aside == tmp_path / ".results.overwritten" and (aside / "notes.txt").read_text() == "my notes"
    # A second attempt (the first one failed) starts over but keeps the first set-aside copy, the user's.
    (foreign / "partial.bin").write_text("from the failed attempt")
    prepare_output_dir(foreign, "sft", overwrite=True)
    assert sorted(p.name for p in foreign.iterdir()) == [RUN_MARKER]
    assert sorted(p.name for p in aside.iterdir()) == ["notes.txt"]


def test_overwrite_with_bad_input_loses_nothing_and_a_finished_run_drops_the_old_copy(
    tmp_path, tiny_model_dir
):
    from recipe_runs import run_recipe, stage_args, write_jsonl

    from pipelines.data import DataValidationError

    out = tmp_path / "sft"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"text": "no messages column"}] * 4)
    argv = stage_args("sft", tmp_path / "configs", out, {"model_name_or_path": tiny_model_dir},
                      overwrite_output_dir=True, max_steps=2)  # fmt: skip
    with pytest.raises(DataValidationError):
        run_recipe("sft", [*argv, "--dataset_name", str(bad)])
    assert (overwritten_dir(out) / "notes.txt").read_text() == "my notes"
    run_recipe("sft", argv)  # the same command with good data
    assert is_complete(out) and not (out / "notes.txt").exists()
    assert not overwritten_dir(out).exists()


def test_resumes_from_the_newest_complete_checkpoint(tmp_path, caplog):
    run = _own_run(tmp_path / "sft", "sft")
    assert prepare_output_dir(run, "sft") is None  # started, nothing saved yet
    _checkpoint(run, 2, complete=True)
    _checkpoint(run, 10, complete=True)
    _checkpoint(run, 12, complete=False)  # killed while saving
    (run / "checkpoint-14.tmp").mkdir()  # a PPO checkpoint being written
    caplog.set_level(logging.WARNING, logger="pipelines")
    assert prepare_output_dir(run, "sft") == str(run / "checkpoint-10")
    assert f"{run / 'checkpoint-12'} is incomplete" in caplog.text
    assert f"resuming from {run / 'checkpoint-10'}" in caplog.text

    ppo = _own_run(tmp_path / "ppo", "ppo")
    _checkpoint(ppo, 4, complete=True, name="pipelines_ppo_state.json")
    _checkpoint(ppo, 6, complete=False)
    assert last_complete_checkpoint(ppo) == str(ppo / "checkpoint-4")


def test_recipe_refuses_a_foreign_output_folder_before_loading_anything(
    tmp_path, monkeypatch, tiny_model_dir
):
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"someone else's model")
    module = load_recipe("sft")
    monkeypatch.setattr(module, "get_model", lambda *a, **k: pytest.fail("a model was loaded"))
    argv = stage_args("sft", tmp_path / "configs", out, {"model_name_or_path": tiny_model_dir})
    with pytest.raises(
        ConfigError, match="is not an earlier run of the sft stage: refusing to write into it"
    ):
        module.main(*parse_for("sft", argv))
    assert sorted(p.name for p in out.iterdir()) == ["model.safetensors"]
    assert (out / "model.safetensors").read_bytes() == b"someone else's model"


# --------------------------------------------------------------------------- atomic finish


class _Crash(OSError):
    pass


@pytest.mark.slow
@pytest.mark.parametrize("crash_at", ["save_model", "stage_info"])
def test_crash_during_the_final_save_leaves_an_incomplete_folder_that_a_rerun_finishes(
    crash_at, chain, tmp_path, monkeypatch, caplog
):
    out = tmp_path / "reward"
    argv = stage_args("reward", chain.parent / "configs", out, {"model_name_or_path": chain / "sft"})
    module = load_recipe("reward")
    with monkeypatch.context() as patch:
        if crash_at == "save_model":  # half-way through writing the final model
            save_model = module.RewardTrainer.save_model

            def crashing_save(self, output_dir=None, _internal_call=False):
                if _internal_call:  # checkpoints save normally
                    return save_model(self, output_dir, _internal_call)
                Path(output_dir).mkdir(parents=True, exist_ok=True)
                (Path(output_dir) / "config.json").write_text('{"truncated":')
                raise _Crash("No space left on device (simulated)")

            patch.setattr(module.RewardTrainer, "save_model", crashing_save)
        else:  # the model files are moved in; stage_info.json is not written yet

            def crashing_versions():
                raise _Crash("killed before stage_info.json (simulated)")

            patch.setattr(stages, "package_versions", crashing_versions)
        with pytest.raises(_Crash):
            module.main(*parse_for("reward", argv))

    assert not is_complete(out) and read_stage_info(out) is None
    assert (out / "checkpoint-6" / "trainer_state.json").is_file()
    if crash_at == "save_model":
        assert not (out / "model.safetensors").exists()
    else:
        assert (out / "model.safetensors").is_file()  # the model looks finished; the folder is not

    caplog.set_level(logging.WARNING, logger="pipelines")
    module.main(*parse_for("reward", argv))  # the same command again
    assert f"resuming from {out / 'checkpoint-6'}" in caplog.text
    assert is_complete(out) and not (out / ".incomplete-final").exists()
    json.loads((out / "config.json").read_text())  # no truncated leftover of the crashed save
    final, reference = weights(out), weights(chain / "reward")
    assert final.keys() == reference.keys() and all(torch.equal(final[k], reference[k]) for k in final)
    assert read_stage_info(out)["metrics"] == read_stage_info(chain / "reward")["metrics"]


# ---------------------------------------------------------------------------- repeatability


@pytest.mark.slow
def test_same_seed_same_weights_losses_and_metrics_for_every_stage(chain):
    again = build_chain(chain.parent, "chain-b")
    for stage in STAGES:
        first, second = weights(chain / stage), weights(again / stage)
        assert first.keys() == second.keys()
        for name in first:
            assert torch.equal(first[name], second[name]), f"{stage}: {name} differs"
        logged = logged_numbers(chain / stage)
        loss_key = "loss/policy_avg" if stage == "ppo" else "loss"
        assert len([e for e in logged if loss_key in e]) == 6, stage  # one entry per step
        assert logged == logged_numbers(again / stage), stage

        info, info_again = read_stage_info(chain / stage), read_stage_info(again / stage)
        assert info["complete"] and info["seed"] == 42
        assert {"torch", "transformers", "trl", "accelerate"} <= set(info["versions"])
        assert re.fullmatch(r"[0-9a-f]{16}", info["config_hash"])
        assert info["config_hash"] == info_again["config_hash"], stage
        assert info["metrics"] and without_timings(info["metrics"]) == without_timings(
            info_again["metrics"]
        ), stage


def test_resume_with_changed_arguments_is_refused(tmp_path):
    """A resumed run must be the run that was interrupted: other arguments would mix two runs."""
    from dataclasses import dataclass

    from pipelines.configs import ConfigError
    from pipelines.stages import prepare_output_dir

    @dataclass
    class Args:
        learning_rate: float = 1e-3
        logging_steps: int = 10

    out = tmp_path / "sft"
    assert prepare_output_dir(out, "sft", args=(Args(),)) is None
    # Nothing saved yet: a retry with other arguments (e.g. a fixed path) simply starts over.
    prepare_output_dir(out, "sft", args=(Args(learning_rate=1.0),))
    prepare_output_dir(out, "sft", args=(Args(),))
    checkpoint = out / "checkpoint-2"  # an interrupted run that saved a checkpoint
    checkpoint.mkdir()
    (checkpoint / "trainer_state.json").write_text("{}")
    # Same arguments (a resume-neutral one changed): accepted.
    prepare_output_dir(out, "sft", args=(Args(logging_steps=1),))
    with pytest.raises(ConfigError, match=r"started with other arguments \(learning_rate\)"):
        prepare_output_dir(out, "sft", args=(Args(learning_rate=5e-4),))

    @dataclass
    class NewerArgs(Args):  # a later version added a field; at its default (None) the run is the same
        ref_model_path: str | None = None

    prepare_output_dir(out, "sft", args=(NewerArgs(),))
    with pytest.raises(ConfigError, match=r"started with other arguments \(ref_model_path\)"):
        prepare_output_dir(out, "sft", args=(NewerArgs(ref_model_path="sft"),))
