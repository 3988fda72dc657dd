"""Shared fixtures.

Every test runs offline, in its own Hugging Face home, so nothing is read from or written
to the user's cache (dynamic `trust_remote_code` modules included).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

# Set before any Hugging Face library is imported by a test module.
_HF_HOME = tempfile.mkdtemp(prefix="pipelines-test-hf-home-")
os.environ["HF_HOME"] = _HF_HOME
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["TRL_EXPERIMENTAL_SILENCE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
# Tiny models gain nothing from intra-op threads, and the multi-process tests would
# oversubscribe the cores (OpenMP spin-waits make that many times slower).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["WANDB_DISABLED"] = "true"
os.environ.pop("HF_TOKEN", None)

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` beside the project root; tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real-data extracts not found at {SHARED_DATA} (a fresh clone does not have them)")
    return SHARED_DATA


# --- tiny model and tokenizer, shared by the model, recipe and hub tests -------------------

TINY_TEXTS = [
    f"the {a} {b} jumps over {n} lazy {c}s and counts to {n + 3}."
    for n, (a, b, c) in enumerate(
        [
            (a, b, c)
            for a in ("quick", "slow", "red", "big")
            for b in ("fox", "cat", "owl")
            for c in ("dog", "hen")
        ]
        * 20
    )
]


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from pipelines.tokenizer import train_tokenizer

    return train_tokenizer(TINY_TEXTS, vocab_size=320, min_frequency=1)


def make_tiny_config(tokenizer, **overrides):
    from pipelines import PicoGPTConfig

    kwargs = dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
    )
    kwargs.update(overrides)
    return PicoGPTConfig(**kwargs)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    """A saved tiny PicoGPT causal LM with its tokenizer: what a pretraining stage leaves."""
    import torch

    from pipelines import PicoGPTForCausalLM

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-picogpt")
    model = PicoGPTForCausalLM(make_tiny_config(tiny_tokenizer))
    model.save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


def python_block(markdown: str) -> str:
    """The first ```python block of a Markdown text (a README, a model card)."""
    return re.search(r"```python\n(.*?)```", markdown, flags=re.DOTALL).group(1)


def run_as_copied(code: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run usage code as a user who copied it does: a fresh interpreter without `import pipelines`
    (nor this checkout on PYTHONPATH), offline, no terminal to answer a `trust_remote_code` prompt.
    Asserts it exits 0 without asking; returns the finished process (text stdout and stderr)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "Do you wish to run the custom code" not in output
    return run


# A token shaped like a real Hugging Face token, so that redaction by pattern is exercised too.
HUB_TEST_TOKEN = "hf_" + "LocalTestToken0123456789abcdef"


@pytest.fixture(scope="session")
def hub_server(tmp_path_factory):
    """A local Hub-compatible server (`pipelines.testing.HubServer`) for the whole session.

    Tests share it: give each test its own repo names. Its one valid token is `HUB_TEST_TOKEN`.
    """
    from pipelines.testing import HubServer

    with HubServer(
        tmp_path_factory.mktemp("hub-server"), tokens={HUB_TEST_TOKEN: "tester"}, user="tester"
    ) as server:
        yield server


@pytest.fixture
def hub(hub_server):
    """Point this process's Hugging Face clients at `hub_server` (online, no Xet, `HF_TOKEN` set).

    The conftest sets HF_HUB_OFFLINE=1 at import, and huggingface_hub/datasets copy HF_ENDPOINT and
    HF_HUB_OFFLINE into module constants at import: `hub_client_env` patches both and restores them.
    """
    from pipelines.testing import hub_client_env

    with hub_client_env(hub_server, token=HUB_TEST_TOKEN):
        yield hub_server
