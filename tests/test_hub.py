"""Push / pull against the local Hub server (`pipelines.testing.HubServer`) with the real clients.

The `hub` fixture (conftest) points this process's huggingface_hub/datasets at the server; one test also
checks the plain environment-variable route in a fresh process, the way a user would run it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pipelines.hub import (
    REDACTED,
    BranchNotEmptyError,
    HubError,
    pull,
    push_dataset,
    push_stage,
    redact_secrets,
    resolve_source,
)


# ----------------------------------------------------------------------------------------- helpers
def _tiny_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["[PAD]", "[UNK]", "[EOS]", "hello", "world", "the", "cat", "sat", "on", "mat", "a", "dog"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]"
    )


def _tiny_llama(seed: int = 0):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=12, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=32, pad_token_id=0, eos_token_id=2, bos_token_id=2,
    )  # fmt: skip
    return LlamaForCausalLM(config).eval()


def _stage_info(stage: str = "sft", secret: str | None = None, base: str = "outputs/pretrain") -> dict:
    config = {"learning_rate": 1e-3, "push_to_hub": True, "hub_token": secret, "note": f"token is {secret}"}
    return {
        "stage": stage, "recipe": f"recipes/{stage}.py", "config": config,
        "base_model": {"name_or_path": base, "revision": None},
        "datasets": [{"name": "embedded", "kind": stage, "revision": None}],
        "metrics": {"eval_loss": 1.25, "eval_accuracy": 0.75}, "seed": 42,
        "versions": {"transformers": "5.23.0", "trl": "1.12.0"}, "hub": {"repo_id": None, "revision": None},
    }  # fmt: skip


def _make_stage_dir(path: Path, model, tokenizer, *, stage: str = "sft", secret: str | None = None) -> Path:
    """A stage output folder as a recipe leaves it, with the junk a push must leave out."""
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    (path / "stage_info.json").write_text(json.dumps(_stage_info(stage, secret)))
    (path / "config.yaml").write_text(f"learning_rate: 0.001\nhub_token: {secret}\n")
    (path / "checkpoint-10").mkdir()
    (path / "checkpoint-10" / "optimizer.pt").write_bytes(b"\x00opt")
    (path / "checkpoint-10" / "model.safetensors").write_bytes(b"\x00weights")
    (path / "runs" / "Jan01").mkdir(parents=True)
    (path / "runs" / "Jan01" / "events.out.tfevents.1").write_bytes(b"\x00events")
    (path / "optimizer.pt").write_bytes(b"\x00opt")
    (path / "training_args.bin").write_bytes(b"\x00pickled args")
    (path / ".env").write_text(f"HF_TOKEN={secret}\n")
    return path


def _logits(model, ids=((3, 4, 5, 6),)):
    import torch

    with torch.no_grad():
        return model(torch.tensor(ids)).logits


def _all_text(folder: Path) -> str:
    return "\n".join(
        p.read_bytes().decode("utf-8", "replace") for p in Path(folder).rglob("*") if p.is_file()
    )


def _raw(url: str, method: str = "GET", token: str | None = None, headers: dict | None = None):
    """A raw HTTP call to the server: (status, headers, body)."""
    request = urllib.request.Request(url, method=method, headers=dict(headers or {}))
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


# ----------------------------------------------------------------------------------------- server
def test_server_speaks_the_hub_api(hub, tmp_path):
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi()
    assert api.whoami()["name"] == "tester"
    with pytest.raises(HfHubHTTPError) as err:
        HfApi(token="hf_notAValidTokenAtAll000000").whoami()
    assert err.value.response.status_code == 401

    api.create_repo("tester/api-check")
    with pytest.raises(HfHubHTTPError) as err:
        api.create_repo("tester/api-check")
    assert err.value.response.status_code == 409
    api.create_repo("tester/api-check", exist_ok=True)

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "notes.txt").write_text("hello")
    (tmp_path / "weights.safetensors").write_bytes(b"\x00" * 100 + os.urandom(1000))
    (tmp_path / "README.md").write_text("---\nlicense: mit\ntags: [x]\n---\n# card\n")
    first = api.upload_folder(folder_path=tmp_path, repo_id="tester/api-check", commit_message="first")
    info = api.model_info("tester/api-check")
    assert info.sha == first.oid
    assert info.card_data.license == "mit"
    siblings = {s.rfilename: s for s in info.siblings}
    assert set(siblings) == {".gitattributes", "README.md", "sub/notes.txt", "weights.safetensors"}

    # git-like history: a branch keeps its commit while main moves on
    api.create_branch("tester/api-check", branch="frozen")
    (tmp_path / "sub" / "notes.txt").write_text("changed")
    second = api.upload_folder(folder_path=tmp_path, repo_id="tester/api-check", commit_message="second")
    refs = {b.name: b.target_commit for b in api.list_repo_refs("tester/api-check").branches}
    assert refs == {"main": second.oid, "frozen": first.oid}
    api.create_tag("tester/api-check", tag="v1.0", revision="frozen")
    assert [(t.name, t.target_commit) for t in api.list_repo_refs("tester/api-check").tags] == [
        ("v1.0", first.oid)
    ]
    assert api.model_info("tester/api-check", revision="v1.0").sha == first.oid
    assert [c.title for c in api.list_repo_commits("tester/api-check")] == [
        "second",
        "first",
        "initial commit",
    ]
    tree = {f.path: f for f in api.list_repo_tree("tester/api-check", recursive=True, revision="frozen")}
    assert set(tree) == {".gitattributes", "README.md", "sub", "sub/notes.txt", "weights.safetensors"}
    assert tree["weights.safetensors"].lfs is not None and tree["sub/notes.txt"].lfs is None
    paths = api.get_paths_info("tester/api-check", ["sub", "sub/notes.txt", "missing"], expand=True)
    assert [p.path for p in paths] == ["sub", "sub/notes.txt"]
    assert paths[1].last_commit.oid == second.oid

    # resolve: the headers hf_hub_download relies on, ranges, and X-Error-Code on 404
    base = f"{hub.endpoint}/tester/api-check/resolve"
    status, headers, body = _raw(f"{base}/frozen/sub/notes.txt")
    assert (status, body, headers["X-Repo-Commit"]) == (200, b"hello", first.oid)
    status, headers, _ = _raw(f"{base}/main/weights.safetensors", method="HEAD")
    assert (
        headers["X-Linked-Size"] == "1100"
        and headers["X-Linked-Etag"].strip('"') == tree["weights.safetensors"].lfs.sha256
    )
    status, headers, body = _raw(f"{base}/main/sub/notes.txt", headers={"Range": "bytes=1-3"})
    assert (status, body) == (206, b"han")
    assert _raw(f"{base}/main/nope.txt")[1]["X-Error-Code"] == "EntryNotFound"
    assert _raw(f"{base}/nobranch/sub/notes.txt")[1]["X-Error-Code"] == "RevisionNotFound"
    assert _raw(f"{hub.endpoint}/tester/no-repo/resolve/main/x")[1]["X-Error-Code"] == "RepoNotFound"
    assert _raw(f"{base}/main/sub/notes.txt", token="hf_wrongwrongwrongwrongwrong")[0] == 401


def test_private_repo_is_hidden_without_a_token(hub, tmp_path):
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    HfApi().create_repo("tester/secret-model", private=True)
    assert HfApi().model_info("tester/secret-model").private is True
    with pytest.raises(RepositoryNotFoundError):
        HfApi(token=False).model_info("tester/secret-model")


def test_env_var_route_in_a_fresh_process(hub, tmp_path):
    """What a user does: set HF_ENDPOINT / HF_HUB_DISABLE_XET / HF_TOKEN before importing huggingface_hub."""
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from huggingface_hub import HfApi, snapshot_download
        api = HfApi()
        api.create_repo("tester/env-route", exist_ok=True)
        folder = Path(sys.argv[1])
        folder.mkdir()
        (folder / "a.txt").write_text("from a fresh process")
        sha = api.upload_folder(folder_path=folder, repo_id="tester/env-route", commit_message="env").oid
        path = Path(snapshot_download("tester/env-route"))
        assert (path / "a.txt").read_text() == "from a fresh process"
        assert path.name == sha
        print("OK", sha)
        """
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HF_")},
        "HF_ENDPOINT": hub.endpoint, "HF_HUB_DISABLE_XET": "1", "HF_TOKEN": hub.token,
        "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    }  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "upload")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK ")


