"""The GPU paths on a CUDA device: bf16, SDPA's flash kernel, flex attention, bitsandbytes' CUDA
kernels (QLoRA 4-bit and 8-bit), and the recipes on one GPU in bf16, under FSDP2 and under
DeepSpeed ZeRO-2/3.

Skipped where there is no CUDA device (CI has none). On a GPU machine, from the repository root:

    python -m pytest tests/test_gpu.py -q -n 8      # -n needs pytest-xdist; plain runs work too

The model tests compare the GPU paths with the float32 eager reference on the same weights. The
recipe tests launch each recipe as a user does (`accelerate launch --config_file
accelerate_configs/<file>.yaml`), with `PIPELINES_DEBUG_RANK_DIR` set, and assert from what the
process recorded that it ran on the GPU with the intended precision and distribution type, then
that its output loads with the Auto classes and differs from its start.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import torch
from conftest import make_tiny_config
from scaling_fixtures import (
    QUANT_FLAGS,
    REWARD_ARGS,
    SFT_ARGS,
    assert_adapter_merges,
    assert_trained_and_loadable,
    build_tiny_checkpoint,
    launch,
    ppo_args,
    recipe_env,
)

import pipelines  # noqa: F401  (registers PicoGPT with the Auto classes)
from pipelines import PicoGPTForCausalLM, PicoGPTForSequenceClassification

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none visible to torch)"),
]

CUDA = "cuda"
# Head size 32 (128 wide, 4 heads): flex attention's Triton kernels need a head size of at least 16.
WIDE = {"hidden_size": 128, "num_attention_heads": 4}
TEXTS = ["the quick fox", "the slow red cat jumps over 3 lazy hens and counts to 12"]


def _model(tokenizer, dtype: torch.dtype, attn: str = "sdpa", cls=PicoGPTForCausalLM):
    torch.manual_seed(0)
    model = cls(make_tiny_config(tokenizer, num_labels=1, **WIDE)).eval()
    model.config._attn_implementation = attn
    return model.to(CUDA, dtype)


def _batch(tokenizer, side: str = "left") -> dict[str, torch.Tensor]:
    tokenizer.padding_side = side
    try:
        batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    finally:
        tokenizer.padding_side = "right"
    return {k: v.to(CUDA) for k, v in batch.items()}


# ------------------------------------------------------------------------------------ the model


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("attn", ["sdpa", "flex_attention"])
@pytest.mark.parametrize("cls", [PicoGPTForCausalLM, PicoGPTForSequenceClassification])
def test_attention_kernels_match_fp32_eager_on_padded_batch(tiny_tokenizer, cls, attn, dtype):
    batch = _batch(tiny_tokenizer, "left")
    with torch.no_grad():
        reference = _model(tiny_tokenizer, torch.float32, "eager", cls)(**batch).logits
        got = _model(tiny_tokenizer, dtype, attn, cls)(**batch).logits.float()
    if cls is PicoGPTForCausalLM:  # compare the real tokens only; pad positions are never read
        real = batch["attention_mask"].bool()
        reference, got = reference[real], got[real]
    # bf16 keeps 8 bits of mantissa: ~0.4% relative error per rounding, a few roundings deep.
    tol = {"atol": 1e-4, "rtol": 1e-4} if dtype == torch.float32 else {"atol": 3e-2, "rtol": 3e-2}
    torch.testing.assert_close(got, reference, **tol)


def test_unpadded_bf16_batch_runs_on_the_flash_kernel(tiny_tokenizer):
    """Without padding the model hands SDPA no mask (`is_causal`), so the flash kernel can run it.

    Forcing SDPBackend.FLASH_ATTENTION raises if a dense mask reaches SDPA; the loss and the
    gradients must match the math backend's.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel

    ids = torch.randint(5, len(tiny_tokenizer), (4, 96), generator=torch.Generator().manual_seed(0)).to(CUDA)
    results = []
    for backend in (SDPBackend.FLASH_ATTENTION, SDPBackend.MATH):
        model = _model(tiny_tokenizer, torch.bfloat16).train()
        with sdpa_kernel(backend):
            loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=ids).loss
            loss.backward()
        grad = model.model.layers[0].self_attn.q_proj.weight.grad.float()
        results.append((loss.float(), grad))
    (flash_loss, flash_grad), (math_loss, math_grad) = results
    torch.testing.assert_close(flash_loss, math_loss, atol=2e-2, rtol=2e-2)
    assert torch.nn.functional.cosine_similarity(flash_grad.flatten(), math_grad.flatten(), dim=0) > 0.99


