"""Estimate per-GPU training memory of each stage (SFT, reward, PPO) with full, LoRA and QLoRA training.

An estimate from first principles, not a measurement. What is counted, per GPU, one process,
no sharding (DDP replicates all of it on every GPU; ZeRO/FSDP divide the states by the GPUs):

* weights: bf16 (2 B/param) for frozen or LoRA-base models; 4-bit nf4 with double quantisation
  (0.5 B/param + 0.127 bit/param of constants) for the linear layers of QLoRA models, whose
  embeddings and norms stay bf16;
* full training, mixed precision with AdamW (the ZeRO paper's 16 B/param): bf16 weights 2 +
  fp32 master weights 4 + bf16 gradients 2 + AdamW first and second moments in fp32 8;
* trainable LoRA parameters (r=16 on every linear layer of the blocks) at the same 16 B/param;
* activations with gradient checkpointing and a fused (flash/SDPA) attention: the input of every
  layer is kept (2 B x tokens x hidden per layer), plus one layer's recomputed activations during
  backward (~ (18 h + 6 i) bytes per token, i the MLP width: SwiGLU), plus the logits in bf16, their
  fp32 copy for the loss and its gradient (10 B x tokens x vocab);
* PPO holds 4 models: policy (trained), reference (frozen; none with LoRA: it is the policy with
  the adapter disabled), reward (frozen) and value (trained). With `use_peft`, TRL's PPOTrainer
  wraps only the policy in LoRA: the value model trains fully (16 B/param) unless it is
  quantised, in which case only its non-quantised parameters (embeddings, norms, score head)
  train. Add the KV cache of generation (bf16) and the activations of two models (policy +
  value) for the training micro-batch;
* overhead: 2 GiB (CUDA context, NCCL buffers) + 10 % fragmentation.

Settings (all flags): sequence length 2048 for SFT and reward (a reward micro-batch of 4 pairs is
8 sequences), micro-batch 4; PPO: 512 prompt + 512 response tokens, rollout and training
micro-batch 4. The model family is Llama-3-like (GQA with 8 KV heads, SwiGLU MLP 3.5 h, vocab
128256, depth h/128), the value and reward models the same size as the policy.

    python benchmarks/memory_estimate.py                       # markdown tables, 80 GB GPU
    python benchmarks/memory_estimate.py --gpu-gb 141 --json benchmarks/results/memory_estimate.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

__all__ = [
    "KNOWN_SHAPES",
    "METHODS",
    "STAGES",
    "ModelShape",
    "Settings",
    "estimate",
    "largest_fitting",
    "llama_like",
]

GiB = 1024**3
STAGES = ("sft", "reward", "ppo")
METHODS = ("full", "lora", "qlora")
FULL_BYTES_PER_PARAM = 16.0  # bf16 weights 2 + fp32 master 4 + bf16 grads 2 + AdamW m, v fp32 8
NF4_BYTES_PER_PARAM = 0.5 + 0.127 / 8  # 4 bits + double-quantised absmax constants


@dataclasses.dataclass(frozen=True)
class ModelShape:
    """A decoder-only transformer (Llama-style: GQA attention, SwiGLU MLP, untied head)."""

    name: str
    hidden: int
    layers: int
    intermediate: int
    heads: int
    kv_heads: int
    vocab: int = 128256
    tied: bool = False

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    def linear_params(self) -> int:
        """Weights of the attention and MLP matrices (what LoRA adapts and QLoRA quantises)."""
        kv = self.kv_heads * self.head_dim
        attention = self.hidden * (self.hidden + 2 * kv) + self.hidden * self.hidden
        mlp = 3 * self.hidden * self.intermediate
        return self.layers * (attention + mlp)

    def other_params(self) -> int:
        """Embeddings, LM head (if untied) and norms: kept in bf16 by QLoRA."""
        return self.vocab * self.hidden * (1 if self.tied else 2) + (2 * self.layers + 1) * self.hidden

    def params(self) -> int:
        return self.linear_params() + self.other_params()

    def lora_params(self, rank: int = 16) -> int:
        kv = self.kv_heads * self.head_dim
        shapes = [(self.hidden, self.hidden), (self.hidden, kv), (self.hidden, kv), (self.hidden, self.hidden),
                  (self.hidden, self.intermediate), (self.hidden, self.intermediate), (self.intermediate, self.hidden)]  # fmt: skip
        return self.layers * sum(rank * (a + b) for a, b in shapes)


def llama_like(hidden: int) -> ModelShape:
    """The family the "largest model" search walks: depth h/128, MLP 3.5 h, 8 KV heads."""
    hidden = max(512, int(hidden) // 128 * 128)
    return ModelShape(f"llama-like-h{hidden}", hidden, hidden // 128, int(3.5 * hidden) // 256 * 256,
                      hidden // 128, min(8, hidden // 128))  # fmt: skip


KNOWN_SHAPES = (
    ModelShape("Llama-3.2-1B", 2048, 16, 8192, 32, 8, tied=True),
    ModelShape("Llama-3.2-3B", 3072, 28, 8192, 24, 8, tied=True),
    ModelShape("Llama-3.1-8B", 4096, 32, 14336, 32, 8),
    ModelShape("Qwen2.5-14B", 5120, 48, 13824, 40, 8, vocab=152064),
    ModelShape("Qwen2.5-32B", 5120, 64, 27648, 40, 8, vocab=152064),
    ModelShape("Llama-3.1-70B", 8192, 80, 28672, 64, 8),
)


@dataclasses.dataclass(frozen=True)
class Settings:
    seq_len: int = 2048
    micro_batch: int = 4
    prompt_len: int = 512
    response_len: int = 512
    ppo_micro_batch: int = 4
    lora_rank: int = 16
    overhead_gib: float = 2.0
    fragmentation: float = 0.10


def _activations(shape: ModelShape, tokens: int, with_logits: bool = True) -> float:
    """Bytes of activations for `tokens` tokens with gradient checkpointing (see module docstring)."""
    checkpoints = 2 * tokens * shape.hidden * shape.layers
    one_layer = tokens * (18 * shape.hidden + 6 * shape.intermediate)
    logits = 10 * tokens * shape.vocab if with_logits else 2 * tokens  # a value head outputs 1 per token
    return checkpoints + one_layer + logits


def _model_states(shape: ModelShape, method: str, trained: bool, settings: Settings) -> float:
    """Bytes of one model's weights, gradients and optimizer states."""
    if method == "full":
        return shape.params() * (FULL_BYTES_PER_PARAM if trained else 2.0)
    lora = shape.lora_params(settings.lora_rank) * FULL_BYTES_PER_PARAM if trained else 0.0
    if method == "lora":
        return shape.params() * 2.0 + lora
    return shape.linear_params() * NF4_BYTES_PER_PARAM + shape.other_params() * 2.0 + lora