# ----------------------------------------------------------------------------------------- push/pull
def test_push_pull_roundtrip_excludes_junk_and_secrets(hub, tmp_path, caplog, capfd):
    from huggingface_hub import HfApi, ModelCard
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tokenizer = _tiny_llama(), _tiny_tokenizer()
    out = _make_stage_dir(tmp_path / "sft", model, tokenizer, secret=hub.token)
    with caplog.at_level(logging.DEBUG):
        sha = push_stage(out, "tester/llama-sft")

    api = HfApi()
    assert api.model_info("tester/llama-sft").sha == sha
    files = set(api.list_repo_files("tester/llama-sft"))
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "README.md",
    } <= files
    assert {"stage_info.json", "config.yaml", "generation_config.json"} <= files
    assert not any(f.startswith(("checkpoint-", "runs/")) for f in files)
    assert not files & {"optimizer.pt", "training_args.bin", ".env"}
    # the local stage_info records the pushed commit, for the lineage of later stages
    assert json.loads((out / "stage_info.json").read_text())["hub"] == {
        "repo_id": "tester/llama-sft", "revision": sha, "branch": "main"
    }  # fmt: skip

    path = pull("tester/llama-sft")
    assert path.name == sha
    assert hub.token not in _all_text(path)
    pushed_info = json.loads((path / "stage_info.json").read_text())
    assert pushed_info["config"]["hub_token"] == REDACTED
    assert pushed_info["config"]["note"] == f"token is {REDACTED}"
    assert "hub_token: <redacted>" in (path / "config.yaml").read_text()

    loaded = AutoModelForCausalLM.from_pretrained(path)
    assert _logits(loaded).allclose(_logits(model))
    assert AutoTokenizer.from_pretrained(path)("the cat sat")["input_ids"] == [5, 6, 7]

    card = ModelCard.load("tester/llama-sft")
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "text-generation"
    assert {"instructgpt-pipelines", "sft", "trl"} <= set(card.data.tags)
    assert {r.metric_type: r.metric_value for r in card.data.eval_results} == {"loss": 1.25, "accuracy": 0.75}

    logs = caplog.text + "".join(capfd.readouterr())
    assert "tester/llama-sft" in logs and hub.token not in logs