def test_cuda_generation_same_with_and_without_cache_and_with_left_padding(tiny_tokenizer):
    """float32 on the GPU: greedy tokens are identical with the KV cache, without it, and for a
    left-padded row generated beside a longer one."""
    model = _model(tiny_tokenizer, torch.float32)
    kwargs = dict(max_new_tokens=16, do_sample=False, pad_token_id=tiny_tokenizer.pad_token_id)
    batch = _batch(tiny_tokenizer, "left")
    cached = model.generate(**batch, use_cache=True, **kwargs)
    uncached = model.generate(**batch, use_cache=False, **kwargs)
    assert torch.equal(cached, uncached)
    alone = tiny_tokenizer(TEXTS[0], return_tensors="pt").to(CUDA)
    single = model.generate(**alone, **kwargs)
    assert torch.equal(cached[0, -16:], single[0, -16:])


def test_bf16_cached_decoding_matches_full_forward(tiny_tokenizer):
    model = _model(tiny_tokenizer, torch.bfloat16)
    ids = torch.tensor([tiny_tokenizer(TEXTS[1]).input_ids], device=CUDA)
    with torch.no_grad():
        full = model(ids, use_cache=False).logits.float()
        first = model(ids[:, :-4], use_cache=True)
        step = model(ids[:, -4:], past_key_values=first.past_key_values, use_cache=True).logits.float()
    torch.testing.assert_close(step, full[:, -4:], atol=3e-2, rtol=3e-2)


@pytest.mark.parametrize("quant", ["4bit", "8bit"])
def test_quantized_lora_on_cuda_uses_bitsandbytes_layers_and_learns(quant, tiny_ckpt):
    """`get_model` with a 4-bit (nf4, double quantisation) or 8-bit config puts bitsandbytes layers
    on the GPU; LoRA on top of them gets gradients after an eval-mode forward, and a few AdamW
    steps lower the loss on a fixed batch."""
    import bitsandbytes as bnb
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from trl import ModelConfig

    from pipelines.loading import get_model

    flags = (
        {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "use_bnb_nested_quant": True}
        if quant == "4bit"
        else {"load_in_8bit": True}
    )
    base = get_model(str(tiny_ckpt), ModelConfig(dtype="bfloat16", **flags))
    layer_type = bnb.nn.Linear4bit if quant == "4bit" else bnb.nn.Linear8bitLt
    quantized = [m for m in base.modules() if isinstance(m, layer_type)]
    assert len(quantized) == 2 * 6, (
        f"{len(quantized)} {layer_type.__name__} layers (2 blocks x q,k,v,o,fc,proj)"
    )
    assert all(m.weight.device.type == CUDA for m in quantized)
    assert all(m.weight.dtype in (torch.uint8, torch.int8) for m in quantized)
    model = prepare_model_for_kbit_training(base, use_gradient_checkpointing=False)
    model = get_peft_model(
        model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", lora_dropout=0.0)
    )
    ids = torch.randint(5, 200, (4, 32), generator=torch.Generator().manual_seed(0)).to(CUDA)
    model.eval()
    with torch.no_grad():
        model(input_ids=ids)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(8):
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        if not losses:
            b_grads = [p.grad for n, p in model.named_parameters() if "lora_B" in n]
            assert b_grads and all(g is not None and g.abs().sum() > 0 for g in b_grads)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1, losses


# ---------------------------------------------------------------------------------- the recipes

