"""Helpers shared by `test_distributed.py`, `test_quantization.py` and `test_gpu.py` (not a test module).

`build_tiny_checkpoint` saves what a pretraining stage leaves, small enough for many launched
runs on 2 CPU cores: a byte-level BPE tokenizer trained on the embedded task's texts (with the
chat template) and a 2-layer PicoGPT. It serves as the SFT start, the policy, and (with a new
`score` head) the reward and value models. `launch` runs a recipe the way a user does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

__all__ = [
    "QUANT_FLAGS",
    "REPO",
    "REWARD_ARGS",
    "SFT_ARGS",
    "assert_adapter_merges",
    "assert_trained_and_loadable",
    "build_tiny_checkpoint",
    "launch",
    "ppo_args",
    "recipe_env",
]

# Command-line flags on top of recipes/tiny/qlora/*.yaml (4-bit nf4, double quantisation) per quantisation.
QUANT_FLAGS = {"4bit": [], "8bit": ["--load_in_4bit", "false", "--load_in_8bit", "true"]}

# A few steps of each stage on top of recipes/tiny/*.yaml: enough to move every weight, no checkpoints.
SFT_ARGS = ["--max_steps", "4", "--max_train_samples", "64", "--per_device_train_batch_size", "4",
            "--eval_strategy", "no", "--save_strategy", "no", "--logging_steps", "1"]  # fmt: skip
REWARD_ARGS = [*SFT_ARGS, "--max_eval_samples", "16"]


def ppo_args(episodes: int) -> list[str]:
    """PPO flags for `episodes` answers of 8 tokens in batches of 4 per process, one PPO epoch each."""
    return ["--total_episodes", str(episodes), "--per_device_train_batch_size", "4",
            "--local_rollout_forward_batch_size", "4", "--response_length", "8", "--num_ppo_epochs", "1",
            "--save_strategy", "no", "--logging_steps", "1"]  # fmt: skip


def build_tiny_checkpoint(path: Path) -> Path:
    """Tokenizer + 2-layer, 64-wide PicoGPT saved in `path` (about 0.1M parameters)."""
    import torch

    from pipelines import PicoGPTConfig, PicoGPTForCausalLM
    from pipelines.data import get_dataset
    from pipelines.tokenizer import train_tokenizer

    texts = get_dataset("embedded", "pretrain", seed=0)["train"]["text"][:400]
    tokenizer = train_tokenizer(texts, vocab_size=512, min_frequency=1)
    torch.manual_seed(0)
    model = PicoGPTForCausalLM(
        PicoGPTConfig(
            vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=256, pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id,
        )
    )  # fmt: skip
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def recipe_env(**extra: str) -> dict[str, str]:
    """The environment of a launched recipe: offline, one thread per process, nothing else inherited
    that changes the distribution type (ACCELERATE_USE_CPU only where a test sets it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACCELERATE_", "PIPELINES_DEBUG"))}
    env.update(
        HF_HUB_OFFLINE="1", TRL_EXPERIMENTAL_SILENCE="1", TOKENIZERS_PARALLELISM="false",
        OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        WANDB_DISABLED="true",
    )  # fmt: skip
    env.update(extra)
    return env


def launch(
    launcher: list[str], recipe: str, args: list[str], env: dict[str, str], timeout: int = 600
) -> subprocess.CompletedProcess:
    """`accelerate launch <launcher> recipes/<recipe>.py <args>` from the repository root."""
    command = [sys.executable, "-m", "accelerate.commands.launch", *launcher, f"recipes/{recipe}.py", *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def assert_trained_and_loadable(out: Path, start: Path, task: str, policy_eval: bool = True) -> None:
    """Full model saved in `out`: loads with its Auto class; its weights moved away from `start`."""
    import json

    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    info = json.loads((out / "stage_info.json").read_text())
    assert info["complete"] is True
    # recipes/tiny/reward.yaml samples the policy (on the main process, unsharded) for this metric
    if task == "reward" and policy_eval:
        assert 0.0 <= info["metrics"]["eval_policy_accuracy"] <= 1.0
    auto = AutoModelForSequenceClassification if task == "reward" else AutoModelForCausalLM
    model = auto.from_pretrained(out, **({"num_labels": 1} if task == "reward" else {})).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    ids = tokenizer("How many legs does a cat have?", return_tensors="pt")
    with torch.no_grad():
        logits = model(**ids).logits
    assert torch.isfinite(logits).all()
    assert logits.shape[-1] == (1 if task == "reward" else len(tokenizer))
    saved, initial = load_file(out / "model.safetensors"), load_file(start / "model.safetensors")
    shared = [k for k in saved if k in initial]
    assert shared and all(saved[k].shape == initial[k].shape and saved[k].numel() for k in shared), (
        "empty/partial save"
    )
    assert any(not torch.equal(saved[k].float(), initial[k].float()) for k in shared), (
        "saved weights are the start"
    )


def assert_adapter_merges(adapter_dir: Path, base_dir: Path, task: str, tmp_path: Path) -> None:
    """LoRA adapter in `adapter_dir`: trained (a non-zero B), merges into the unquantised base, and the
    merged model saves and loads with its Auto class with the adapter's outputs."""
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    adapter = load_file(adapter_dir / "adapter_model.safetensors")
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in adapter.items()), (
        "LoRA B is still zero: no training"
    )
    if task == "reward":
        assert any("score" in k for k in adapter), "the reward head is not saved with the adapter (task_type)"
        auto, kwargs = AutoModelForSequenceClassification, {"num_labels": 1}
    else:
        auto, kwargs = AutoModelForCausalLM, {}
    tokenizer = AutoTokenizer.from_pretrained(adapter_dir)
    ids = tokenizer("Name three fruits.", return_tensors="pt")
    peft_model = PeftModel.from_pretrained(auto.from_pretrained(base_dir, **kwargs), adapter_dir).eval()
    with torch.no_grad():
        expected = peft_model(**ids).logits
    merged = peft_model.merge_and_unload()
    merged.save_pretrained(tmp_path / "merged")
    tokenizer.save_pretrained(tmp_path / "merged")
    reloaded = auto.from_pretrained(tmp_path / "merged", **kwargs).eval()
    assert type(reloaded).__name__.startswith("PicoGPTFor")
    with torch.no_grad():
        got = reloaded(**ids).logits
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    base = auto.from_pretrained(base_dir, **kwargs).eval()
    with torch.no_grad():
        assert not torch.allclose(base(**ids).logits, got), "the merged model is the base model"