def test_push_refuses_to_overwrite_a_branch(hub, tmp_path):
    from huggingface_hub import HfApi

    out = _make_stage_dir(tmp_path / "m", _tiny_llama(), _tiny_tokenizer())
    first = push_stage(out, "tester/no-overwrite")
    with pytest.raises(BranchNotEmptyError, match=r"'main'.*'tester/no-overwrite'.*overwrite=True.*revision"):
        push_stage(out, "tester/no-overwrite")

    # another branch is created from main and holds exactly the pushed folder
    (out / "extra.txt").write_text("only on v2")
    v2 = push_stage(out, "tester/no-overwrite", revision="v2")
    assert "extra.txt" in HfApi().list_repo_files("tester/no-overwrite", revision="v2")
    assert "extra.txt" not in HfApi().list_repo_files("tester/no-overwrite")
    with pytest.raises(BranchNotEmptyError, match="'v2'"):
        push_stage(out, "tester/no-overwrite", revision="v2")

    # overwrite=True replaces the branch content, stale files included
    (out / "extra.txt").unlink()
    third = push_stage(out, "tester/no-overwrite", revision="v2", overwrite=True, commit_message="redo")
    assert third not in (first, v2)
    assert "extra.txt" not in HfApi().list_repo_files("tester/no-overwrite", revision="v2")
    assert HfApi().list_repo_commits("tester/no-overwrite", revision="v2")[0].title == "redo"


def test_pull_errors_name_the_repo_and_the_fix(hub, tmp_path):
    out = _make_stage_dir(tmp_path / "m", _tiny_llama(), _tiny_tokenizer())
    push_stage(out, "tester/errors")
    with pytest.raises(HubError, match=r"'tester/does-not-exist' .*not found.*token"):
        pull("tester/does-not-exist")
    with pytest.raises(HubError, match=r"Revision 'nope' does not exist.*tester/errors.*main"):
        pull("tester/errors", revision="nope")
    with pytest.raises(HubError, match=r"rejected the token.*tester/errors.*HF_TOKEN"):
        pull("tester/errors", token="hf_rejectedTokenXXXXXXXXXXXXXX")
    with pytest.raises(HubError, match=r"rejected the token.*tester/errors"):
        push_stage(out, "tester/errors", token="hf_rejectedTokenXXXXXXXXXXXXXX", overwrite=True)


def test_push_checks_the_folder_before_uploading(hub, tmp_path, tiny_model_dir, monkeypatch):
    import shutil

    out = tmp_path / "pico"
    shutil.copytree(tiny_model_dir, out)
    (out / "modeling_picogpt.py").unlink()
    with pytest.raises(HubError, match=r"modeling_picogpt\.py is missing"):
        push_stage(out, "tester/no-code")
    with pytest.raises(HubError, match="not a folder"):
        push_stage(tmp_path / "missing", "tester/no-code")
    with pytest.raises(HubError, match="has no adapter_config.json"):
        push_stage(out, "tester/no-code", merge_adapter=True)
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(HubError, match="needs a token.*HF_TOKEN"):
        push_stage(tiny_model_dir, "tester/no-token")


