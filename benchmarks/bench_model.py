"""Side-by-side speed benchmark: `PicoGPTForCausalLM` against transformers' `LlamaForCausalLM`.

Both models get the same width, depth, heads, vocabulary, sequence length, dtype, attention
implementation (sdpa), tied embeddings and (nearly) the same parameter count: PicoGPT's MLP is
GELU 4x with 2 matrices (8 C^2 weights), so Llama's SwiGLU MLP (3 matrices) gets
`intermediate_size = 8/3 C` rounded to a multiple of 8. Two numbers are measured:

* training throughput, tokens/s: one step = forward (with `labels`, the model's own loss) +
  backward + `AdamW.step()` + `zero_grad(set_to_none=True)`. The optimizer step IS included,
  for both models.
* greedy generation throughput, new tokens/s, with the KV cache: `generate(max_new_tokens=N,
  min_new_tokens=N, do_sample=False)` from a random prompt, so both models emit exactly N
  tokens per row; the prefill of the prompt is inside the timed region.

Each timed repeat of one model is followed by a timed repeat of the other (A B A B ...), so a
change of machine load during the run hits both. The report gives median, min, max and the
relative spread ((max - min) / median) of each, and the ratios ours / llama (> 1: ours faster).

Usage:

    python benchmarks/bench_model.py                                   # CPU, float32, tiny
    python benchmarks/bench_model.py --device cuda --dtype bfloat16 --preset small
    python benchmarks/bench_model.py --threads 2 --output benchmarks/results/my-run.json

From Python (the smoke test does this at a minuscule size):

    from bench_model import Preset, run_benchmark
    result = run_benchmark(Preset(hidden_size=32, num_layers=2, num_heads=2, vocab_size=128,
                                  seq_len=16, batch_size=2, prompt_len=4, new_tokens=4))
    print(result["ratios"])
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedModel

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `python benchmarks/bench_model.py` without `pip install -e .`
    sys.path.insert(0, str(REPO_ROOT))

from pipelines.models.picogpt import PicoGPTConfig, PicoGPTForCausalLM  # noqa: E402

__all__ = [
    "MODEL_NAMES",
    "PRESETS",
    "Preset",
    "build_models",
    "format_table",
    "llama_intermediate_size",
    "machine_info",
    "main",
    "measure_generation",
    "measure_training",
    "run_benchmark",
    "summarize",
]

OURS, LLAMA = "picogpt", "llama"
MODEL_NAMES: tuple[str, str] = (OURS, LLAMA)
RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclasses.dataclass(frozen=True)
class Preset:
    """Model shape and run lengths of one benchmark size.

    `seq_len` x `batch_size` is the training batch; generation starts from a random prompt of
    `prompt_len` tokens per row (same batch size) and emits `new_tokens` tokens per row.
    `train_steps` optimizer steps make one timed training repeat; one `generate()` call makes
    one timed generation repeat.
    """

    hidden_size: int
    num_layers: int
    num_heads: int
    vocab_size: int
    seq_len: int
    batch_size: int
    prompt_len: int
    new_tokens: int
    train_steps: int = 2
    warmup: int = 2
    repeats: int = 5


PRESETS: dict[str, Preset] = {
    # ~5.2M parameters; the whole run takes 1-1.5 minutes on 2 CPU cores (more under load).
    "tiny": Preset(
        hidden_size=256,
        num_layers=4,
        num_heads=4,
        vocab_size=8192,
        seq_len=256,
        batch_size=8,
        prompt_len=32,
        new_tokens=64,
        train_steps=1,
        warmup=2,
        repeats=15,
    ),
    # ~110M (PicoGPT) parameters, GPT-2-small shape: a GPU preset.
    "small": Preset(
        hidden_size=768,
        num_layers=12,
        num_heads=12,
        vocab_size=32000,
        seq_len=1024,
        batch_size=8,
        prompt_len=128,
        new_tokens=128,
        train_steps=5,
        warmup=3,
        repeats=7,
    ),
}

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def llama_intermediate_size(hidden_size: int) -> int:
    """SwiGLU width whose 3 matrices hold as many weights as a GELU 4x MLP's 2: 8/3 C, to a multiple of 8."""
    return max(8, 8 * round(8 * hidden_size / 3 / 8))


