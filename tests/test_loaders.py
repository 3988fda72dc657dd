"""get_dataset on the embedded task, the real extracts in ../shared/data, malformed files and the Hub path."""

from __future__ import annotations

import gzip
import json
import logging

import datasets
import pytest
from datasets import Dataset, DatasetDict

from pipelines.data import DataValidationError, TaskConfig, export_embedded, get_dataset, parse_hh_dialogue
from pipelines.data.task import gold_score

SMALL = TaskConfig(
    seed=3,
    pretrain_train=30,
    pretrain_test=5,
    sft_train=40,
    sft_test=16,
    preference_train=80,
    preference_test=24,
    ppo_prompts=40,
    eval_prompts=16,
)


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_embedded_matches_task_config():
    ds = get_dataset("embedded", "sft", task_config=SMALL)
    assert {s: len(d) for s, d in ds.items()} == {"train": 40, "test": 16}
    assert get_dataset("embedded", "prompts", seed=5)["test"].num_rows == 200
    assert (
        get_dataset("embedded", "prompts", seed=5)["test"][0] != get_dataset("embedded", "prompts")["test"][0]
    )


def test_hh_rlhf_harmless_splits_on_last_assistant_turn(shared_data, caplog):
    with caplog.at_level(logging.WARNING):
        ds = get_dataset(str(shared_data / "hh-rlhf-harmless"), "preference")
    assert len(ds["train"]) + len(ds["test"]) == 1697 and len(ds["test"]) == 85  # 7 of 1,704 dropped, 5% test
    assert "dropped 5 rows: chosen and rejected dialogues differ" in caplog.text
    assert "dropped 2 rows: an empty final answer (rows [64, 808])" in caplog.text
    with gzip.open(shared_data / "hh-rlhf-harmless" / "train.jsonl.gz", "rt") as f:
        raw = json.loads(f.readline())
    first = get_dataset(str(shared_data / "hh-rlhf-harmless" / "train.jsonl.gz"), "preference", max_rows=2)
    row = next(
        r
        for r in first["train"].to_list() + first["test"].to_list()
        if r["chosen"][0]["content"] in raw["chosen"]
    )
    messages = parse_hh_dialogue(raw["chosen"])
    assert row["prompt"] == messages[:-1] and row["chosen"] == messages[-1:]
    assert [m["role"] for m in row["prompt"]][::2] == ["user"] * len(row["prompt"][::2])
    assert row["prompt"][-1]["role"] == "user" and len(row["prompt"]) > 1  # multi-turn prompt
    assert raw["rejected"].endswith(row["rejected"][0]["content"])


def test_hh_rlhf_prompts_are_distinct(shared_data):
    ds = get_dataset(str(shared_data / "hh-rlhf-harmless"), "prompts")
    prompts = [json.dumps(p) for split in ds.values() for p in split["prompt"]]
    assert len(prompts) == len(set(prompts)) == 1696
    assert all(p[-1]["role"] == "user" for p in ds["train"]["prompt"])


def test_alpaca_eval_preferences_reads_only_what_is_needed(shared_data):
    ds = get_dataset(
        str(shared_data / "alpaca-eval-preferences" / "train.jsonl.gz"), "preference", max_rows=200
    )
    assert (len(ds["train"]), len(ds["test"])) == (190, 10)
    assert set(ds["train"].column_names) == {
        "prompt",
        "chosen",
        "rejected",
        "chosen_model",
        "rejected_model",
        "source",
    }
    longer = [
        len(c[0]["content"]) > len(r[0]["content"])
        for c, r in zip(ds["train"]["chosen"], ds["train"]["rejected"], strict=True)
    ]
    assert sum(longer) / len(longer) > 0.7  # the length bias the card warns about (~0.83 overall)