def test_resolve_source_names_exact_revisions(hub, tmp_path, monkeypatch):
    from huggingface_hub import constants

    out = _make_stage_dir(tmp_path / "m", _tiny_llama(), _tiny_tokenizer())
    local = resolve_source(str(out))
    assert local == {"name_or_path": str(out), "revision": None}
    sha = push_stage(out, "tester/lineage")
    assert resolve_source(str(out)) == {
        "name_or_path": str(out), "revision": None, "hub": {"repo_id": "tester/lineage", "revision": sha}
    }  # fmt: skip
    assert resolve_source("tester/lineage") == {"name_or_path": "tester/lineage", "revision": sha}
    with pytest.raises(HubError, match="nope"):
        resolve_source("tester/lineage", revision="nope")

    pull("tester/lineage")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert resolve_source("tester/lineage") == {"name_or_path": "tester/lineage", "revision": sha}
    assert pull("tester/lineage").name == sha  # the cached snapshot, offline
    with pytest.raises(HubError, match="offline"):
        resolve_source("tester/never-pulled")


def test_lora_adapter_push_pull_and_merge(hub, tmp_path):
    import torch
    from huggingface_hub import HfApi, ModelCard
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    base_dir = tmp_path / "base"
    _tiny_llama().save_pretrained(base_dir)
    _tiny_tokenizer().save_pretrained(base_dir)
    peft_model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base_dir),
        LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
    )
    torch.manual_seed(1)
    with torch.no_grad():  # a trained-looking adapter: B is zero at init
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    peft_model.eval()
    expected = _logits(peft_model)
    adapter_dir = tmp_path / "adapter"
    peft_model.save_pretrained(adapter_dir)
    _tiny_tokenizer().save_pretrained(adapter_dir)
    (adapter_dir / "stage_info.json").write_text(json.dumps(_stage_info("sft", base=str(base_dir))))

    push_stage(adapter_dir, "tester/lora-adapter")
    files = set(HfApi().list_repo_files("tester/lora-adapter"))
    assert {"adapter_config.json", "adapter_model.safetensors"} <= files and "model.safetensors" not in files
    card = ModelCard.load("tester/lora-adapter")
    assert card.data.library_name == "peft" and "PeftModel.from_pretrained" in card.text
    pulled = pull("tester/lora-adapter")
    loaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), pulled).eval()
    assert _logits(loaded).allclose(expected, atol=1e-5)

    push_stage(adapter_dir, "tester/lora-merged", merge_adapter=True)
    files = set(HfApi().list_repo_files("tester/lora-merged"))
    assert "model.safetensors" in files and "adapter_config.json" not in files
    merged = AutoModelForCausalLM.from_pretrained(pull("tester/lora-merged"))
    assert _logits(merged).allclose(expected, atol=1e-4)
    assert ModelCard.load("tester/lora-merged").data.library_name == "transformers"


def test_picogpt_loads_from_the_hub_without_pipelines(hub, tmp_path, tiny_model_dir, monkeypatch):
    """A pushed PicoGPT, pulled into an empty cache, loads by repo id with trust_remote_code, offline,
    in a process where `import pipelines` fails."""
    import shutil

    from huggingface_hub import constants
    from transformers import AutoModelForCausalLM

    from pipelines import PicoGPTForCausalLM

    out = tmp_path / "pico"
    shutil.copytree(tiny_model_dir, out)
    assert {"configuration_picogpt.py", "modeling_picogpt.py"} <= {p.name for p in out.iterdir()}
    (out / "stage_info.json").write_text(json.dumps(_stage_info("pretrain", secret=hub.token)))
    sha = push_stage(out, "tester/picogpt")
    expected = _logits(PicoGPTForCausalLM.from_pretrained(out).eval(), ids=((5, 6, 7, 8),))

    cache = tmp_path / "empty-cache"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    path = pull("tester/picogpt")
    assert path.is_relative_to(cache) and path.name == sha
    assert {"configuration_picogpt.py", "modeling_picogpt.py", "README.md"} <= {
        p.name for p in path.iterdir()
    }
    assert "trust_remote_code=True" in (path / "README.md").read_text()

    script = textwrap.dedent(
        """
        import sys
        sys.modules["pipelines"] = None  # belt and braces: the repo is not on sys.path either
        try:
            import pipelines
        except ImportError:
            pass
        else:
            raise SystemExit("pipelines is importable")
        import torch
        from transformers import AutoModelForCausalLM
        model = AutoModelForCausalLM.from_pretrained("tester/picogpt", trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        with torch.no_grad():
            print(model(torch.tensor([[5, 6, 7, 8]])).logits.flatten().tolist())
        """
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("HF_", "PYTHON"))},
        "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "HF_HOME": str(tmp_path / "fresh-hf-home"),
    }  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-I", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    import torch

    got = torch.tensor(json.loads(result.stdout.strip().splitlines()[-1]))
    assert got.allclose(expected.flatten(), atol=1e-5)
    # and in this process, through the Auto class
    assert _logits(
        AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True).eval(), ids=((5, 6, 7, 8),)
    ).allclose(expected)


