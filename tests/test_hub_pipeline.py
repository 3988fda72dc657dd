"""A toy InstructGPT run pushed to, and restarted from, the local Hub server with the real clients.

The first run (`recipes/ci/*.yaml` at toy scale: a couple of steps per stage) pushes every stage, through
both routes a user has: `instructgpt push` after the stage (pretrain, ppo) and `push_to_hub: true` +
`hub_model_id` in the recipe (sft, as a subprocess with `HF_TOKEN` in its environment; reward, in this
process). A second run then trains a reward model from the pushed SFT repo id at its commit, with an empty
Hugging Face cache, offline after `instructgpt pull`, and with the first run's folders moved away.

Loading a pushed PicoGPT with `trust_remote_code=True` where `pipelines` cannot be imported is
`tests/test_hub.py::test_picogpt_loads_from_the_hub_without_pipelines`; here we check that what the recipes
push carries the code files and the `auto_map` that test relies on.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipelines.cli import main as cli_main

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
CI = REPO / "recipes" / "ci"
STAGES = ("pretrain", "sft", "reward", "ppo")
HUB_IDS = {stage: f"tester/ci-{stage}" for stage in STAGES}
STAGE_TAGS = {"pretrain": "pretraining", "sft": "sft", "reward": "reward-model", "ppo": "ppo"}
# Toy sizes on top of the ci YAMLs; the final evaluation runs on 8 rows.
FAST = {
    "pretrain": ["--max_steps", "2", "--max_eval_samples", "8", "--tokenizer_train_samples", "300"],
    "sft": ["--max_steps", "2", "--max_eval_samples", "8"],
    "reward": ["--max_steps", "2", "--max_eval_samples", "16"],
    "ppo": ["--total_episodes", "16"],
}
CODE_FILES = {"configuration_picogpt.py", "modeling_picogpt.py"}


# ----------------------------------------------------------------------------------------- helpers
def run_recipe(name: str, *argv: str) -> None:
    """`python recipes/<name>.py --config recipes/ci/<name>.yaml ARGV`, in this process."""
    from pipelines.configs import parse_recipe_args, recipe_dataclasses

    spec = importlib.util.spec_from_file_location(
        f"hub_pipeline_recipe_{name}", REPO / "recipes" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(*parse_recipe_args(recipe_dataclasses(name), ["--config", str(CI / f"{name}.yaml"), *argv]))


def recipe_command(name: str, *argv: str) -> list[str]:
    return [sys.executable, str(REPO / "recipes" / f"{name}.py"), "--config", str(CI / f"{name}.yaml"), *argv]


def client_env(server, hf_home: Path, *, token: str | None, offline: bool = False) -> dict[str, str]:
    """The environment of a user's shell pointed at `server`, with its own (empty) Hugging Face home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(
        HF_ENDPOINT=server.endpoint, HF_HUB_DISABLE_XET="1", HF_HOME=str(hf_home), HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_OFFLINE="1" if offline else "0", TRL_EXPERIMENTAL_SILENCE="1", TOKENIZERS_PARALLELISM="false",
    )  # fmt: skip
    if token is not None:
        env["HF_TOKEN"] = token
    return env


def run_process(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


def stage_info(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "stage_info.json").read_text())


def files_containing(folder: Path, secret: str) -> list[str]:
    """Every file under `folder` (text or binary) whose bytes contain `secret`."""
    needle = secret.encode()
    return [str(p) for p in Path(folder).rglob("*") if p.is_file() and needle in p.read_bytes()]


@dataclass
class ToyRun:
    root: Path  # root/<stage> are the stage folders
    shas: dict[str, str]  # stage -> the commit its push made
    sft_logs: str  # stdout + stderr of the sft recipe, run as a subprocess with push enabled