def build_models(
    preset: Preset, device: str = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0
) -> dict[str, PreTrainedModel]:
    """Build both models at random init (same seed), on `device` in `dtype`, with sdpa attention."""
    common: dict[str, Any] = {
        "vocab_size": preset.vocab_size,
        "hidden_size": preset.hidden_size,
        "num_hidden_layers": preset.num_layers,
        "num_attention_heads": preset.num_heads,
        "num_key_value_heads": preset.num_heads,
        "max_position_embeddings": max(preset.seq_len, preset.prompt_len + preset.new_tokens),
        "tie_word_embeddings": True,
        "use_cache": True,
        "bos_token_id": None,
        "eos_token_id": None,
        "pad_token_id": None,
    }
    configs = {
        OURS: PicoGPTConfig(**common, intermediate_size=4 * preset.hidden_size, rope_theta=10000.0),
        LLAMA: LlamaConfig(
            **common,
            intermediate_size=llama_intermediate_size(preset.hidden_size),
            hidden_act="silu",
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
            attention_bias=False,
            mlp_bias=False,
            attention_dropout=0.0,
        ),
    }
    classes: dict[str, type[PreTrainedModel]] = {OURS: PicoGPTForCausalLM, LLAMA: LlamaForCausalLM}
    models: dict[str, PreTrainedModel] = {}
    for name in MODEL_NAMES:
        configs[name]._attn_implementation = "sdpa"
        torch.manual_seed(seed)
        model = classes[name](configs[name]).to(device=device, dtype=dtype)
        model.generation_config.eos_token_id = None
        model.generation_config.pad_token_id = None
        models[name] = model
    return models


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def summarize(samples: list[float]) -> dict[str, Any]:
    """Median, min, max and relative spread ((max - min) / median) of throughput samples."""
    median = statistics.median(samples)
    return {
        "median": median,
        "min": min(samples),
        "max": max(samples),
        "spread": (max(samples) - min(samples)) / median if median else float("nan"),
        "samples": samples,
    }


def _interleaved(
    models: dict[str, PreTrainedModel],
    run_once: dict[str, Callable[[], float]],
    warmup: int,
    repeats: int,
    device: str,
) -> dict[str, dict[str, Any]]:
    """Warm each model up, then time `repeats` rounds A B A B ...; `run_once` returns the tokens it made."""
    cuda = device.startswith("cuda")
    for name in models:
        for _ in range(warmup):
            run_once[name]()
    _sync(device)
    samples: dict[str, list[float]] = {name: [] for name in models}
    peaks: dict[str, float | None] = {name: None for name in models}
    for _ in range(repeats):
        for name in models:
            if cuda:
                base = torch.cuda.memory_allocated()
                torch.cuda.reset_peak_memory_stats()
            _sync(device)
            start = time.perf_counter()
            tokens = run_once[name]()
            _sync(device)
            elapsed = time.perf_counter() - start
            samples[name].append(tokens / elapsed)
            if cuda:
                peak = (torch.cuda.max_memory_allocated() - base) / 2**20
                peaks[name] = max(peaks[name] or 0.0, peak)
    return {name: {**summarize(samples[name]), "peak_step_mem_mib": peaks[name]} for name in models}