# No comparisons sampled from the policy: a random-init policy's samples can all score the same
# under the judge, and the reward recipe refuses to run without a single comparison.
STAGE_ARGS = {
    "sft": SFT_ARGS,
    "reward": [*REWARD_ARGS, "--policy_comparison_prompts", "0"],
    "ppo": ppo_args(16),
}
STEPS = {"sft": 4, "reward": 4, "ppo": 16 // 4}


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny-base"))


def _free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def _run_stage(launcher: list[str], stage: str, ckpt: Path, out: Path, ranks: Path, *extra: str, yaml=None):
    args = ["--config", yaml or f"recipes/tiny/{stage}.yaml", "--output_dir", str(out), "--model_name_or_path",
            str(ckpt), *(["--reward_model_path", str(ckpt)] if stage == "ppo" else []), *STAGE_ARGS[stage],
            "--bf16", "true", *extra]  # fmt: skip
    env = recipe_env(PIPELINES_DEBUG_RANK_DIR=str(ranks), OMP_NUM_THREADS="2")
    result = launch([*launcher, "--main_process_port", _free_port()], stage, args, env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + "\n" + result.stderr[-6000:]
    (record,) = [json.loads(p.read_text()) for p in ranks.glob("rank*.json")]
    assert record["device"].startswith("cuda"), record
    assert record["global_step"] == STEPS[stage], record
    assert record["params_after"] != record["params_before"], "training did not change the parameters"
    return record


@pytest.mark.parametrize("stage", ["sft", "reward", "ppo"])
def test_recipe_trains_in_bf16_on_one_gpu(stage, tiny_ckpt, tmp_path):
    out = tmp_path / stage
    record = _run_stage(["--config_file", "accelerate_configs/single_gpu.yaml"], stage, tiny_ckpt, out,
                        tmp_path / "ranks")  # fmt: skip
    assert record["mixed_precision"] == "bf16" and record["distributed_type"] == "DistributedType.NO", record
    assert_trained_and_loadable(
        out, tiny_ckpt, "reward" if stage == "reward" else "causal", policy_eval=False
    )


@pytest.mark.parametrize("quant", ["4bit", "8bit"])
@pytest.mark.parametrize("stage", ["sft", "reward", "ppo"])
def test_quantized_lora_recipe_on_one_gpu_trains_and_merges(stage, quant, tiny_ckpt, tmp_path):
    out = tmp_path / stage
    _run_stage(["--config_file", "accelerate_configs/single_gpu.yaml"], stage, tiny_ckpt, out, tmp_path / "ranks",
               "--dtype", "bfloat16", "--learning_rate", "1e-2", *QUANT_FLAGS[quant],
               yaml=f"recipes/tiny/qlora/{stage}.yaml")  # fmt: skip
    assert (out / "adapter_config.json").is_file() and not (out / "model.safetensors").exists()
    assert_adapter_merges(out, tiny_ckpt, "reward" if stage == "reward" else "causal", tmp_path)


@pytest.mark.parametrize("zero_stage", [2, 3])
@pytest.mark.parametrize("stage", ["sft", "reward", "ppo"])
def test_deepspeed_zero_on_one_gpu(stage, zero_stage, tiny_ckpt, tmp_path):
    """ZeRO-2/3 with bf16 on one GPU, PPO included (ZeRO-3 gathers the policy for generation)."""
    pytest.importorskip("deepspeed")
    out = tmp_path / stage
    launcher = [
        "--config_file",
        f"accelerate_configs/deepspeed_zero{zero_stage}.yaml",
        "--num_processes",
        "1",
    ]
    record = _run_stage(launcher, stage, tiny_ckpt, out, tmp_path / "ranks")
    assert record["distributed_type"] == "DistributedType.DEEPSPEED" and record["zero_stage"] == zero_stage
    assert_trained_and_loadable(
        out, tiny_ckpt, "reward" if stage == "reward" else "causal", policy_eval=False
    )


@pytest.mark.parametrize("stage", ["sft", "reward"])
def test_fsdp2_on_one_gpu(stage, tiny_ckpt, tmp_path):
    out = tmp_path / stage
    launcher = ["--config_file", "accelerate_configs/fsdp.yaml", "--num_processes", "1"]
    record = _run_stage(launcher, stage, tiny_ckpt, out, tmp_path / "ranks")
    assert record["distributed_type"] == "DistributedType.FSDP", record
    assert_trained_and_loadable(
        out, tiny_ckpt, "reward" if stage == "reward" else "causal", policy_eval=False
    )