@pytest.fixture(scope="module")
def toy_run(hub_server, tmp_path_factory) -> ToyRun:
    """pretrain -> sft -> reward -> ppo, each stage pushed as soon as it is done."""
    from pipelines.testing import hub_client_env

    root = tmp_path_factory.mktemp("toy-run")
    shas: dict[str, str] = {}
    with hub_client_env(hub_server, token=hub_server.token):
        run_recipe("pretrain", "--output_dir", str(root / "pretrain"), *FAST["pretrain"])
        # route 1: `instructgpt push` of a finished stage folder
        assert cli_main(["push", str(root / "pretrain"), HUB_IDS["pretrain"]]) == 0

        # route 2: `push_to_hub` in the recipe, run the way a user runs it (token in the environment only)
        sft = run_process(
            recipe_command(
                "sft", "--output_dir", str(root / "sft"), "--model_name_or_path", str(root / "pretrain"),
                *FAST["sft"], "--push_to_hub", "true", "--hub_model_id", HUB_IDS["sft"], "--log_level", "info",
            ),
            client_env(hub_server, tmp_path_factory.mktemp("sft-hf-home"), token=hub_server.token),
            cwd=tmp_path_factory.mktemp("sft-cwd"),
        )  # fmt: skip
        run_recipe(
            "reward", "--output_dir", str(root / "reward"), "--model_name_or_path", str(root / "sft"),
            *FAST["reward"], "--push_to_hub", "true", "--hub_model_id", HUB_IDS["reward"],
        )  # fmt: skip
        run_recipe(
            "ppo", "--output_dir", str(root / "ppo"), "--model_name_or_path", str(root / "sft"),
            "--reward_model_path", str(root / "reward"), *FAST["ppo"],
        )  # fmt: skip
        assert cli_main(["push", str(root / "ppo"), HUB_IDS["ppo"]]) == 0
    for stage in STAGES:
        shas[stage] = stage_info(root / stage)["hub"]["revision"]
    return ToyRun(root=root, shas=shas, sft_logs=sft.stdout + sft.stderr)


# ----------------------------------------------------------------------------------------- first run
def test_every_stage_is_pushed_with_its_card_code_and_no_junk(toy_run, hub, tmp_path):
    from huggingface_hub import HfApi, ModelCard

    api = HfApi()
    for stage in STAGES:
        repo_id, folder = HUB_IDS[stage], toy_run.root / stage
        # the local stage_info records the commit the push made, and it is the head of main
        assert stage_info(folder)["hub"] == {
            "repo_id": repo_id,
            "revision": toy_run.shas[stage],
            "branch": "main",
        }
        assert api.model_info(repo_id).sha == toy_run.shas[stage]
        assert api.list_repo_commits(repo_id)[0].title == f"Upload {stage} stage"

        pulled = Path(
            api.snapshot_download(repo_id, revision=toy_run.shas[stage], local_dir=tmp_path / stage)
        )
        files = {p.relative_to(pulled).as_posix() for p in pulled.rglob("*") if p.is_file()}
        files = {f for f in files if not f.startswith(".cache/")}
        assert {"config.json", "model.safetensors", "tokenizer.json", "README.md", "stage_info.json"} <= files
        assert files >= CODE_FILES, stage
        assert not any(f.startswith("checkpoint-") or f == "training_args.bin" for f in files), files
        # the weights are exactly the stage's
        assert (pulled / "model.safetensors").read_bytes() == (folder / "model.safetensors").read_bytes()
        # trust_remote_code can build the stage's model class from the shipped code
        auto_map = json.loads((pulled / "config.json").read_text())["auto_map"]
        wanted = "AutoModelForSequenceClassification" if stage == "reward" else "AutoModelForCausalLM"
        assert auto_map[wanted].split(".")[0] + ".py" in files

        card = ModelCard.load(repo_id)
        assert {"instructgpt-pipelines", STAGE_TAGS[stage]} <= set(card.data.tags)
        assert card.data.pipeline_tag == ("text-classification" if stage == "reward" else "text-generation")
        assert f"recipes/{stage}.py" in card.text and "trust_remote_code=True" in card.text
        pushed_info = json.loads((pulled / "stage_info.json").read_text())
        assert pushed_info["hub"]["repo_id"] == repo_id and pushed_info["complete"] is True


