"""Scale-out: the recipes under 2-process DDP (gloo, CPU) and under DeepSpeed ZeRO-2/3 (1 process).

Every run is a real `accelerate launch` of a recipe with `PIPELINES_DEBUG_RANK_DIR` set, so each
process writes what it was and what it saw (`pipelines/debug.py`). From those files the tests
prove, per stage:

- there were N distinct processes, each with its own rank in an N-wide gloo process group;
- the ranks trained on disjoint samples (the data was split, not replicated);
- the parameters are identical on every rank after training, and differ from before training:
  with different data on each rank that only happens if gradients were all-reduced;
- the saved model (or adapter, merged) loads with the Auto classes and differs from its start.

`check_rank_records` is also run on records written the way unsynchronised replicas write them
(the `--multi_gpu`-without-CPU trap) and must reject them, and that trap launched for real must
stop with an error instead of exiting 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from scaling_fixtures import (
    REWARD_ARGS,
    SFT_ARGS,
    assert_trained_and_loadable,
    build_tiny_checkpoint,
    launch,
    ppo_args,
    recipe_env,
)
from transformers import AutoModelForCausalLM

import pipelines  # noqa: F401  (registers PicoGPT with the Auto classes)

DDP = ["--config_file", "accelerate_configs/cpu_ddp.yaml"]
PPO_ARGS = ppo_args(32)
PPO_UPDATES_2_RANKS = 32 // (4 * 2)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny-base"))


def check_rank_records(
    directory: Path, world_size: int, min_batches: int, distributed_type: str
) -> list[dict]:
    """Assert that `directory` holds the records of `world_size` real, synchronised ranks."""
    records = [json.loads(p.read_text()) for p in sorted(directory.glob("rank*.json"))]
    assert sorted(r["rank"] for r in records) == list(range(world_size)), f"ranks found: {records}"
    assert len({r["pid"] for r in records}) == world_size, "two ranks in one process"
    samples: list[set[str]] = []
    for record in records:
        assert record["world_size"] == world_size and record["distributed_type"] == distributed_type, record
        if world_size > 1:
            assert record["backend"] == "gloo" and record["torch_distributed_world_size"] == world_size, (
                record
            )
        lines = [
            json.loads(x)
            for x in (directory / f"rank{record['rank']}.batches.jsonl").read_text().splitlines()
        ]
        assert {line["pid"] for line in lines} == {record["pid"]}, (
            "several processes wrote one rank's batches"
        )
        assert len(lines) >= min_batches, f"rank {record['rank']} collated {len(lines)} batches"
        seen = [h for line in lines for h in line["samples"]]
        assert len(seen) == len(set(seen)), f"rank {record['rank']} saw a sample twice in one epoch"
        samples.append(set(seen))
    for i in range(world_size):
        for j in range(i + 1, world_size):
            assert not samples[i] & samples[j], (
                f"ranks {i} and {j} trained on {len(samples[i] & samples[j])} same samples"
            )
    assert len({r["params_before"] for r in records}) == 1, "ranks started from different weights"
    assert len({r["params_after"] for r in records}) == 1, "parameters differ across ranks after training"
    assert records[0]["params_after"] != records[0]["params_before"], "training did not change the parameters"
    return records


def _run_ok(result) -> None:
    assert result.returncode == 0, result.stdout[-3000:] + "\n" + result.stderr[-6000:]


# --------------------------------------------------------------------------- the checker itself


def test_rank_check_rejects_unsynchronised_replicas(tmp_path):
    """Two replicas that both think they are rank 0 overwrite one record and append to one batch
    file with two pids; the check must fail on exactly that (so the DDP tests can fail)."""
    for pid in (101, 102):  # what `accelerate launch --multi_gpu` without CPU mode leaves behind
        record = {"rank": 0, "world_size": 1, "pid": pid, "distributed_type": "DistributedType.NO", "backend": None,
                  "torch_distributed_world_size": None, "params_before": "a", "params_after": "b"}  # fmt: skip
        (tmp_path / "rank0.json").write_text(json.dumps(record))
        with (tmp_path / "rank0.batches.jsonl").open("a") as handle:
            for step in range(4):
                handle.write(json.dumps({"pid": pid, "samples": [f"s{step}a", f"s{step}b"]}) + "\n")
    with pytest.raises(AssertionError, match="ranks found"):
        check_rank_records(tmp_path, 2, 4, "DistributedType.MULTI_CPU")
    # Even with two well-formed rank records, replicas that saw the same data are caught.
    for rank, pid in ((0, 101), (1, 102)):
        lines = [json.dumps({"pid": pid, "samples": [f"s{s}a", f"s{s}b"]}) for s in range(4)]
        (tmp_path / f"rank{rank}.batches.jsonl").write_text("\n".join(lines) + "\n")
    fixed = {"world_size": 2, "distributed_type": "DistributedType.MULTI_CPU", "backend": "gloo",
             "torch_distributed_world_size": 2}  # fmt: skip
    for rank, pid in ((0, 101), (1, 102)):
        (tmp_path / f"rank{rank}.json").write_text(json.dumps({**record, **fixed, "rank": rank, "pid": pid}))
    with pytest.raises(AssertionError, match="same samples"):
        check_rank_records(tmp_path, 2, 4, "DistributedType.MULTI_CPU")


@pytest.mark.multiprocess
def test_multi_gpu_launch_without_cpu_mode_fails_instead_of_training_replicas(tiny, tmp_path):
    """`--multi_gpu` on a machine without GPUs and without ACCELERATE_USE_CPU=1 starts two
    single-process replicas; the recipes must refuse to train (Accelerate itself exits 0)."""
    env = recipe_env()
    out = tmp_path / "sft"
    args = [
        "--config",
        "recipes/tiny/sft.yaml",
        "--output_dir",
        str(out),
        "--model_name_or_path",
        str(tiny),
        *SFT_ARGS,
    ]
    result = launch(["--multi_gpu", "--num_processes", "2"], "sft", args, env)
    assert result.returncode != 0
    assert "unsynchronised" in result.stderr and "ACCELERATE_USE_CPU=1" in result.stderr
    assert not out.exists()  # refused before either replica touched the output folder


# --------------------------------------------------------------------------- DDP, 2 CPU processes


@pytest.mark.multiprocess
@pytest.mark.parametrize("stage", ["sft", "reward"])
def test_ddp_two_processes_sft_and_reward(stage, tiny, tmp_path):
    out, ranks = tmp_path / stage, tmp_path / "ranks"
    args = ["--config", f"recipes/tiny/{stage}.yaml", "--output_dir", str(out), "--model_name_or_path", str(tiny),
            *(SFT_ARGS if stage == "sft" else REWARD_ARGS)]  # fmt: skip
    _run_ok(launch(DDP, stage, args, recipe_env(ACCELERATE_USE_CPU="1", PIPELINES_DEBUG_RANK_DIR=str(ranks))))
    records = check_rank_records(ranks, 2, min_batches=4, distributed_type="DistributedType.MULTI_CPU")
    assert all(r["global_step"] == 4 for r in records)
    assert_trained_and_loadable(out, tiny, "reward" if stage == "reward" else "causal")


@pytest.mark.multiprocess
def test_ddp_two_processes_ppo_saves_a_loadable_policy(tiny, tmp_path):
    out, ranks = tmp_path / "ppo", tmp_path / "ranks"
    args = ["--config", "recipes/tiny/ppo.yaml", "--output_dir", str(out), "--model_name_or_path", str(tiny),
            "--reward_model_path", str(tiny), *PPO_ARGS]  # fmt: skip
    _run_ok(launch(DDP, "ppo", args, recipe_env(ACCELERATE_USE_CPU="1", PIPELINES_DEBUG_RANK_DIR=str(ranks))))
    records = check_rank_records(ranks, 2, PPO_UPDATES_2_RANKS, "DistributedType.MULTI_CPU")
    assert all(r["global_step"] == PPO_UPDATES_2_RANKS for r in records)
    assert_trained_and_loadable(out, tiny, "causal")


@pytest.mark.multiprocess
def test_ddp_two_processes_ppo_with_lora_and_no_reference_model(tiny, tmp_path):
    """The reference is the policy with its adapter disabled, reached through the DDP wrapper."""
    from peft import PeftModel

    out, ranks = tmp_path / "ppo-lora", tmp_path / "ranks"
    args = ["--config", "recipes/tiny/ppo.yaml", "--output_dir", str(out), "--model_name_or_path", str(tiny),
            "--reward_model_path", str(tiny), "--use_peft", "true", "--lora_r", "4", "--learning_rate", "1e-3",
            *PPO_ARGS]  # fmt: skip
    _run_ok(launch(DDP, "ppo", args, recipe_env(ACCELERATE_USE_CPU="1", PIPELINES_DEBUG_RANK_DIR=str(ranks))))
    check_rank_records(ranks, 2, PPO_UPDATES_2_RANKS, "DistributedType.MULTI_CPU")
    assert (out / "adapter_config.json").is_file() and not (out / "model.safetensors").exists()
    adapter = load_file(out / "adapter_model.safetensors")
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in adapter.items()), (
        "LoRA B is still zero: no update"
    )
    merged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny), out).merge_and_unload()
    merged.save_pretrained(tmp_path / "merged")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    base = AutoModelForCausalLM.from_pretrained(tiny)
    changed = [n for n, p in reloaded.state_dict().items() if not torch.equal(p, base.state_dict()[n])]
    assert changed, "merging the adapter changed nothing"


# --------------------------------------------------------------------------- DeepSpeed, 1 CPU process


@pytest.mark.multiprocess
@pytest.mark.parametrize("zero_stage", [2, 3])
@pytest.mark.parametrize("stage", ["sft", "reward", "ppo"])
def test_deepspeed_zero_one_process(stage, zero_stage, tiny, tmp_path):
    """ZeRO-2/3 through Accelerate with ONE CPU process (more need GPUs); ZeRO-3 must gather the
    sharded weights into a complete save. The first run on a machine JIT-builds a DeepSpeed op.

    PPO runs too: the configs' `gradient_accumulation_steps: auto` reaches TRL's own
    `Accelerator(...)` as the string "auto", which `pipelines.ppo.PPOTrainer` resolves."""
    pytest.importorskip("deepspeed")
    out, ranks = tmp_path / stage, tmp_path / "ranks"
    launcher = ["--config_file", f"accelerate_configs/deepspeed_zero{zero_stage}.yaml", "--num_processes", "1",
                "--mixed_precision", "no"]  # fmt: skip
    stage_args = {
        "sft": SFT_ARGS,
        "reward": REWARD_ARGS,
        "ppo": ["--reward_model_path", str(tiny), *PPO_ARGS],
    }
    args = ["--config", f"recipes/tiny/{stage}.yaml", "--output_dir", str(out), "--model_name_or_path", str(tiny),
            *stage_args[stage]]  # fmt: skip
    _run_ok(launch(launcher, stage, args, recipe_env(PIPELINES_DEBUG_RANK_DIR=str(ranks)), timeout=900))
    (record,) = [json.loads(p.read_text()) for p in ranks.glob("rank*.json")]
    assert record["distributed_type"] == "DistributedType.DEEPSPEED" and record["zero_stage"] == zero_stage
    assert record["global_step"] == (32 // 4 if stage == "ppo" else 4)
    assert_trained_and_loadable(out, tiny, "reward" if stage == "reward" else "causal")


@pytest.mark.multiprocess
def test_deepspeed_zero3_ppo_against_the_gold_judge(tiny, tmp_path):
    """`gold_reward`: the reward model is a judge function without weights, which DeepSpeed cannot
    wrap (ZeRO-3 fails on an empty parameter list); `pipelines.ppo.PPOTrainer` leaves it unwrapped."""
    pytest.importorskip("deepspeed")
    out, ranks = tmp_path / "ppo_gold", tmp_path / "ranks"
    launcher = ["--config_file", "accelerate_configs/deepspeed_zero3.yaml", "--num_processes", "1",
                "--mixed_precision", "no"]  # fmt: skip
    args = ["--config", "recipes/tiny/variants/ppo_gold.yaml", "--output_dir", str(out), "--model_name_or_path",
            str(tiny), "--reward_model_path", str(tiny), *PPO_ARGS]  # fmt: skip
    _run_ok(launch(launcher, "ppo", args, recipe_env(PIPELINES_DEBUG_RANK_DIR=str(ranks)), timeout=900))
    (record,) = [json.loads(p.read_text()) for p in ranks.glob("rank*.json")]
    assert record["zero_stage"] == 3 and record["global_step"] == 32 // 4
    history = json.loads((out / "log_history.json").read_text())["log_history"]
    scores = [entry["objective/scores"] for entry in history if "objective/scores" in entry]
    # 4 x gold score in [0, 4], minus missing_eos_penalty (1.0) for answers cut without EOS
    assert scores and all(-1.0 <= s <= 4.0 for s in scores), scores
    assert_trained_and_loadable(out, tiny, "causal")
