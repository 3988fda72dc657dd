"""Smoke test of `benchmarks/bench_model.py` at a minuscule size (seconds, no timing assertions).

Run alone with:

    python -m pytest tests/test_benchmarks.py -q
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_model.py"

__all__: list[str] = []


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """`benchmarks/bench_model.py` imported by path (`benchmarks/` is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_model", BENCH_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_model"] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def result(bench: ModuleType) -> dict:
    preset = bench.Preset(
        hidden_size=32,
        num_layers=2,
        num_heads=2,
        vocab_size=128,
        seq_len=16,
        batch_size=2,
        prompt_len=4,
        new_tokens=3,
        train_steps=1,
        warmup=1,
        repeats=2,
    )
    return bench.run_benchmark(preset, device="cpu", dtype="float32", threads=1, preset_name="smoke")


def test_llama_intermediate_size_matches_gelu_mlp_weights(bench: ModuleType) -> None:
    for hidden in (32, 256, 768, 1024):
        inter = bench.llama_intermediate_size(hidden)
        assert inter % 8 == 0
        # 3 * C * I vs 2 * C * 4C: within one multiple of 8 of 8/3 C.
        assert abs(inter - 8 * hidden / 3) <= 4


def test_result_structure(result: dict, bench: ModuleType) -> None:
    assert set(result["models"]) == set(bench.MODEL_NAMES) == {"picogpt", "llama"}
    for info in result["models"].values():
        assert info["attn_implementation"] == "sdpa"
        for metric in ("train_tokens_per_s", "generate_tokens_per_s"):
            stats = info[metric]
            assert len(stats["samples"]) == 2
            assert all(x > 0 for x in stats["samples"])
            assert stats["min"] <= stats["median"] <= stats["max"]
            assert stats["peak_step_mem_mib"] is None  # not measured on CPU
    assert result["models"]["picogpt"]["class"] == "PicoGPTForCausalLM"
    assert result["models"]["llama"]["class"] == "LlamaForCausalLM"
    machine = result["machine"]
    for key in ("platform", "cpu_model", "cpu_count", "torch", "transformers", "torch_num_threads"):
        assert key in machine
    assert machine["torch_num_threads"] == result["settings"]["threads"] == 1
    json.dumps(result)  # the results file must be writable as JSON


def test_ratios_are_ours_over_llama(result: dict) -> None:
    ours, llama = result["models"]["picogpt"], result["models"]["llama"]
    for metric in ("train_tokens_per_s", "generate_tokens_per_s"):
        expected = ours[metric]["median"] / llama[metric]["median"]
        assert math.isclose(result["ratios"][metric], expected, rel_tol=1e-12)
        paired = [a / b for a, b in zip(ours[metric]["samples"], llama[metric]["samples"], strict=True)]
        assert result["paired_ratios"][metric]["samples"] == pytest.approx(paired)


def test_parameter_counts_match(result: dict) -> None:
    ours = result["models"]["picogpt"]["num_parameters"]
    llama = result["models"]["llama"]["num_parameters"]
    assert abs(ours - llama) / ours < 0.05
    assert result["models"]["picogpt"]["intermediate_size"] == 4 * 32


def test_table_names_both_models_and_ratios(bench: ModuleType, result: dict) -> None:
    table = bench.format_table(result)
    assert "picogpt" in table and "llama" in table and "ratio ours/llama" in table
