"""Model cards built from stage_info.json: metadata, round trip, lineage, and no secrets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import python_block, run_as_copied
from huggingface_hub import ModelCard

from pipelines.model_card import build_model_card, write_model_card

TOKEN = "hf_" + "CardSecret0123456789abcdefXYZ"
SHA = "0123456789abcdef0123456789abcdef01234567"


def _stage_dir(
    path: Path, stage: str, *, base: dict | None = None, config: dict | None = None, **files
) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    info = {
        "stage": stage,
        "recipe": f"recipes/{stage}.py",
        "config": {"learning_rate": 0.001, "hub_token": TOKEN, "report": f"pushed with {TOKEN}", **(config or {})},
        "base_model": base or {"name_or_path": "outputs/pretrain", "revision": None},
        "datasets": [{"name": "embedded", "kind": stage, "revision": None},
                     {"name": "org/prefs", "kind": "eval", "revision": "abc1234"}],
        "metrics": {"eval_loss": 1.23, "eval_accuracy": 0.91, "epoch": 3, "note": "not a number"},
        "seed": 42,
        "versions": {"transformers": "5.23.0", "trl": "1.12.0"},
        "hub": {"repo_id": None, "revision": None},
    }  # fmt: skip
    (path / "stage_info.json").write_text(json.dumps(info))
    for name, content in files.items():
        (path / name.replace("__", ".")).write_text(
            json.dumps(content) if isinstance(content, dict) else content
        )
    return path


_PICO_CONFIG = {
    "architectures": ["PicoGPTForCausalLM"],
    "model_type": "picogpt",
    "auto_map": {"AutoConfig": "configuration_picogpt.PicoGPTConfig",
                 "AutoModelForCausalLM": "modeling_picogpt.PicoGPTForCausalLM"},
}  # fmt: skip


def test_sft_card_metadata_round_trip_and_no_token(tmp_path):
    out = _stage_dir(
        tmp_path / "sft", "sft", base={"name_or_path": "org/pico-pretrain", "revision": SHA},
        config__json=_PICO_CONFIG, modeling_picogpt__py="# code",
    )  # fmt: skip
    path = write_model_card(out, repo_id="org/pico-sft")
    assert path == out / "README.md"
    text = path.read_text()
    assert TOKEN not in text and "<redacted>" in text

    card = ModelCard.load(path)
    data = card.data
    assert data.license == "apache-2.0"
    assert data.base_model == "org/pico-pretrain"
    assert data.datasets == ["org/prefs"]  # only Hub ids go in the metadata; "embedded" is in the prose
    assert {"instructgpt-pipelines", "sft", "trl", "trust_remote_code"} <= set(data.tags)
    assert data.library_name == "transformers" and data.pipeline_tag == "text-generation"
    assert data.model_name == "org/pico-sft"
    results = {r.metric_name: r.metric_value for r in data.eval_results}
    assert results == {"eval_loss": 1.23, "eval_accuracy": 0.91, "epoch": 3}
    assert {r.metric_type for r in data.eval_results} == {"loss", "accuracy", "epoch"}
    assert all(r.task_type == "text-generation" for r in data.eval_results)

    body = card.text
    assert f"`org/pico-pretrain` at revision `{SHA}`" in body  # lineage: exact Hub revision
    assert "`embedded`" in body and "recipes/sft.py" in body and "learning_rate: 0.001" in body
    assert 'AutoModelForCausalLM.from_pretrained("org/pico-sft", trust_remote_code=True)' in body
    assert "not fit for production" in body
    assert ModelCard(str(card)).data.to_dict() == data.to_dict()  # round trip


def test_reward_model_card(tmp_path):
    config = {"architectures": ["PicoGPTForSequenceClassification"], "model_type": "picogpt"}
    out = _stage_dir(tmp_path / "rm", "reward", config__json=config)
    card = build_model_card(out)
    assert card.data.pipeline_tag == "text-classification"
    assert "reward-model" in card.data.tags and "pretraining" not in card.data.tags
    assert "AutoModelForSequenceClassification" in card.text
    assert "biases of its preference data" in card.text
    assert "the local folder `outputs/pretrain`" in card.text  # lineage from a local folder
    assert card.data.base_model is None  # a local path is not a Hub id
    assert card.data.model_name == "rm"
    assert "policy_comparisons" not in card.text  # this reward model had none

    rows = "".join(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n" for _ in range(3))
    out = _stage_dir(tmp_path / "rm-ranked", "reward", config__json=config,
                     train_policy_comparisons__jsonl=rows * 1000, test_policy_comparisons__jsonl=rows)  # fmt: skip
    assert (
        "- Comparisons of the SFT policy's own samples, labelled by the task's gold judge: 3,000 trained on "
        "(`train_policy_comparisons.jsonl`), 3 held out for `eval_policy_accuracy` (`test_policy_comparisons.jsonl`)"
    ) in build_model_card(out).text


def test_ppo_and_pretraining_tags(tmp_path):
    ppo = build_model_card(_stage_dir(tmp_path / "ppo", "ppo", config__json=_PICO_CONFIG))
    assert {"ppo", "rlhf", "trl"} <= set(ppo.data.tags) and ppo.data.pipeline_tag == "text-generation"
    pre = build_model_card(_stage_dir(tmp_path / "pre", "pretrain", config__json=_PICO_CONFIG))
    assert "pretraining" in pre.data.tags and "trl" not in pre.data.tags


def test_rl_card_names_what_the_policy_was_optimised_against(tmp_path):
    config = {"reward_model_path": "you/tiny-reward", "reward_model_revision": SHA, "ref_model_path": "outputs/sft",
              "gold_reward": False}  # fmt: skip
    ppo = build_model_card(_stage_dir(tmp_path / "ppo", "ppo", config=config)).content
    assert f"- Reward model: `you/tiny-reward` at revision `{SHA}`" in ppo
    assert "- KL reference: `outputs/sft`" in ppo and "gold judge" not in ppo
    config = {"reward_model_path": "outputs/reward", "gold_reward": True, "gold_reward_scale": 4.0}
    gold = build_model_card(_stage_dir(tmp_path / "ppo_gold", "ppo", config=config)).content
    assert (
        "- Reward: the embedded task's gold judge x 4.0 (`gold_reward`), not a learned reward model" in gold
    )
    assert "- Reward model:" not in gold
    sft = build_model_card(_stage_dir(tmp_path / "sft", "sft")).content
    assert "- Reward" not in sft and "- KL reference" not in sft


def test_adapter_card_and_pushed_local_lineage(tmp_path):
    base = {"name_or_path": "outputs/sft", "revision": None, "hub": {"repo_id": "org/sft", "revision": SHA}}
    adapter = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": "outputs/sft"}
    card = build_model_card(_stage_dir(tmp_path / "lora", "sft", base=base, adapter_config__json=adapter))
    assert card.data.library_name == "peft"
    assert {"peft", "lora"} <= set(card.data.tags)
    assert card.data.base_model == "org/sft"
    assert "PeftModel.from_pretrained" in card.text
    assert f"pushed as `org/sft` at revision `{SHA}`" in card.text


def test_card_without_stage_info(tmp_path, caplog):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    card = build_model_card(tmp_path, license="mit")
    assert card.data.license == "mit" and card.data.eval_results is None
    assert "stage_info.json" in caplog.text


@pytest.mark.parametrize("key", ["hub_token", "token", "wandb_api_key", "password"])
def test_secret_keys_never_reach_the_card(tmp_path, key):
    out = _stage_dir(tmp_path / "s", "sft", config={key: "s3cr3t-value-xyz"})
    text = str(build_model_card(out))
    assert "s3cr3t-value-xyz" not in text and TOKEN not in text


@pytest.mark.parametrize("stage", ["sft", "reward"])
def test_how_to_use_snippet_runs_in_a_fresh_interpreter(tmp_path, tiny_model_dir, stage):
    """The card's code, copied into a script beside the downloaded folder, runs without `import
    pipelines`, without asking whether to trust the folder's code, and without falling back to a
    generic config (AutoTokenizer reads the model's config too)."""
    out = tmp_path / f"pico-{stage}"
    shutil.copytree(tiny_model_dir, out)
    assert any(out.glob("modeling_*.py")), "the saved folder must carry the model's code"
    if stage == "reward":
        config = json.loads((out / "config.json").read_text())
        config["architectures"] = ["PicoGPTForSequenceClassification"]
        (out / "config.json").write_text(json.dumps(config))
    _stage_dir(out, stage)
    card = build_model_card(out)
    code = python_block(card.text)
    assert f'from_pretrained("pico-{stage}"' in code
    run = run_as_copied(code, cwd=tmp_path)
    assert "to instantiate a model of type" not in run.stdout + run.stderr
