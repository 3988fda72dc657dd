"""Helpers shared by `test_distributed.py` and `test_quantization.py` (not a test module).

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

__all__ = ["REPO", "build_tiny_checkpoint", "launch", "recipe_env"]


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
