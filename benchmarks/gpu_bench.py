"""GPU benchmark: bf16 SFT model FLOPs utilisation (MFU), PPO episodes/s and PPO's generation share.

Not run in CI (it needs CUDA; without it, it exits with status 2 and says so). On a GPU machine:

    python benchmarks/gpu_bench.py --preset small --output benchmarks/results/gpu-<gpu>.json
    python benchmarks/gpu_bench.py --peak-tflops 989 ...   # override the bf16 dense peak if unknown

What it measures, with a random-init PicoGPT (`--preset`: tiny / small (GPT-2-small-like, 110M)
/ medium (GPT-2-medium-like)):

* **SFT MFU**: steps of forward + backward + AdamW on bf16 weights (autocast-free: the model is
  in bf16), sequence `--seq-len`, batch `--batch-size`. Achieved FLOP/s uses the standard
  6 N T + 12 L h T^2 (per sequence, causal attention counted in full) and is divided by the GPU's
  dense bf16 peak (a table of known GPUs, or `--peak-tflops`). CUDA events time the steps after
  warm-up; `torch.cuda.synchronize()` brackets each.
* **PPO**: TRL's PPOTrainer (through `pipelines.ppo.PPOTrainer`) on synthetic prompts with the
  same model as policy/reference/reward/value, bf16, `--ppo-batch` prompts of `--prompt-len`
  tokens, `--response-len` new tokens, 1 PPO epoch. Reports episodes/s over the timed updates and
  the share of update time spent inside `generate` (a wrapper times `batch_generation`).
* Peak memory (`torch.cuda.max_memory_allocated`) of both.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

__all__ = [
    "PEAK_BF16_TFLOPS",
    "PRESETS",
    "main",
    "peak_tflops",
    "ppo_bench",
    "sft_mfu",
    "training_flops_per_token",
]

# Dense bf16 tensor-core peaks (no sparsity), TFLOP/s, from the vendors' data sheets.
PEAK_BF16_TFLOPS = {
    "H200": 989.0,
    "H100 SXM": 989.0,
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "H100": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "A10G": 70.0,
    "L4": 121.0,
    "RTX 4090": 165.0,
}


@dataclasses.dataclass(frozen=True)
class Preset:
    hidden: int
    layers: int
    heads: int
    vocab: int


PRESETS = {
    "tiny": Preset(256, 4, 4, 8192),
    "small": Preset(768, 12, 12, 32000),
    "medium": Preset(1024, 24, 16, 32000),
}


def peak_tflops(device_name: str, override: float | None = None) -> float | None:
    if override:
        return override
    for key in sorted(PEAK_BF16_TFLOPS, key=len, reverse=True):
        if key.lower() in device_name.lower():
            return PEAK_BF16_TFLOPS[key]
    return None


def training_flops_per_token(n_params: int, layers: int, hidden: int, seq_len: int) -> float:
    """6 N (forward + backward of the weights) + 12 L h T (attention scores and values)."""
    return 6 * n_params + 12 * layers * hidden * seq_len


def _model(preset: Preset, max_len: int):
    import torch

    from pipelines import PicoGPTConfig, PicoGPTForCausalLM

    config = PicoGPTConfig(
        vocab_size=preset.vocab, hidden_size=preset.hidden, num_hidden_layers=preset.layers,
        num_attention_heads=preset.heads, max_position_embeddings=max_len, pad_token_id=0, eos_token_id=1,
        bos_token_id=1,
    )  # fmt: skip
    return PicoGPTForCausalLM(config).to("cuda", torch.bfloat16)


def sft_mfu(
    preset: Preset, seq_len: int, batch_size: int, steps: int, warmup: int, peak: float | None
) -> dict:
    import torch

    torch.manual_seed(0)
    model = _model(preset, seq_len).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    ids = torch.randint(2, preset.vocab, (batch_size, seq_len), device="cuda")
    n_params = sum(p.numel() for p in model.parameters())
    times = []
    torch.cuda.reset_peak_memory_stats()
    for step in range(warmup + steps):
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        end.record()
        torch.cuda.synchronize()
        if step >= warmup:
            times.append(start.elapsed_time(end) / 1000)
    step_s = statistics.median(times)
    tokens = batch_size * seq_len
    achieved = training_flops_per_token(n_params, preset.layers, preset.hidden, seq_len) * tokens / step_s
    return {
        "params": n_params, "seq_len": seq_len, "batch_size": batch_size, "median_step_s": step_s,
        "tokens_per_s": tokens / step_s, "achieved_tflops": achieved / 1e12, "peak_bf16_tflops": peak,
        "mfu": achieved / (peak * 1e12) if peak else None, "step_times_s": times,
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 1024**3,
    }  # fmt: skip


def ppo_bench(
    preset: Preset, batch: int, prompt_len: int, response_len: int, updates: int, workdir: Path
) -> dict:
    import torch
    from datasets import Dataset
    from trl.experimental.ppo import ppo_trainer as trl_ppo

    from pipelines import PicoGPTConfig, PicoGPTForCausalLM, PicoGPTForSequenceClassification
    from pipelines.ppo import PPOConfig, PPOTrainer
    from pipelines.tokenizer import train_tokenizer

    torch.manual_seed(0)
    tokenizer = train_tokenizer(
        [f"sample text number {i} for the benchmark" for i in range(200)], vocab_size=512
    )
    tokenizer.padding_side = "left"
    config = PicoGPTConfig(
        vocab_size=len(tokenizer), hidden_size=preset.hidden, num_hidden_layers=preset.layers,
        num_attention_heads=preset.heads, max_position_embeddings=prompt_len + response_len,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id,
        num_labels=1,  # scalar reward and value heads (TRL squeezes the last dim)
    )  # fmt: skip
    models = [cls(config).to(torch.bfloat16) for cls in (PicoGPTForCausalLM, PicoGPTForCausalLM)]
    reward, value = (PicoGPTForSequenceClassification(config).to(torch.bfloat16) for _ in range(2))
    rows = torch.randint(5, len(tokenizer), (batch * (updates + 2), prompt_len)).tolist()
    dataset = Dataset.from_dict({"input_ids": rows})
    args = PPOConfig(
        output_dir=str(workdir), bf16=True, per_device_train_batch_size=batch, local_rollout_forward_batch_size=batch,
        num_mini_batches=1, num_ppo_epochs=1, total_episodes=batch * (updates + 1), response_length=response_len,
        stop_token=None, num_sample_generations=0, save_strategy="no", report_to="none", logging_steps=1,
    )  # fmt: skip
    generation_time: list[float] = []
    original = trl_ppo.batch_generation

    def timed_generation(*a, **k):
        torch.cuda.synchronize()
        start = time.perf_counter()
        out = original(*a, **k)
        torch.cuda.synchronize()
        generation_time.append(time.perf_counter() - start)
        return out

    trl_ppo.batch_generation = timed_generation
    update_ends: list[float] = []
    try:
        from transformers import TrainerCallback

        class _Clock(TrainerCallback):
            def on_step_end(self, *a, **k):
                torch.cuda.synchronize()
                update_ends.append(time.perf_counter())

        trainer = PPOTrainer(
            args=args, processing_class=tokenizer, model=models[0], ref_model=models[1], reward_model=reward,
            value_model=value, train_dataset=dataset, callbacks=[_Clock()],
        )  # fmt: skip
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
        start = time.perf_counter()
        trainer.train()
    finally:
        trl_ppo.batch_generation = original
    # The first update is warm-up; time the rest.
    update_times = [b - a for a, b in zip([start, *update_ends[:-1]], update_ends, strict=True)][1:]
    gen = generation_time[1 : 1 + len(update_times)]
    return {
        "batch": batch, "prompt_len": prompt_len, "response_len": response_len, "timed_updates": len(update_times),
        "median_update_s": statistics.median(update_times), "episodes_per_s": batch / statistics.median(update_times),
        "generation_share": sum(gen) / sum(update_times), "update_times_s": update_times, "generation_times_s": gen,
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 1024**3,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="bf16 SFT MFU and PPO throughput on one CUDA GPU.")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small")
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--ppo-batch", type=int, default=64)
    parser.add_argument("--prompt-len", type=int, default=128)
    parser.add_argument("--response-len", type=int, default=128)
    parser.add_argument("--ppo-updates", type=int, default=6)
    parser.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak of this GPU")
    parser.add_argument("--skip-ppo", action="store_true")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        print("gpu_bench.py needs a CUDA GPU (torch.cuda.is_available() is False); nothing was measured. "
              "Run it on a GPU machine: python benchmarks/gpu_bench.py --preset small", file=sys.stderr)  # fmt: skip
        return 2
    name = torch.cuda.get_device_name()
    peak = peak_tflops(name, args.peak_tflops)
    preset = PRESETS[args.preset]
    result = {
        "gpu": name, "torch": torch.__version__, "cuda": torch.version.cuda, "preset": args.preset,
        "settings": vars(args) | {"output": str(args.output)},
        "sft": sft_mfu(preset, args.seq_len, args.batch_size, args.steps, args.warmup, peak),
    }  # fmt: skip
    if not args.skip_ppo:
        import tempfile

        with tempfile.TemporaryDirectory() as workdir:
            result["ppo"] = ppo_bench(preset, args.ppo_batch, args.prompt_len, args.response_len, args.ppo_updates,
                                      Path(workdir))  # fmt: skip
    sft = result["sft"]
    mfu = f"{sft['mfu']:.1%}" if sft["mfu"] is not None else "n/a (unknown peak: pass --peak-tflops)"
    print(f"{name}: SFT {sft['tokens_per_s']:,.0f} tok/s, {sft['achieved_tflops']:.1f} TFLOP/s, MFU {mfu}")
    if "ppo" in result:
        ppo = result["ppo"]
        print(
            f"PPO: {ppo['episodes_per_s']:.1f} episodes/s, {ppo['generation_share']:.0%} of update time generating"
        )
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
