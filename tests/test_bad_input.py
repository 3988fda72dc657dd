"""Bad input stops a recipe before any model is loaded, with one message saying where and what.

Each test runs a recipe in-process on a tiny model and a small local dataset with one defect, with
the recipe's `get_model` (and pretraining's model constructor) replaced by a function that fails
the test: the validation error must come first. No checkpoint may appear in the output folder.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import torch
from conftest import TINY_TEXTS, make_tiny_config
from datasets import Dataset
from recipe_runs import REPO, load_recipe, parse_for, stage_args, write_jsonl
from trl import ModelConfig

from pipelines.configs import ConfigError
from pipelines.data import DataValidationError
from pipelines.loading import get_model

U = {"role": "user", "content": "Count from 1 to 4."}
A = {"role": "assistant", "content": "1 2 3 4."}


def _model_loaded(*args, **kwargs):
    pytest.fail("a model was loaded before the input was validated")


def _run(stage: str, argv: list[str], monkeypatch) -> None:
    import pipelines.rl

    module = load_recipe(stage)
    if stage == "pretrain":
        monkeypatch.setattr(module, "PicoGPTForCausalLM", _model_loaded)
    # The RL recipes load through pipelines.rl, the others themselves (the control test below
    # checks that each stage's loading is caught).
    monkeypatch.setattr(
        pipelines.rl if stage in ("ppo", "rloo", "grpo") else module, "get_model", _model_loaded
    )
    module.main(*parse_for(stage, argv))


def _fails(stage: str, argv: list[str], monkeypatch, error=(ConfigError, DataValidationError)) -> str:
    """Run the recipe; it must raise `error` before loading a model and leave no checkpoint; the message."""
    with pytest.raises(error) as info:
        _run(stage, argv, monkeypatch)
    out = Path(argv[argv.index("--output_dir") + 1])
    assert not list(out.glob("checkpoint-*")) and not (out / "model.safetensors").exists()
    return str(info.value)


def _inputs(stage: str, model_dir: Path) -> dict[str, Path]:
    if stage == "pretrain":
        return {}
    if stage in ("ppo", "rloo", "grpo"):
        return {"model_name_or_path": model_dir, "reward_model_path": model_dir}
    return {"model_name_or_path": model_dir}


def _args(stage: str, tmp_path: Path, model_dir: Path, **overrides) -> list[str]:
    if stage in ("rloo", "grpo"):  # not in the tiny chain of stage_args: their tiny YAML, embedded prompts
        values = {"output_dir": tmp_path / "out", **_inputs(stage, model_dir), **overrides}
        config = REPO / "recipes" / "tiny" / "variants" / f"{stage}.yaml"
        flags = [x for key, value in values.items() for x in (f"--{key}", str(value))]
        return ["--config", str(config), *flags]
    return stage_args(stage, tmp_path / "configs", tmp_path / "out", _inputs(stage, model_dir), **overrides)


@pytest.fixture(scope="module")
def other_tokenizer_model(tmp_path_factory) -> Path:
    """A reward-shaped folder whose tokenizer is not the policy's."""
    from pipelines import PicoGPTForSequenceClassification
    from pipelines.tokenizer import train_tokenizer

    tokenizer = train_tokenizer([t.upper() for t in TINY_TEXTS], vocab_size=300, min_frequency=1)
    path = tmp_path_factory.mktemp("other-tokenizer")
    PicoGPTForSequenceClassification(make_tiny_config(tokenizer, num_labels=1)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def two_way_classifier(tmp_path_factory, tiny_tokenizer) -> Path:
    from pipelines import PicoGPTForSequenceClassification

    path = tmp_path_factory.mktemp("two-way-head")
    torch.manual_seed(0)
    PicoGPTForSequenceClassification(make_tiny_config(tiny_tokenizer, num_labels=2)).save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


# ------------------------------------------------------------------------------- config keys


def test_misspelt_yaml_keys_name_the_file_the_keys_and_the_fix(tmp_path):
    config = tmp_path / "sft.yaml"
    config.write_text("learning_rat: 1.0e-3\nper_device_train_batchsize: 4\nbf16: false\n")
    with pytest.raises(ConfigError) as info:
        parse_for("sft", ["--config", str(config)])
    message = str(info.value)
    assert message.startswith(f"{config}: unknown key(s):")
    assert "'learning_rat' (did you mean 'learning_rate'" in message
    assert "'per_device_train_batchsize' (did you mean 'per_device_train_batch_size'" in message


def test_misspelt_or_abbreviated_command_line_flags_are_refused(tmp_path, tiny_model_dir):
    argv = _args("sft", tmp_path, tiny_model_dir)
    with pytest.raises(ConfigError) as info:
        parse_for("sft", [*argv, "--max_step", "3", "--learnig_rate=0.1"])
    message = str(info.value)
    assert "unknown command-line flag(s)" in message
    assert "--max_step (did you mean --max_steps" in message  # argparse alone would take it as --max_steps
    assert "--learnig_rate (did you mean --learning_rate" in message
    assert parse_for("sft", [*argv, "--max_steps", "3"])[1].max_steps == 3


# ------------------------------------------------------------------------------------ data


@pytest.mark.parametrize(
    ("stage", "rows", "column"),
    [
        ("pretrain", [{"body": "some text"}], "text"),
        ("sft", [{"text": "a demonstration without messages"}], "messages"),
        ("reward", [{"prompt": "Q?", "chosen": "yes"}], "rejected"),
        ("reward", [{"chosen": "yes", "rejected": "no"}], "prompt"),
        ("ppo", [{"question": "Count to 3."}], "prompt"),
    ],
)
def test_missing_column(stage, rows, column, tmp_path, tiny_model_dir, monkeypatch):
    data = write_jsonl(tmp_path / "bad.jsonl", [*rows, *rows])
    message = _fails(stage, _args(stage, tmp_path, tiny_model_dir, dataset_name=data), monkeypatch)
    fields = sorted(rows[0])
    assert message.startswith(
        f"{data}, row 0, column '{column}': found no field '{column}' (fields present: {fields})"
    )
    assert "Fix: give every row" in message


@pytest.mark.parametrize(
    ("stage", "rows", "where", "found"),
    [
        (
            "sft",
            [
                {"messages": [U, A]},
                {"messages": [U, A]},
                {"messages": [U, {"role": "assistant", "content": " \n"}]},
            ],
            "row 2, column 'messages'",
            "an empty or whitespace-only content in message 1 (assistant)",
        ),
        (
            "reward",
            [
                {"prompt": "Q?", "chosen": "yes", "rejected": "no"},
                {"prompt": "Q?", "chosen": "   ", "rejected": "no"},
            ],
            "row 1, column 'chosen'",
            "an empty or whitespace-only content in message 0 (assistant)",
        ),
        (
            "ppo",
            [{"prompt": "Count to 3."}, {"prompt": "\t"}],
            "row 1, column 'prompt'",
            "an empty or whitespace",
        ),
    ],
)
def test_empty_or_whitespace_text(stage, rows, where, found, tmp_path, tiny_model_dir, monkeypatch):
    data = write_jsonl(tmp_path / "bad.jsonl", rows)
    message = _fails(stage, _args(stage, tmp_path, tiny_model_dir, dataset_name=data), monkeypatch)
    assert message.startswith(f"{data}") and where in message and found in message
    assert "expected non-empty text" in message


def test_whitespace_only_pretraining_text(tmp_path, monkeypatch):
    data = tmp_path / "blank.txt"
    data.write_text("  \n\n\t\n\n   ")
    message = _fails("pretrain", _args("pretrain", tmp_path, tmp_path, dataset_name=data), monkeypatch)
    assert message.startswith(f"{data}: found no usable rows; expected at least one pretrain row")
    assert not (tmp_path / "out" / "tokenizer").exists()  # not even the tokenizer was trained


def test_sft_conversation_must_end_with_the_assistant(tmp_path, tiny_model_dir, monkeypatch):
    data = write_jsonl(tmp_path / "bad.jsonl", [{"messages": [U, A]}, {"messages": [U, A, U]}])
    message = _fails("sft", _args("sft", tmp_path, tiny_model_dir, dataset_name=data), monkeypatch)
    assert message.startswith(
        f"{data}, row 1, column 'messages': found a conversation ending with a user turn; "
        "expected a conversation ending with an assistant turn (the demonstration)"
    )


@pytest.mark.parametrize(
    ("stage", "consequence"),
    [("sft", "SFTTrainer TRUNCATES them at max_length"), ("reward", "RewardTrainer DROPS such pairs")],
)
def test_rows_longer_than_max_length_are_reported_before_the_model_loads(
    stage, consequence, tmp_path, tiny_model_dir, monkeypatch, caplog
):
    long_answer = " ".join(f"{n} and" for n in range(60))
    if stage == "sft":
        rows = [{"messages": [U, {"role": "assistant", "content": long_answer if i in (3, 7) else "1 2 3 4."}]}
                for i in range(40)]  # fmt: skip
    else:
        rows = [{"prompt": "Count.", "chosen": long_answer if i in (3, 7) else "1 2 3 4.", "rejected": "4 3."}
                for i in range(40)]  # fmt: skip
    data = write_jsonl(tmp_path / "long.jsonl", rows)
    seen_at_model_load = []

    class Stop(Exception):
        pass

    def model_load(*args, **kwargs):
        seen_at_model_load.append(caplog.text)
        raise Stop

    module = load_recipe(stage)
    monkeypatch.setattr(module, "get_model", model_load)
    caplog.set_level(logging.WARNING, logger="pipelines")
    with pytest.raises(Stop):
        module.main(*parse_for(stage, _args(stage, tmp_path, tiny_model_dir, dataset_name=data)))
    # 40 rows, 2 of them carved into `test` (5%, seeded): the report counts the training split.
    (report,) = [r.getMessage() for r in caplog.records if "longer than max_length" in r.getMessage()]
    assert report in seen_at_model_load[0]
    kind = "sft" if stage == "sft" else "preference"
    assert f"of 38 {kind} rows" in report and "longer than max_length=64 tokens" in report
    assert report.split(": ", 1)[1].startswith(("1 of 38", "2 of 38")) and consequence in report
    assert "Raise max_length or filter these rows before training." in report


@pytest.mark.parametrize("stage", ["ppo", "rloo", "grpo"])
def test_prompts_longer_than_max_prompt_length_are_dropped_and_counted_or_refused(
    stage, tmp_path, tiny_model_dir, monkeypatch, caplog
):
    # A truncated prompt would lose its instruction: the RL stages drop long prompts and say how many.
    long_question = "Count " + " ".join(f"{n} and" for n in range(40)) + "."
    rows = [{"prompt": [{"role": "user", "content": long_question + f" {i}" if i in (2, 5) else f"Count to {i}."}]}
            for i in range(40)]  # fmt: skip
    data = write_jsonl(tmp_path / "prompts.jsonl", rows)
    seen_at_model_load = []

    class Stop(Exception):
        pass

    def model_load(*args, **kwargs):
        seen_at_model_load.append(caplog.text)
        raise Stop

    import pipelines.rl

    monkeypatch.setattr(pipelines.rl, "get_model", model_load)
    caplog.set_level(logging.WARNING, logger="pipelines")
    module = load_recipe(stage)
    with pytest.raises(Stop):
        module.main(*parse_for(stage, _args(stage, tmp_path / "a", tiny_model_dir, dataset_name=data)))
    # 40 prompts, 2 of them carved into `test` (5%, seeded): the two long ones are counted where they fell.
    reports = [r.getMessage() for r in caplog.records if "longer than max_prompt_length" in r.getMessage()]
    assert reports and all(r in seen_at_model_load[0] for r in reports)
    dropped = sum(int(r.split()[1]) for r in reports)
    assert dropped == 2 and all(
        r.endswith("prompts longer than max_prompt_length=64 tokens.") for r in reports
    )

    # Nothing fits: refused before any model loads, naming the field to raise.
    argv = _args(stage, tmp_path / "b", tiny_model_dir, dataset_name=data, max_prompt_length=4)
    message = _fails(stage, argv, monkeypatch)
    assert message == "Every train prompt is longer than max_prompt_length=4 tokens; raise it."


def test_long_prompts_are_the_ones_dropped(tmp_path, tiny_model_dir):
    from transformers import AutoTokenizer

    from pipelines.preprocessing import drop_long_prompts, tokenize_prompts

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    long_question = "Count " + " ".join(f"{n} and" for n in range(40)) + "."
    prompts = Dataset.from_list(
        [
            {"prompt": [{"role": "user", "content": long_question if i % 3 == 0 else f"Count to {i}."}]}
            for i in range(9)
        ]  # fmt: skip
    )
    kept = drop_long_prompts(prompts, tokenizer, 64)
    assert [p[0]["content"] for p in kept["prompt"]] == [f"Count to {i}." for i in range(9) if i % 3]
    ids = tokenize_prompts(prompts, tokenizer, 64)
    assert ids.column_names == ["input_ids"] and len(ids) == 6 and max(map(len, ids["input_ids"])) <= 64
    assert tokenizer.decode(ids["input_ids"][0]).rstrip().endswith("<|assistant|>")


# ------------------------------------------------------------------------------- tokenizers


@pytest.mark.parametrize(
    ("defect", "expected"),
    [("pad_token", "has no pad token"), ("chat_template", "has no chat template")],
)
def test_tokenizer_without_pad_token_or_chat_template(
    defect, expected, tmp_path, tiny_model_dir, monkeypatch
):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    setattr(tokenizer, defect, None)
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    # Every stage that loads a tokenizer honours the field.
    for stage in ("sft", "reward", "ppo", "rloo", "grpo"):
        argv = _args(stage, tmp_path / stage, tiny_model_dir, tokenizer_name_or_path=tmp_path / "tokenizer")
        message = _fails(stage, argv, monkeypatch)
        assert message.startswith(f"The tokenizer of '{tmp_path / 'tokenizer'}' {expected}"), stage


def test_policy_and_reward_tokenizers_must_match(
    tmp_path, tiny_model_dir, other_tokenizer_model, monkeypatch
):
    argv = _args("ppo", tmp_path, tiny_model_dir, reward_model_path=other_tokenizer_model)
    message = _fails("ppo", argv, monkeypatch)
    assert message.startswith(f"The tokenizers of '{tiny_model_dir}' and '{other_tokenizer_model}' differ")
    assert "train the reward model from the same SFT checkpoint as the policy" in message

    # A separate value model is checked too: it scores the policy's ids token by token.
    argv = _args("ppo", tmp_path, tiny_model_dir, value_model_path=other_tokenizer_model)
    message = _fails("ppo", argv, monkeypatch)
    assert message.startswith(f"The tokenizers of '{tiny_model_dir}' and '{other_tokenizer_model}' differ")
    assert "to the value model" in message and "point value_model_path at a reward model" in message


def test_reference_must_share_the_policy_tokenizer_and_cannot_pair_with_an_adapter(
    tmp_path, tiny_model_dir, other_tokenizer_model, monkeypatch
):
    argv = _args("ppo", tmp_path, tiny_model_dir, ref_model_path=other_tokenizer_model)
    message = _fails("ppo", argv, monkeypatch)
    assert message.startswith(f"The tokenizers of '{tiny_model_dir}' and '{other_tokenizer_model}' differ")
    assert "to the reference model" in message and "point ref_model_path at the SFT model" in message

    argv = _args("ppo", tmp_path, tiny_model_dir, ref_model_path=tiny_model_dir, use_peft=True)
    message = _fails("ppo", argv, monkeypatch)
    assert message.startswith(f"ref_model_path={str(tiny_model_dir)!r} with use_peft")
    assert "Drop ref_model_path" in message


# ----------------------------------------------------------------------------------- models


def test_reward_model_with_a_non_scalar_head(tmp_path, tiny_model_dir, two_way_classifier, monkeypatch):
    with pytest.raises(ConfigError, match=r"PicoGPTForSequenceClassification with a 2-way head"):
        get_model(str(two_way_classifier), ModelConfig(), task="reward")
    get_model(str(tiny_model_dir), ModelConfig(), task="reward")  # a causal checkpoint gets a new scalar head

    message = _fails(
        "ppo", _args("ppo", tmp_path, tiny_model_dir, reward_model_path=two_way_classifier), monkeypatch
    )
    assert message.startswith(
        f"reward_model_path='{two_way_classifier}' is a PicoGPTForSequenceClassification"
    )
    assert "need a scalar head (num_labels=1)" in message

    argv = _args("ppo", tmp_path / "value", tiny_model_dir, value_model_path=two_way_classifier)
    message = _fails("ppo", argv, monkeypatch)  # a value model apart from the reward model is checked too
    assert message.startswith(
        f"value_model_path='{two_way_classifier}' is a PicoGPTForSequenceClassification"
    )

    for stage in ("rloo", "grpo"):  # the same check in TRL's maintained RL trainers
        argv = _args(stage, tmp_path / stage, tiny_model_dir, reward_model_path=two_way_classifier)
        message = _fails(stage, argv, monkeypatch)
        assert message.startswith(
            f"reward_model_path='{two_way_classifier}' is a PicoGPTForSequenceClassification"
        ), stage


def test_model_source_missing_folder_or_folder_without_a_model(tmp_path, tiny_model_dir, monkeypatch):
    missing = tmp_path / "no" / "such" / "model"
    message = _fails("sft", _args("sft", tmp_path, missing), monkeypatch)
    assert (
        message
        == f"model_name_or_path={str(missing)!r}: no such folder. Run the stage that writes it first, or fix the path."
    )

    empty = tmp_path / "empty-model"
    shutil.copytree(tiny_model_dir, empty, ignore=shutil.ignore_patterns("config.json"))
    message = _fails("sft", _args("sft", tmp_path, empty), monkeypatch)
    assert message.startswith(f"model_name_or_path={str(empty)!r} is a folder without config.json")

    message = _fails(
        "ppo", _args("ppo", tmp_path / "ppo", tiny_model_dir, reward_model_path=missing), monkeypatch
    )
    assert message.startswith(f"reward_model_path={str(missing)!r}: no such folder")
    message = _fails(
        "ppo", _args("ppo", tmp_path / "ppo-ref", tiny_model_dir, ref_model_path=missing), monkeypatch
    )
    assert message.startswith(f"ref_model_path={str(missing)!r}: no such folder")


def test_model_source_hub_id_offline(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    message = _fails("sft", _args("sft", tmp_path, "nobody/no-such-model"), monkeypatch)
    assert message.startswith(
        "model_name_or_path='nobody/no-such-model' is not a local folder and the Hub cannot be reached"
    )


def test_model_source_hub_id_that_does_not_exist(tmp_path, hub, monkeypatch):
    message = _fails("sft", _args("sft", tmp_path, "tester/no-such-model"), monkeypatch)
    assert message.startswith(
        "model_name_or_path='tester/no-such-model' is neither a local folder nor a Hub repo you can access"
    )


def test_pretraining_lora_without_a_model_to_adapt(tmp_path, monkeypatch):
    message = _fails(
        "pretrain", _args("pretrain", tmp_path, tmp_path, use_peft=True, load_in_4bit=True), monkeypatch
    )
    assert message.startswith("use_peft, load_in_4bit set without model_name_or_path")
    assert "Set model_name_or_path" in message and "remove use_peft / load_in_4bit" in message
    assert not (tmp_path / "out").exists(), "the output folder was touched before the arguments were checked"


def test_valid_inputs_reach_model_loading(tmp_path, tiny_model_dir, monkeypatch):
    """The control: with nothing wrong, each recipe gets as far as loading its model."""
    for stage in ("pretrain", "sft", "reward", "ppo", "rloo", "grpo"):
        with pytest.raises(pytest.fail.Exception, match="a model was loaded"):
            _run(stage, _args(stage, tmp_path / stage, tiny_model_dir), monkeypatch)