def estimate(stage: str, method: str, shape: ModelShape, settings: Settings = Settings()) -> dict[str, float]:
    """GiB per component and in total for `stage` trained with `method` on one GPU."""
    if stage not in STAGES or method not in METHODS:
        raise ValueError(f"stage must be one of {STAGES} and method one of {METHODS}")
    parts: dict[str, float] = {}
    if stage in ("sft", "reward"):
        sequences = settings.micro_batch * (2 if stage == "reward" else 1)  # a pair = 2 sequences
        parts["model_states"] = _model_states(shape, method, True, settings)
        parts["activations"] = _activations(shape, sequences * settings.seq_len, with_logits=stage == "sft")
    else:
        policy = _model_states(shape, method, True, settings)
        reference = 0.0 if method != "full" else _model_states(shape, "full", False, settings)
        frozen_method = "qlora" if method == "qlora" else "full"
        reward = _model_states(shape, frozen_method, False, settings)
        if method in ("full", "lora"):  # TRL wraps only the policy in LoRA: the value model trains fully
            value = _model_states(shape, "full", True, settings)
        else:  # 4-bit value model: only embeddings, norms and the head train
            value = shape.linear_params() * NF4_BYTES_PER_PARAM + shape.other_params() * FULL_BYTES_PER_PARAM
        parts.update(policy=policy, reference=reference, reward=reward, value=value)
        tokens = settings.ppo_micro_batch * (settings.prompt_len + settings.response_len)
        kv = 2 * shape.layers * shape.kv_heads * shape.head_dim * 2 * tokens
        parts["kv_cache"] = kv
        parts["activations"] = _activations(shape, tokens) + _activations(shape, tokens, with_logits=False)
    subtotal = sum(parts.values())
    parts["overhead"] = settings.overhead_gib * GiB + settings.fragmentation * subtotal
    out = {k: v / GiB for k, v in parts.items()}
    out["total"] = sum(out.values())
    return out


