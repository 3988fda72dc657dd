"""validate_dataset and check_lengths: each failure names source, row, column, finding and fix."""

from __future__ import annotations

import pytest
from datasets import Dataset
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from pipelines.data.validation import DataValidationError, check_lengths, validate_dataset

U = {"role": "user", "content": "List exactly 2 colors."}
A = {"role": "assistant", "content": "red, blue"}


@pytest.fixture(scope="module")
def word_tokenizer():
    """One token per word or punctuation run; the chat template adds 3 tokens per role marker."""
    tok = Tokenizer(models.WordLevel({"[UNK]": 0, "[EOS]": 1}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", eos_token="[EOS]")
    fast.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} {% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    return fast


def _error(rows, kind):
    with pytest.raises(DataValidationError) as info:
        validate_dataset(Dataset.from_list(rows), kind, "my.jsonl")
    return info.value


def test_valid_datasets_pass():
    validate_dataset(Dataset.from_list([{"text": "hello"}]), "pretrain", "s")
    validate_dataset(Dataset.from_list([{"messages": [U, A]}]), "sft", "s")
    validate_dataset(Dataset.from_list([{"prompt": "Q?", "completion": "A."}]), "sft", "s")
    validate_dataset(Dataset.from_list([{"prompt": [U], "chosen": [A], "rejected": [A]}]), "preference", "s")
    validate_dataset(Dataset.from_list([{"prompt": [U]}]), "prompts", "s")


def test_missing_column():
    err = _error([{"prompt": [U], "chosen": [A]}], "preference")
    assert err.column == "rejected" and err.row is None
    assert str(err).startswith("my.jsonl, column 'rejected': found columns ['prompt', 'chosen']")
    assert "expected columns ['prompt', 'chosen', 'rejected']" in str(err)
    assert "get_dataset(name, kind)" in str(err)


def test_empty_text():
    err = _error([{"text": "ok"}, {"text": "  \n"}], "pretrain")
    assert (err.row, err.column) == (1, "text")
    assert "my.jsonl, row 1, column 'text': found an empty or whitespace-only text" in str(err)
    assert "Fix: drop the row or fill in the text" in str(err)


def test_empty_message_content():
    err = _error([{"messages": [U, {"role": "assistant", "content": " "}]}], "sft")
    assert (
        "row 0, column 'messages': found an empty or whitespace-only content in message 1 (assistant)"
        in str(err)
    )


def test_sft_must_end_with_assistant():
    err = _error([{"messages": [U, A]}, {"messages": [U, A, U]}], "sft")
    assert err.row == 1
    assert "found a conversation ending with a user turn" in str(err)
    assert "expected a conversation ending with an assistant turn" in str(err)
    assert "add the assistant's answer" in str(err)


def test_prompt_must_not_end_with_assistant():
    for kind, row in (
        ("prompts", {"prompt": [U, A]}),
        ("preference", {"prompt": [U, A], "chosen": [A], "rejected": [A]}),
    ):
        err = _error([row], kind)
        assert err.column == "prompt"
        assert "found a prompt that ends with an assistant turn" in str(err)
        assert "Fix: move the final assistant message" in str(err)


def test_wrong_role():
    err = _error([{"messages": [{"role": "human", "content": "hi"}, A]}], "sft")
    assert "found role 'human' in message 0" in str(err)
    assert "expected a role in ('system', 'user', 'assistant')" in str(err)
    assert "'human' -> 'user'" in str(err)


def test_wrong_types():
    err = _error([{"text": 3}], "pretrain")
    assert "found a int (3); expected a string" in str(err)
    err = _error([{"prompt": [{"role": "user", "content": 5}]}], "prompts")
    assert "found content of type int in message 0; expected string content" in str(err)
    err = _error([{"prompt": [U], "chosen": "red", "rejected": [A]}], "preference")
    # a conversational prompt needs conversational answers
    assert (err.column, err.row) == ("chosen", 0) and "non-empty list of {'role', 'content'} messages" in str(
        err
    )


def test_answer_must_end_with_assistant():
    err = _error([{"prompt": [U], "chosen": [U], "rejected": [A]}], "preference")
    assert "column 'chosen': found an answer that ends with a user turn" in str(err)


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown dataset kind 'dpo'"):
        validate_dataset(Dataset.from_list([{"text": "x"}]), "dpo", "s")


def test_check_lengths_sft_counts_chat_template_tokens(word_tokenizer):
    # "<|user|> List exactly 2 colors . <|assistant|> red , blue " -> 3 + 5 + 3 + 3 = 14 tokens
    long = {"messages": [U, {"role": "assistant", "content": "red, blue, green, pink"}]}  # 18 tokens
    report = check_lengths(Dataset.from_list([{"messages": [U, A]}, long]), word_tokenizer, 14, "sft", "demo")
    assert (report.n_rows, report.n_too_long, report.max_tokens, report.too_long_rows) == (2, 1, 18, (1,))
    assert report.mean_tokens == 16.0
    assert "demo: 1 of 2 sft rows (50.0%) are longer than max_length=14 tokens" in report.message
    assert "SFTTrainer TRUNCATES" in report.message


def test_check_lengths_preference_says_pairs_are_dropped(word_tokenizer):
    rows = [{"prompt": [U], "chosen": [A], "rejected": [{"role": "assistant", "content": "red blue green"}]}]
    report = check_lengths(Dataset.from_list(rows), word_tokenizer, 13, "preference", "pairs")
    assert report.n_too_long == 1 and report.max_tokens == 14  # the longer side counts
    assert "RewardTrainer DROPS such pairs SILENTLY" in report.message
    fits = check_lengths(Dataset.from_list(rows), word_tokenizer, 14, "preference", "pairs")
    assert (
        fits.n_too_long == 0 and fits.message == "pairs: all 1 preference rows fit in max_length=14 tokens."
    )


def test_check_lengths_prompts_and_pretrain(word_tokenizer):
    prompts = check_lengths(Dataset.from_list([{"prompt": [U]}]), word_tokenizer, 10, "prompts", "ppo")
    assert prompts.max_tokens == 11  # 3 + 5 + generation prompt 3
    assert "PPO prompts this long are truncated or filtered" in prompts.message
    text = check_lengths(Dataset.from_list([{"text": "a b c"}]), word_tokenizer, 2, "pretrain", "corpus")
    assert (text.max_tokens, text.n_too_long) == (3, 1)


def test_check_lengths_needs_a_chat_template(word_tokenizer):
    plain = PreTrainedTokenizerFast(tokenizer_object=word_tokenizer.backend_tokenizer, unk_token="[UNK]")
    with pytest.raises(ValueError, match="no chat_template"):
        check_lengths(Dataset.from_list([{"prompt": [U]}]), plain, 10, "prompts", "ppo")
