"""QLoRA (4-bit nf4, double quantisation) and 8-bit LoRA for SFT, reward and PPO, on the CPU.

Each recipe runs as a user runs it (`accelerate launch`, `recipes/tiny/qlora/*.yaml`, 8-bit by
`--load_in_4bit false --load_in_8bit true`). The test then checks that the adapter was trained
(LoRA B matrices start at zero: a non-zero B had gradients), that it merges with
`merge_and_unload` into the unquantised base, and that the merged model saves and loads with
`AutoModelForCausalLM` / `AutoModelForSequenceClassification` with the same outputs as the
adapter on top of its base.

Also here: the AVX512-BF16 trap. On such CPUs bitsandbytes repacks a 4-bit weight for
inference on an eval-mode forward and training afterwards gets no gradients through it;
`pipelines.loading.get_model` turns that repacking off. On other CPUs that test passes trivially.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from scaling_fixtures import (
    QUANT_FLAGS,
    assert_adapter_merges,
    build_tiny_checkpoint,
    launch,
    recipe_env,
)

import pipelines  # noqa: F401  (registers PicoGPT with the Auto classes)


def _bnb_cpu_reason() -> str | None:
    """None when bitsandbytes can quantise and run a layer on the CPU, else why not."""
    try:
        import bitsandbytes.functional as F

        weight = torch.randn(64, 64)
        packed, state = F.quantize_4bit(weight, quant_type="nf4", compress_statistics=True)
        assert (F.dequantize_4bit(packed, state) - weight).abs().mean() < 0.2
        F.int8_vectorwise_quant(weight.half())
    except Exception as err:  # noqa: BLE001 - any failure means: this build cannot do it on CPU
        return f"this bitsandbytes build cannot quantise on the CPU ({type(err).__name__}: {err})"
    return None


_REASON = _bnb_cpu_reason()
pytestmark = pytest.mark.skipif(_REASON is not None, reason=_REASON or "")

TRAIN_ARGS = {
    "sft": ["--max_steps", "4", "--max_train_samples", "64", "--per_device_train_batch_size", "4",
            "--eval_strategy", "no", "--save_strategy", "no", "--learning_rate", "1e-2"],
    "reward": ["--max_steps", "4", "--max_train_samples", "64", "--max_eval_samples", "16",
               "--per_device_train_batch_size", "4", "--save_strategy", "no", "--learning_rate", "1e-2"],
    "ppo": ["--total_episodes", "12", "--per_device_train_batch_size", "4", "--local_rollout_forward_batch_size", "4",
            "--response_length", "6", "--num_ppo_epochs", "1", "--save_strategy", "no", "--learning_rate", "1e-2"],
}  # fmt: skip


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny-base"))


def test_eval_forward_before_training_keeps_4bit_gradients(tiny):
    """An eval-mode forward, then a training step: every LoRA B of a 4-bit model gets a gradient."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from trl import ModelConfig

    from pipelines.loading import get_model

    args = ModelConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", use_bnb_nested_quant=True, dtype="float32"
    )
    model = prepare_model_for_kbit_training(get_model(str(tiny), args), use_gradient_checkpointing=False)
    model = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear", lora_dropout=0.0))
    ids = torch.randint(5, 200, (2, 12), generator=torch.Generator().manual_seed(0))
    model.eval()
    with torch.no_grad():
        model(input_ids=ids)  # evaluation / generation (repacks the weights on AVX512-BF16 CPUs)
    model.train()
    model(input_ids=ids, labels=ids).loss.backward()
    b_grads = {n: p.grad for n, p in model.named_parameters() if "lora_B" in n}
    assert b_grads and all(g is not None and g.abs().sum() > 0 for g in b_grads.values()), [
        n for n, g in b_grads.items() if g is None or g.abs().sum() == 0
    ]


@pytest.mark.multiprocess
# 8-bit runs are in the slow suite (`-m slow`) to keep the default suite's share under ~5 minutes.
@pytest.mark.parametrize("quant", ["4bit", pytest.param("8bit", marks=pytest.mark.slow)])
@pytest.mark.parametrize("stage", ["sft", "reward", "ppo"])
def test_quantized_lora_recipe_trains_and_merges(stage, quant, tiny, tmp_path):
    out = tmp_path / stage
    args = ["--config", f"recipes/tiny/qlora/{stage}.yaml", "--output_dir", str(out), "--model_name_or_path", str(tiny),
            *(["--reward_model_path", str(tiny)] if stage == "ppo" else []), *QUANT_FLAGS[quant], *TRAIN_ARGS[stage]]  # fmt: skip
    result = launch(["--config_file", "accelerate_configs/cpu.yaml"], stage, args, recipe_env())
    assert result.returncode == 0, result.stdout[-3000:] + "\n" + result.stderr[-6000:]
    assert (out / "adapter_config.json").is_file() and not (out / "model.safetensors").exists()
    assert_adapter_merges(out, tiny, "reward" if stage == "reward" else "causal", tmp_path)
