"""Data cards: every card parses, has the required metadata, and embedded cards match the generator."""

from __future__ import annotations

import pytest
from huggingface_hub import DatasetCard

from pipelines.data import build_task
from pipelines.data import task as task_module
from pipelines.data.cards import EMBEDDED_NAMES, embedded_statistics, render_embedded_cards, write_data_cards
from pipelines.data.task import KINDS, TaskConfig, task_space

REQUIRED = (
    "license",
    "language",
    "task_categories",
    "size_categories",
    "source_datasets",
    "configs",
    "pretty_name",
)
REAL = (
    "hh-rlhf-harmless",
    "alpaca-eval-preferences",
    "alpaca-eval-gpt4-sft",
    "wikitext-2-raw",
    "tinyshakespeare",
    "Salesforce__wikitext",
    "HuggingFaceH4__no_robots",
    "Anthropic__hh-rlhf",
)


@pytest.fixture(scope="module")
def cards_dir(repo_root):
    return repo_root / "data_cards"


@pytest.mark.parametrize("name", [*REAL, *EMBEDDED_NAMES.values()])
def test_card_parses_with_required_metadata(cards_dir, name):
    card = DatasetCard.load(cards_dir / name / "README.md")
    data = card.data.to_dict()
    missing = [k for k in REQUIRED if not data.get(k)]
    assert not missing, f"{name}: missing metadata {missing}"
    assert data["language"] == ["en"]
    assert all(c["data_files"] for c in data["configs"])
    for section in ("## Intended use", "## Limitations", "bias"):
        assert section.lower() in card.text.lower(), f"{name}: no {section!r} section"


def test_committed_embedded_cards_equal_fresh_rendering(cards_dir):
    rendered = render_embedded_cards()
    assert set(rendered) == {p.name for p in cards_dir.glob("embedded-*")}
    for name, text in rendered.items():
        committed = (cards_dir / name / "README.md").read_text(encoding="utf-8")
        assert committed == text, f"{name} is stale: run `python -m pipelines.data.cards`"


def test_embedded_card_numbers_match_the_generated_data():
    stats = embedded_statistics()
    cards = render_embedded_cards()
    task = build_task()
    for kind, name in (("sft", "embedded-sft"), ("preference", "embedded-preference"),
                       ("prompts", "embedded-prompts"), ("pretrain", "embedded-pretrain")):  # fmt: skip
        rows = f"| rows | {len(task[kind]['train'])} | {len(task[kind]['test'])} |"
        assert rows in cards[name], (name, rows)
    noise = stats["preference"]["train"]["label_noise_measured"]
    assert abs(noise - TaskConfig().label_noise) < 0.01
    assert stats["preference"]["test"]["label_noise_measured"] == 0.0
    assert f"| label_noise_measured | {noise} | 0.0 |" in cards["embedded-preference"]
    kinds = task["preference"]
    train_n = sum(k == "word_count" for k in kinds["train"]["kind"])
    test_n = sum(k == "word_count" for k in kinds["test"]["kind"])
    assert f"| `word_count` | {train_n} | {test_n} |" in cards["embedded-preference"]
    assert "This dataset holds `word_count` (" in cards["embedded-preference"]
    assert stats["prompts_overlap_with_training"] == {"train": 0, "test": 0}
    assert "(overlap measured: train 0, test 0)" in cards["embedded-prompts"]
    assert stats["sft"]["train"]["max_response_words"] == task_space()["max_answer_words"]


def test_cards_follow_the_config(tmp_path):
    config = TaskConfig(
        seed=1,
        pretrain_train=10,
        pretrain_test=2,
        sft_train=16,
        sft_test=8,
        preference_train=40,
        preference_test=8,
        ppo_prompts=16,
        eval_prompts=8,
        label_noise=0.2,
    )
    paths = write_data_cards(tmp_path, config)
    assert sorted(p.parent.name for p in paths) == sorted(EMBEDDED_NAMES.values())
    card = DatasetCard.load(tmp_path / "embedded-sft" / "README.md")
    assert card.data.size_categories == ["n<1K"]
    assert "| rows | 16 | 8 |" in card.text
    assert (
        "`label_noise` =\n0.2 in the TRAIN split"
        in (tmp_path / "embedded-preference" / "README.md").read_text()
    )


_SMALL = dict(pretrain_train=10, pretrain_test=2, sft_train=64, sft_test=8, preference_train=40,
              preference_test=8, ppo_prompts=16, eval_prompts=8)  # fmt: skip


def test_cards_quote_the_generator_ranges(monkeypatch):
    # The prose of every card quotes the generator's ranges from `task_space()`, so raising a
    # count in task.py cannot leave a card claiming the old range.
    monkeypatch.setattr(task_module, "_WORD_COUNT_N", range(3, 21))
    space = task_space()
    assert space["counts"] == (2, 20) and space["max_answer_words"] == 20
    for name, text in render_embedded_cards(TaskConfig(**_SMALL)).items():
        assert "numbers 0-20 and counts 2-20." in " ".join(text.split()), name
        assert "Answers are at most 20 words." in " ".join(text.split()), name


def test_no_reference_answer_is_longer_than_the_cards_say():
    stats = embedded_statistics(TaskConfig(kinds=KINDS, **_SMALL))
    longest = max(s["max_response_words"] for s in stats["sft"].values())
    assert 0 < longest <= task_space()["max_answer_words"]