def test_alpaca_eval_sft_and_its_prompts(shared_data):
    ds = get_dataset(str(shared_data / "alpaca-eval-gpt4-sft"), "sft")
    assert (len(ds["train"]), len(ds["test"])) == (556, 29)
    assert all([m["role"] for m in msgs] == ["user", "assistant"] for msgs in ds["train"]["messages"])
    prompts = get_dataset(str(shared_data / "alpaca-eval-gpt4-sft"), "prompts")
    assert prompts["train"][0]["prompt"][0]["role"] == "user" and len(prompts["train"][0]["prompt"]) == 1


def test_wikitext_uses_validation_as_train(shared_data):
    ds = get_dataset(str(shared_data / "wikitext-2-raw"), "pretrain")
    assert list(ds) == ["train", "test"] and (len(ds["train"]), len(ds["test"])) == (1160, 1320)
    assert ds["train"][0]["text"] == "= Homarus gammarus ="
    assert all(t.strip() == t and t for t in ds["test"]["text"])


def test_tinyshakespeare_paragraphs_and_deterministic_test_split(shared_data):
    a = get_dataset(str(shared_data / "tinyshakespeare" / "input.txt"), "pretrain")
    b = get_dataset(str(shared_data / "tinyshakespeare"), "pretrain")
    c = get_dataset(str(shared_data / "tinyshakespeare"), "pretrain", seed=1)
    assert (len(a["train"]), len(a["test"])) == (6861, 361)
    assert list(a["test"]["text"]) == list(b["test"]["text"]) != list(c["test"]["text"])
    assert "First Citizen:\nBefore we proceed any further, hear me speak." in list(a["train"]["text"]) + list(
        a["test"]["text"]
    )
    with pytest.raises(ValueError, match="plain text only makes a pretrain dataset"):
        get_dataset(str(shared_data / "tinyshakespeare"), "sft")


def test_malformed_row_names_file_row_field_and_fix(tmp_path):
    path = _write_jsonl(
        tmp_path / "pairs.jsonl",
        [
            {"prompt": "Q1", "chosen": "A", "rejected": "B"},
            {"prompt": "Q2", "chosen": "A"},
        ],
    )
    with pytest.raises(DataValidationError) as info:
        get_dataset(str(path), "preference")
    err = info.value
    assert (err.source, err.row, err.column) == (str(path), 1, "rejected")
    assert str(err).startswith(f"{path}, row 1, column 'rejected': found no field 'rejected'")
    assert "Fix: give every row 'prompt', 'chosen' and 'rejected'" in str(err)


def test_malformed_sft_and_prompt_rows(tmp_path):
    path = _write_jsonl(tmp_path / "demos.jsonl", [{"messages": [{"role": "user", "content": "hi"}]}])
    with pytest.raises(
        DataValidationError, match=r"demos.jsonl, row 0, column 'messages': found a conversation ending"
    ):
        get_dataset(str(path), "sft")
    path = _write_jsonl(tmp_path / "p.jsonl", [{"prompt": "a"}, {"question": "b"}])
    with pytest.raises(
        DataValidationError,
        match=r"p.jsonl, row 1, column 'prompt': found no field 'prompt' \(fields present: \['question'\]\)",
    ):
        get_dataset(str(path), "prompts")


def test_invalid_json_line_names_file_and_line(tmp_path):
    path = tmp_path / "corpus.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write('{"text": "ok"}\n\n{"text": oops}\n')
    with pytest.raises(DataValidationError, match=r"corpus.jsonl.gz, row 1: found invalid JSON on line 3"):
        get_dataset(str(path), "pretrain")


def test_formats_are_converted(tmp_path):
    (tmp_path / "alpaca.json").write_text(
        json.dumps([{"instruction": "Add", "input": "2 2", "output": "4"}] * 3)
    )
    sft = get_dataset(str(tmp_path / "alpaca.json"), "sft")
    assert sft["test"][0]["messages"] == [
        {"role": "user", "content": "Add\n\n2 2"},
        {"role": "assistant", "content": "4"},
    ]
    _write_jsonl(tmp_path / "pc.jsonl", [{"prompt": "Q", "completion": "A"}] * 2)
    assert get_dataset(str(tmp_path / "pc.jsonl"), "sft")["train"][0] == {"prompt": "Q", "completion": "A"}
    _write_jsonl(tmp_path / "dup.jsonl", [{"prompt": "Q"}, {"prompt": "Q"}, {"prompt": "R"}])
    prompts = get_dataset(str(tmp_path / "dup.jsonl"), "prompts")  # duplicates collapse to one prompt
    assert sorted(p[0]["content"] for s in prompts.values() for p in s["prompt"]) == ["Q", "R"]