def largest_fitting(
    stage: str, method: str, gpu_gib: float, settings: Settings = Settings()
) -> ModelShape | None:
    """The widest `llama_like` model whose estimate fits in `gpu_gib` (bisection on the width)."""
    low, high = 512, 32768
    if estimate(stage, method, llama_like(low), settings)["total"] > gpu_gib:
        return None
    while high - low > 128:
        mid = (low + high) // 2
        if estimate(stage, method, llama_like(mid), settings)["total"] <= gpu_gib:
            low = mid
        else:
            high = mid
    return llama_like(low)


def report(gpu_gib: float, settings: Settings = Settings()) -> dict:
    result: dict = {"gpu_gib": gpu_gib, "settings": dataclasses.asdict(settings), "stages": {}}
    for stage in STAGES:
        for method in METHODS:
            known = {s.name: round(estimate(stage, method, s, settings)["total"], 1) for s in KNOWN_SHAPES}
            fits = [s for s in KNOWN_SHAPES if known[s.name] <= gpu_gib]
            best = largest_fitting(stage, method, gpu_gib, settings)
            result["stages"][f"{stage}/{method}"] = {
                "total_gib_by_model": known,
                "largest_known_that_fits": fits[-1].name if fits else None,
                "largest_llama_like_params_b": round(best.params() / 1e9, 1) if best else 0.0,
            }
    return result


def _markdown(result: dict) -> str:
    names = [s.name for s in KNOWN_SHAPES]
    sizes = [f"{s.params() / 1e9:.1f}B" for s in KNOWN_SHAPES]
    lines = [
        f"Estimated GiB per GPU (one process, no sharding); fits on {result['gpu_gib']:g} GiB if total <= it.",
        "",
        "| stage / method | "
        + " | ".join(f"{n} ({p})" for n, p in zip(names, sizes, strict=True))
        + " | largest listed that fits | largest Llama-like that fits |",
        "|---|" + "---:|" * (len(names) + 2),
    ]
    for key, row in result["stages"].items():
        cells = " | ".join(f"{row['total_gib_by_model'][n]:.0f}" for n in names)
        lines.append(f"| {key} | {cells} | {row['largest_known_that_fits'] or '-'} | "
                     f"~{row['largest_llama_like_params_b']}B |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--gpu-gb", type=float, default=80.0, help="GPU memory (an '80 GB' H100/A100 has 79.6 GiB)"
    )
    parser.add_argument("--seq-len", type=int, default=Settings.seq_len)
    parser.add_argument("--micro-batch", type=int, default=Settings.micro_batch)
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers to this file")
    args = parser.parse_args(argv)
    gpu_gib = args.gpu_gb * 1e9 / GiB
    result = report(gpu_gib, Settings(seq_len=args.seq_len, micro_batch=args.micro_batch))
    print(_markdown(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