# ----------------------------------------------------------------------------------------- datasets
_DATA_CARD = """---
license: cc-by-4.0
task_categories: [text-generation]
tags: [instructgpt-pipelines, sft]
pretty_name: Tiny demonstrations
---

# Tiny demonstrations

Prompt/completion pairs for tests.
"""


def test_push_dataset_folder_and_load_dataset(hub, tmp_path):
    import datasets
    from huggingface_hub import DatasetCard

    data = tmp_path / "data"
    data.mkdir()
    for split, n in (("train", 5), ("test", 2)):
        rows = [{"prompt": f"q{i}", "completion": f"a{i}"} for i in range(n)]
        (data / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    card_path = tmp_path / "card.md"
    card_path.write_text(_DATA_CARD)

    sha = push_dataset(data, "tester/tiny-sft-data", card_path=card_path)
    loaded = datasets.load_dataset("tester/tiny-sft-data")
    assert {k: v.num_rows for k, v in loaded.items()} == {"train": 5, "test": 2}
    assert loaded["train"][3] == {"prompt": "q3", "completion": "a3"}
    card = DatasetCard.load("tester/tiny-sft-data", repo_type="dataset")
    assert card.data.license == "cc-by-4.0" and card.data.pretty_name == "Tiny demonstrations"
    assert resolve_source("tester/tiny-sft-data", repo_type="dataset")["revision"] == sha
    with pytest.raises(BranchNotEmptyError, match="tester/tiny-sft-data"):
        push_dataset(data, "tester/tiny-sft-data", card_path=card_path)
    assert (
        pull("tester/tiny-sft-data", repo_type="dataset", local_dir=tmp_path / "local")
        .joinpath("train.jsonl")
        .is_file()
    )


def test_push_datasetdict_keeps_its_configs_and_our_card(hub, tmp_path):
    import datasets
    from huggingface_hub import DatasetCard

    dsd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(
                {"chosen": ["good", "fine", "ok"], "rejected": ["bad", "no", "x"]}
            ),
            "test": datasets.Dataset.from_dict({"chosen": ["yes"], "rejected": ["no"]}),
        }
    )
    card_path = tmp_path / "card.md"
    card_path.write_text(_DATA_CARD)
    push_dataset(dsd, "tester/tiny-prefs", card_path=card_path)
    card = DatasetCard.load("tester/tiny-prefs", repo_type="dataset")
    assert card.data.pretty_name == "Tiny demonstrations" and card.data.configs
    loaded = datasets.load_dataset("tester/tiny-prefs")
    assert loaded["train"]["chosen"] == ["good", "fine", "ok"] and loaded["test"].num_rows == 1


# ----------------------------------------------------------------------------------------- secrets
def test_redact_secrets():
    token = "hf_" + "a" * 30
    config = {
        "hub_token": token, "token": "abc", "wandb_api_key": "k", "password": "p", "my_token": "t",
        "pad_token": "<|pad|>", "eos_token": "<|endoftext|>", "max_new_tokens": 16, "use_auth_token": True,
        "nested": [{"text": f"Bearer {token} end"}, ("custom-secret-value",)], "hub_model_id": "org/x",
        "empty_token": None,
    }  # fmt: skip
    clean = redact_secrets(config, known_secrets=["custom-secret-value"])
    assert clean == {
        "hub_token": REDACTED, "token": REDACTED, "wandb_api_key": REDACTED, "password": REDACTED,
        "my_token": REDACTED, "pad_token": "<|pad|>", "eos_token": "<|endoftext|>", "max_new_tokens": 16,
        "use_auth_token": True, "nested": [{"text": f"Bearer {REDACTED} end"}, (REDACTED,)],
        "hub_model_id": "org/x", "empty_token": None,
    }  # fmt: skip
    assert config["hub_token"] == token  # a copy: the input is untouched