def test_single_row_cannot_be_split(tmp_path):
    _write_jsonl(tmp_path / "one.jsonl", [{"text": "only"}])
    with pytest.raises(ValueError, match="too few to carve a test split"):
        get_dataset(str(tmp_path / "one.jsonl"), "pretrain")


def test_save_to_disk_folder(tmp_path):
    DatasetDict(
        {
            "train": Dataset.from_list([{"text": "a"}, {"text": "b"}]),
            "test": Dataset.from_list([{"text": "c"}]),
        }
    ).save_to_disk(tmp_path / "saved")
    ds = get_dataset(str(tmp_path / "saved"), "pretrain")
    assert list(ds["test"]["text"]) == ["c"] and list(ds["train"]["text"]) == ["a", "b"]


def test_hub_ids_go_through_load_dataset(monkeypatch):
    calls = []
    hh = {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!", "rejected": "\n\nHuman: Hi\n\nAssistant: Go away."}

    def fake_load_dataset(name, config=None, revision=None, split=None):
        calls.append((name, config, revision, split))
        return DatasetDict({"train": Dataset.from_list([hh] * 4), "test": Dataset.from_list([hh])})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    ds = get_dataset("Anthropic/hh-rlhf", "preference", config="harmless-base", revision="abc")
    assert calls == [("Anthropic/hh-rlhf", "harmless-base", "abc", None)]
    assert ds["test"][0] == {
        "prompt": [{"role": "user", "content": "Hi"}],
        "chosen": [{"role": "assistant", "content": "Hello!"}],
        "rejected": [{"role": "assistant", "content": "Go away."}],
    }


def test_missing_paths_and_offline_hub_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        get_dataset(str(tmp_path / "nope.jsonl"), "sft")
    with pytest.raises(ValueError, match="could not load 'no-such-org/no-such-set' as a Hub dataset"):
        get_dataset("no-such-org/no-such-set", "sft")
    with pytest.raises(ValueError, match="unknown dataset kind 'dpo'"):
        get_dataset("embedded", "dpo")


def test_export_round_trip(tmp_path):
    out = tmp_path / "export"
    summary = export_embedded(out, SMALL)
    assert summary["datasets"]["embedded-sft"]["rows"] == {"train": 40, "test": 16}
    assert summary["label_noise_measured"]["test"] == 0.0
    assert json.loads((out / "summary.json").read_text()) == json.loads(json.dumps(summary))
    assert "| embedded-preference | train | 80 |" in (out / "summary.md").read_text()
    for kind in ("pretrain", "sft", "preference", "prompts"):
        folder = out / f"embedded-{kind}"
        assert (folder / "README.md").is_file()
        reloaded = get_dataset(str(folder), kind)
        original = get_dataset("embedded", kind, task_config=SMALL)
        for split in ("train", "test"):
            assert reloaded[split].to_list() == original[split].to_list()
        files = {s: str(folder / f"{s}.jsonl") for s in ("train", "test")}
        assert datasets.load_dataset("json", data_files=files)["train"].num_rows == len(original["train"])
    row = get_dataset(str(out / "embedded-preference"), "preference")["test"][0]
    assert gold_score(row["prompt"], row["chosen"][0]["content"]) == row["chosen_score"]


def test_export_refuses_non_empty_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=rf"{tmp_path} is not empty.*overwrite=True"):
        export_embedded(tmp_path, SMALL)
    export_embedded(tmp_path, SMALL, overwrite=True)
    assert (tmp_path / "keep.txt").read_text() == "mine" and (tmp_path / "summary.json").is_file()