def test_first_run_lineage_names_the_local_folder_and_the_commit_it_was_pushed_as(toy_run):
    """Stages chained through local folders say so (a folder is not a Hub repo at revision `main`), and
    name the repo and commit that folder was pushed as before the stage started."""
    from huggingface_hub import ModelCard

    for stage, parent in (("sft", "pretrain"), ("reward", "sft"), ("ppo", "sft")):
        card = ModelCard.load(toy_run.root / stage / "README.md")
        started = next(line for line in card.text.splitlines() if line.startswith("- Started from:"))
        assert started == (
            f"- Started from: the local folder `{toy_run.root / parent}`, "
            f"pushed as `{HUB_IDS[parent]}` at revision `{toy_run.shas[parent]}`"
        )
        assert card.data.base_model == HUB_IDS[parent]


def test_tokens_never_reach_logs_cards_or_saved_configs(toy_run, hub, tmp_path):
    """The sft stage pushed with HF_TOKEN set: the token is in no log line, no local file, no pushed file."""
    from huggingface_hub import HfApi

    token = hub.token
    assert token.startswith("hf_") and len(token) > 20
    # the push did happen, with that token, and the captured logs are the whole run's (training and upload)
    assert HfApi().model_info(HUB_IDS["sft"]).sha == toy_run.shas["sft"]
    assert "train_loss" in toy_run.sft_logs and "model.safetensors" in toy_run.sft_logs
    assert token not in toy_run.sft_logs
    assert files_containing(toy_run.root, token) == []
    for stage in STAGES:
        pulled = HfApi().snapshot_download(HUB_IDS[stage], local_dir=tmp_path / stage)
        assert files_containing(Path(pulled), token) == [], stage
    # the saved config is the stage's (pushed where), and holds no token value
    config = stage_info(toy_run.root / "sft")["config"]
    assert config["hub_model_id"] == HUB_IDS["sft"] and config["hub_token"] in (None, "<redacted>")
    assert config["push_to_hub"] is True  # as the user asked, though the trainer itself was told not to push
    assert (
        stage_info(toy_run.root / "pretrain")["config"]["push_to_hub"] is False
    )  # pushed later, by `instructgpt push`


# ----------------------------------------------------------------------------------------- second run
def test_second_run_starts_its_reward_stage_from_the_pulled_sft_repo(toy_run, hub_server, tmp_path):
    """Fresh HF home, the first run's folders moved away: pull the SFT repo at its commit, then train the
    reward model from `tester/ci-sft@<sha>` offline; its card names exactly that repo and revision."""
    from safetensors.torch import load_file

    sha, repo_id = toy_run.shas["sft"], HUB_IDS["sft"]
    hf_home, cwd = tmp_path / "fresh-hf-home", tmp_path / "cwd"
    cwd.mkdir()
    moved = tmp_path / "first-run-moved-away"
    shutil.move(toy_run.root, moved)
    try:
        pulled = run_process(
            [sys.executable, "-m", "pipelines.cli", "pull", repo_id, "--revision", sha],
            client_env(hub_server, hf_home, token=hub_server.token),
            cwd=cwd,
        )
        snapshot = Path(pulled.stdout.strip().splitlines()[-1])
        assert snapshot.is_relative_to(hf_home) and snapshot.name == sha
        out = tmp_path / "run2" / "reward"
        run_process(
            recipe_command(
                "reward", "--output_dir", str(out), "--model_name_or_path", repo_id, "--model_revision", sha,
                *FAST["reward"],
            ),
            client_env(hub_server, hf_home, token=None, offline=True),
            cwd=cwd,
        )  # fmt: skip
    finally:
        shutil.move(moved, toy_run.root)

    info = stage_info(out)
    assert info["complete"] is True and info["base_model"] == {"name_or_path": repo_id, "revision": sha}
    card = (out / "README.md").read_text()
    assert f"base_model: {repo_id}" in card
    assert f"- Started from: `{repo_id}` at revision `{sha}`" in card
    # it really started from the pulled SFT weights (a couple of warm-up steps move them very little)
    sft_weights = load_file(snapshot / "model.safetensors")["model.embed_tokens.weight"]
    reward_weights = load_file(out / "model.safetensors")["model.embed_tokens.weight"]
    assert reward_weights.shape == sft_weights.shape
    assert (reward_weights - sft_weights).abs().max() < 1e-2


