"""The tokenizer and chat template: what SFT trains on, what PPO generates and what the reward model reads agree."""

from __future__ import annotations

from transformers import AutoTokenizer

CONVERSATION = [
    {"role": "user", "content": "Repeat the word fox 3 times."},
    {"role": "assistant", "content": "fox fox fox"},
]


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False).input_ids


def test_an_answers_first_word_is_the_same_token_as_elsewhere(tiny_tokenizer):
    ids = _ids(tiny_tokenizer, tiny_tokenizer.apply_chat_template(CONVERSATION, tokenize=False))
    start = ids.index(tiny_tokenizer.convert_tokens_to_ids("<|assistant|>")) + 1
    answer = ids[start : ids.index(tiny_tokenizer.eos_token_id)]
    # "fox fox fox": three copies of one token. Without a prefix space the first would be spelt "f", "ox".
    assert len(answer) == 3 and len(set(answer)) == 1
    assert answer[0] in _ids(tiny_tokenizer, "<|user|>Repeat the word fox 3 times.")


def test_conversation_tokens_are_prompt_tokens_then_answer_then_eos(tiny_tokenizer):
    # PPO scores query + generated ids; the reward model was trained on the whole rendered conversation.
    whole = _ids(tiny_tokenizer, tiny_tokenizer.apply_chat_template(CONVERSATION, tokenize=False))
    prompt = _ids(
        tiny_tokenizer,
        tiny_tokenizer.apply_chat_template(CONVERSATION[:1], tokenize=False, add_generation_prompt=True),
    )
    answer = _ids(tiny_tokenizer, CONVERSATION[1]["content"])
    assert whole == prompt + answer + [tiny_tokenizer.eos_token_id]
    assert tiny_tokenizer.decode(answer).strip() == CONVERSATION[1]["content"]


def test_assistant_mask_covers_the_answer_and_its_eos(tiny_tokenizer):
    out = tiny_tokenizer.apply_chat_template(
        CONVERSATION, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = out["input_ids"], out["assistant_masks"]
    masked = [i for i, m in zip(ids, mask, strict=True) if m]
    assert masked == _ids(tiny_tokenizer, "fox fox fox") + [tiny_tokenizer.eos_token_id]


def test_saved_tokenizer_tokenizes_the_same(tiny_tokenizer, tmp_path):
    tiny_tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = tiny_tokenizer.apply_chat_template(CONVERSATION, tokenize=False)
    assert _ids(loaded, text) == _ids(tiny_tokenizer, text)
    assert loaded.pad_token_id != loaded.eos_token_id