def measure_training(
    models: dict[str, PreTrainedModel],
    preset: Preset,
    device: str = "cpu",
    lr: float = 1e-4,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Training tokens/s per model: forward (loss) + backward + AdamW step, `train_steps` steps per repeat.

    Inputs are what a language-modelling collator gives a Trainer: `input_ids`, an all-ones
    `attention_mask` and `labels = input_ids`. The models are put in train mode and stay there.
    """
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(0, preset.vocab_size, (preset.batch_size, preset.seq_len), generator=generator)
    batch = {
        "input_ids": input_ids.to(device),
        "attention_mask": torch.ones_like(input_ids).to(device),
        "labels": input_ids.to(device),
    }
    tokens_per_repeat = preset.train_steps * preset.batch_size * preset.seq_len

    def make_step(model: PreTrainedModel) -> Callable[[], float]:
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr)

        def run() -> float:
            for _ in range(preset.train_steps):
                loss = model(**batch).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            return float(tokens_per_repeat)

        return run

    run_once = {name: make_step(model) for name, model in models.items()}
    return _interleaved(models, run_once, preset.warmup, preset.repeats, device)


def measure_generation(
    models: dict[str, PreTrainedModel], preset: Preset, device: str = "cpu", seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Greedy generation new-tokens/s per model, KV cache on, exactly `new_tokens` per row (prefill included)."""
    generator = torch.Generator().manual_seed(seed + 1)
    prompt = torch.randint(0, preset.vocab_size, (preset.batch_size, preset.prompt_len), generator=generator)
    prompt = prompt.to(device)
    attention_mask = torch.ones_like(prompt)
    expected = (preset.batch_size, preset.prompt_len + preset.new_tokens)

    def make_call(model: PreTrainedModel) -> Callable[[], float]:
        model.eval()

        @torch.inference_mode()
        def run() -> float:
            out = model.generate(
                input_ids=prompt,
                attention_mask=attention_mask,
                max_new_tokens=preset.new_tokens,
                min_new_tokens=preset.new_tokens,
                do_sample=False,
                use_cache=True,
            )
            if tuple(out.shape) != expected:
                raise RuntimeError(f"generate() returned {tuple(out.shape)}, expected {expected}")
            return float(preset.batch_size * preset.new_tokens)

        return run

    run_once = {name: make_call(model) for name, model in models.items()}
    return _interleaved(models, run_once, max(1, preset.warmup // 2), preset.repeats, device)


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine_info(device: str = "cpu") -> dict[str, Any]:
    """Platform, CPU model, core counts, library versions, thread settings and (on CUDA) the GPU."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "torch_num_threads": torch.get_num_threads(),
        "torch_num_interop_threads": torch.get_num_interop_threads(),
        "gpu": None,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
        info["cuda"] = torch.version.cuda
    return info


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _ratio(ours: float, llama: float) -> float:
    return ours / llama if llama else float("nan")


def run_benchmark(
    preset: Preset,
    device: str = "cpu",
    dtype: str = "float32",
    threads: int | None = None,
    preset_name: str = "custom",
    seed: int = 0,
) -> dict[str, Any]:
    """Build both models, measure training and generation, and return the JSON-able result."""
    if threads is not None:
        torch.set_num_threads(threads)
    torch_dtype = DTYPES[dtype]
    load_before = _loadavg()
    started = time.perf_counter()
    models = build_models(preset, device=device, dtype=torch_dtype, seed=seed)
    train = measure_training(models, preset, device=device, seed=seed)
    gen = measure_generation(models, preset, device=device, seed=seed)
    result_models: dict[str, Any] = {}
    for name, model in models.items():
        cfg = model.config
        result_models[name] = {
            "class": type(model).__name__,
            "num_parameters": sum(p.numel() for p in model.parameters()),  # tied embedding counted once
            "intermediate_size": cfg.intermediate_size,
            "mlp": "GELU(tanh) 4x, 2 matrices" if name == OURS else "SwiGLU, 3 matrices",
            "norm": "LayerNorm (no bias)" if name == OURS else "RMSNorm",
            "attn_implementation": cfg._attn_implementation,
            "train_tokens_per_s": train[name],
            "generate_tokens_per_s": gen[name],
        }
    ratios = {
        "train_tokens_per_s": _ratio(train[OURS]["median"], train[LLAMA]["median"]),
        "generate_tokens_per_s": _ratio(gen[OURS]["median"], gen[LLAMA]["median"]),
    }
    # Per-round ratios (each from two back-to-back repeats): a load spike that hits one round
    # moves one of these instead of both medians, so their median is the more robust estimate.
    paired_ratios = {
        metric: summarize(
            [_ratio(a, b) for a, b in zip(stats[OURS]["samples"], stats[LLAMA]["samples"], strict=True)]
        )
        for metric, stats in (("train_tokens_per_s", train), ("generate_tokens_per_s", gen))
    }
    return {
        "machine": machine_info(device),
        "load_average": {"before": load_before, "after": _loadavg()},
        "settings": {
            "preset": preset_name,
            **dataclasses.asdict(preset),
            "device": device,
            "dtype": dtype,
            "threads": torch.get_num_threads(),
            "seed": seed,
            "train_step": "forward(labels) + backward + AdamW.step + zero_grad; all-ones attention_mask",
            "generate": "greedy, KV cache, min_new_tokens = max_new_tokens; prefill included",
            "throughput_units": "train: input tokens/s; generate: new tokens/s",
            "order": "interleaved A B A B ... per repeat, after per-model warm-up",
            "peak_memory": (
                "torch.cuda.max_memory_allocated minus memory allocated at the start of the timed repeat (MiB)"
                if device.startswith("cuda")
                else "not measured on CPU"
            ),
        },
        "models": result_models,
        "ratios": ratios,
        "ratio_definition": "ours / llama median throughput; > 1 means PicoGPT is faster",
        "paired_ratios": paired_ratios,
        "paired_ratio_definition": "ours / llama within each interleaved round; median, min, max over rounds",
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


def format_table(result: dict[str, Any]) -> str:
    """Markdown table of the result: one row per model and metric, then the ratios."""
    lines = [
        "| model | params | metric | median tok/s | min | max | spread | peak step mem (MiB) |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for name, info in result["models"].items():
        for metric in ("train_tokens_per_s", "generate_tokens_per_s"):
            stats = info[metric]
            mem = stats["peak_step_mem_mib"]
            lines.append(
                f"| {name} | {info['num_parameters'] / 1e6:.2f}M | {metric.split('_')[0]} | {stats['median']:,.0f} "
                f"| {stats['min']:,.0f} | {stats['max']:,.0f} | {100 * stats['spread']:.1f}% "
                f"| {'-' if mem is None else f'{mem:,.0f}'} |"
            )
    ratios = result["ratios"]
    lines.append("")
    lines.append(
        f"ratio ours/llama: train {ratios['train_tokens_per_s']:.3f}, "
        f"generate {ratios['generate_tokens_per_s']:.3f}  (> 1: PicoGPT faster)"
    )
    paired = result["paired_ratios"]
    lines.append(
        "per-round ratio median [min, max]: "
        + ", ".join(
            f"{metric.split('_')[0]} {paired[metric]['median']:.3f} [{paired[metric]['min']:.3f}, "
            f"{paired[metric]['max']:.3f}]"
            for metric in ("train_tokens_per_s", "generate_tokens_per_s")
        )
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch.set_num_threads; default: the CPUs this process may use",
    )
    parser.add_argument("--repeats", type=int, default=None, help="override the preset's timed repeats")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--output", type=Path, default=None, help="default: benchmarks/results/<device>-<preset>.json"
    )
    args = parser.parse_args(argv)

    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but torch.cuda.is_available() is False")
    threads = args.threads
    if threads is None:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    preset = PRESETS[args.preset]
    if args.repeats is not None:
        preset = dataclasses.replace(preset, repeats=args.repeats)

    result = run_benchmark(
        preset, device=args.device, dtype=args.dtype, threads=threads, preset_name=args.preset, seed=args.seed
    )
    output = args.output or RESULTS_DIR / f"{args.device}-{args.preset}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")

    machine = result["machine"]
    print(
        f"{machine['cpu_model']} | {machine['gpu'] or 'no GPU'} | torch {machine['torch']} | "
        f"transformers {machine['transformers']} | threads {result['settings']['threads']} | "
        f"{args.device} {args.dtype} preset {args.preset} | load avg {result['load_average']}"
    )
    print(format_table(result))
    print(f"wrote {output}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