# ----------------------------------------------------------------------------------------- LoRA
def test_lora_sft_pushes_the_adapter_by_default_and_the_merged_model_with_merge_adapter(
    toy_run, hub, tmp_path
):
    """LoRA SFT on the pushed pretrain repo (pinned); a later commit on that repo's main must not change
    what the adapter is merged into."""
    import torch
    from huggingface_hub import HfApi, ModelCard
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from pipelines.hub import push_stage

    api = HfApi()
    base_repo = "tester/ci-lora-base"
    # copies: a push records its commit in the folder's stage_info.json
    pretrain, sft = (shutil.copytree(toy_run.root / s, tmp_path / f"{s}-copy") for s in ("pretrain", "sft"))
    base_sha = push_stage(pretrain, base_repo)
    out = tmp_path / "sft-lora"
    run_recipe(
        "sft", "--output_dir", str(out), "--model_name_or_path", base_repo, "--model_revision", base_sha,
        *FAST["sft"], "--use_peft", "true", "--lora_r", "4", "--lora_alpha", "8", "--learning_rate", "0.02",
        "--warmup_steps", "0", "--push_to_hub", "true", "--hub_model_id", "tester/ci-sft-lora",
    )  # fmt: skip
    # the base repo moves on after the adapter was trained
    push_stage(sft, base_repo, overwrite=True)
    assert api.model_info(base_repo).sha != base_sha

    # default: the adapter, with a card that says how to load it on its base
    files = set(api.list_repo_files("tester/ci-sft-lora"))
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md", "tokenizer.json"} <= files
    assert "model.safetensors" not in files
    card = ModelCard.load("tester/ci-sft-lora")
    assert card.data.library_name == "peft" and {"peft", "lora", "sft"} <= set(card.data.tags)
    assert card.data.base_model == base_repo and f"`{base_repo}` at revision `{base_sha}`" in card.text
    assert f'from_pretrained("{base_repo}", revision="{base_sha}", trust_remote_code=True)' in card.text

    # --merge-adapter: one standalone model, with its code, no adapter files
    assert cli_main(["push", str(out), "tester/ci-sft-lora-merged", "--merge-adapter"]) == 0
    files = set(api.list_repo_files("tester/ci-sft-lora-merged"))
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md"} | CODE_FILES <= files
    assert not {"adapter_config.json", "adapter_model.safetensors"} & files
    assert ModelCard.load("tester/ci-sft-lora-merged").data.library_name == "transformers"

    ids = torch.tensor([[5, 6, 7, 8, 9]])

    def logits(model) -> torch.Tensor:
        with torch.no_grad():
            return model.eval()(ids).logits

    base = AutoModelForCausalLM.from_pretrained(base_repo, revision=base_sha)
    base_logits = logits(base)
    expected = logits(PeftModel.from_pretrained(base, api.snapshot_download("tester/ci-sft-lora")))
    assert (expected - base_logits).abs().max() > 1e-3  # the adapter learned something
    merged = AutoModelForCausalLM.from_pretrained(api.snapshot_download("tester/ci-sft-lora-merged"))
    assert torch.allclose(logits(merged), expected, atol=1e-4)
