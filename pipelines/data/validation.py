"""Checks that a dataset has the shape a trainer expects, with errors that say how to fix it.

`validate_dataset` raises one `DataValidationError` for the first bad row; `check_lengths` counts
rows longer than the model's ``max_length`` and says what each trainer will do with them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from datasets import Dataset, DatasetDict

__all__ = ["DATASET_KINDS", "DataValidationError", "LengthReport", "check_lengths", "validate_dataset"]

#: The four dataset kinds of the recipe and the trainer that reads each.
DATASET_KINDS: dict[str, str] = {
    "pretrain": "causal-LM pretraining (column `text`)",
    "sft": "SFTTrainer (column `messages`, or `prompt` + `completion`)",
    "preference": "RewardTrainer (columns `prompt`, `chosen`, `rejected`)",
    "prompts": "PPOTrainer / evaluation (column `prompt`)",
}
_ROLES = ("system", "user", "assistant")
_SHOWN = 80


class DataValidationError(ValueError):
    """A dataset row that a trainer cannot use; the message names source, row, column, finding and fix."""

    def __init__(
        self, source: str, row: int | None, column: str | None, found: str, expected: str, fix: str
    ) -> None:
        self.source, self.row, self.column = source, row, column
        self.found, self.expected, self.fix = found, expected, fix
        where = source if row is None else f"{source}, row {row}"
        if column is not None:
            where += f", column '{column}'"
        super().__init__(f"{where}: found {found}; expected {expected}. Fix: {fix}")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _check_kind(kind: str) -> None:
    if kind not in DATASET_KINDS:
        raise ValueError(f"unknown dataset kind {kind!r}; expected one of {sorted(DATASET_KINDS)}")


def _check_text(value: Any, source: str, row: int, column: str) -> None:
    if not isinstance(value, str):
        raise DataValidationError(
            source,
            row,
            column,
            f"a {type(value).__name__} ({_show(value)})",
            "a string",
            f"store `{column}` as text (or drop the row)",
        )
    if not value.strip():
        raise DataValidationError(
            source,
            row,
            column,
            f"an empty or whitespace-only text ({_show(value)})",
            "non-empty text",
            "drop the row or fill in the text",
        )


def _check_messages(
    value: Any, source: str, row: int, column: str, roles: Iterable[str] = _ROLES
) -> list[dict]:
    allowed = tuple(roles)
    if not isinstance(value, list) or not value:
        raise DataValidationError(
            source,
            row,
            column,
            f"{_show(value)}",
            "a non-empty list of {'role', 'content'} messages",
            f"write `{column}` as [{{'role': 'user', 'content': '...'}}, ...]",
        )
    for i, message in enumerate(value):
        if not isinstance(message, Mapping) or "role" not in message or "content" not in message:
            raise DataValidationError(
                source,
                row,
                column,
                f"message {i} = {_show(message)}",
                "a dict with 'role' and 'content'",
                "give every message a 'role' and a 'content'",
            )
        if message["role"] not in allowed:
            raise DataValidationError(
                source,
                row,
                column,
                f"role {message['role']!r} in message {i}",
                f"a role in {allowed}",
                "rename the role (e.g. 'human' -> 'user', 'gpt'/'bot' -> 'assistant')",
            )
        if not isinstance(message["content"], str):
            raise DataValidationError(
                source,
                row,
                column,
                f"content of type {type(message['content']).__name__} in message {i}",
                "string content",
                "store message content as plain text",
            )
        if not message["content"].strip():
            raise DataValidationError(
                source,
                row,
                column,
                f"an empty or whitespace-only content in message {i} ({message['role']})",
                "non-empty text",
                "drop the row or fill in the message",
            )
    return list(value)


def _check_prompt(value: Any, source: str, row: int, conversational: bool) -> None:
    if not conversational:
        _check_text(value, source, row, "prompt")
        return
    messages = _check_messages(value, source, row, "prompt")
    if messages[-1]["role"] == "assistant":
        raise DataValidationError(
            source,
            row,
            "prompt",
            "a prompt that ends with an assistant turn",
            "a prompt ending with a user (or system) turn, for the model to answer",
            "move the final assistant message into `chosen`/`rejected` (preference) or drop it (prompts)",
        )


def _check_answer(value: Any, source: str, row: int, column: str, conversational: bool) -> None:
    if not conversational:
        _check_text(value, source, row, column)
        return
    messages = _check_messages(value, source, row, column)
    if messages[-1]["role"] != "assistant":
        raise DataValidationError(
            source,
            row,
            column,
            f"an answer that ends with a {messages[-1]['role']} turn",
            "assistant message(s) ending with an assistant turn",
            f"put only the assistant answer in `{column}`",
        )


def _require(ds: Dataset, columns: Iterable[str], source: str, kind: str) -> None:
    missing = [c for c in columns if c not in ds.column_names]
    if missing:
        raise DataValidationError(
            source,
            None,
            missing[0],
            f"columns {ds.column_names}",
            f"columns {list(columns)} for a {kind} dataset ({DATASET_KINDS[kind]})",
            "rename the columns, or load the data with pipelines.data.get_dataset(name, kind) which converts "
            "common formats",
        )


def _validate_split(ds: Dataset, kind: str, source: str) -> None:
    if kind == "pretrain":
        _require(ds, ["text"], source, kind)
        for i, text in enumerate(ds["text"]):
            _check_text(text, source, i, "text")
        return
    if kind == "sft":
        if "messages" in ds.column_names:
            for i, messages in enumerate(ds["messages"]):
                messages = _check_messages(messages, source, i, "messages")
                if messages[-1]["role"] != "assistant":
                    raise DataValidationError(
                        source,
                        i,
                        "messages",
                        f"a conversation ending with a {messages[-1]['role']} turn",
                        "a conversation ending with an assistant turn (the demonstration)",
                        "drop the trailing turn(s) or add the assistant's answer",
                    )
                if not any(m["role"] == "user" for m in messages):
                    raise DataValidationError(
                        source,
                        i,
                        "messages",
                        "no user turn",
                        "at least one user message",
                        "add the instruction as a user message",
                    )
            return
        _require(ds, ["prompt", "completion"], source, kind)
        for i, row in enumerate(ds.select_columns(["prompt", "completion"])):
            conversational = isinstance(row["prompt"], list)
            _check_prompt(row["prompt"], source, i, conversational)
            _check_answer(row["completion"], source, i, "completion", conversational)
        return
    if kind == "preference":
        _require(ds, ["prompt", "chosen", "rejected"], source, kind)
        for i, row in enumerate(ds.select_columns(["prompt", "chosen", "rejected"])):
            conversational = isinstance(row["prompt"], list)
            _check_prompt(row["prompt"], source, i, conversational)
            _check_answer(row["chosen"], source, i, "chosen", conversational)
            _check_answer(row["rejected"], source, i, "rejected", conversational)
        return
    _require(ds, ["prompt"], source, kind)
    for i, prompt in enumerate(ds["prompt"]):
        _check_prompt(prompt, source, i, isinstance(prompt, list))


def validate_dataset(ds: Dataset | DatasetDict, kind: str, source: str) -> None:
    """Raise `DataValidationError` at the first row a ``kind`` trainer cannot use; None when all is well.

    Checks required columns, types, empty texts, roles, SFT conversations ending with the assistant's
    demonstration and prompts (preference, prompts) not ending with an assistant turn.
    """
    _check_kind(kind)
    if isinstance(ds, DatasetDict):
        for split, part in ds.items():
            _validate_split(part, kind, f"{source} [{split}]")
    else:
        _validate_split(ds, kind, source)


@dataclasses.dataclass(frozen=True)
class LengthReport:
    """Token lengths of a dataset against ``max_length``; ``message`` says what the trainer will do."""

    source: str
    kind: str
    max_length: int
    n_rows: int
    n_too_long: int
    max_tokens: int
    mean_tokens: float
    too_long_rows: tuple[int, ...]
    message: str

    @property
    def fraction_too_long(self) -> float:
        return self.n_too_long / self.n_rows if self.n_rows else 0.0


def _render(tokenizer: Any, messages: list[dict], generation_prompt: bool) -> str:
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            "the tokenizer has no chat_template, so conversational rows cannot be measured: "
            "set tokenizer.chat_template (or use the project's tokenizer)"
        )
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def _n_tokens(tokenizer: Any, text: str, special: bool) -> int:
    return len(tokenizer(text, add_special_tokens=special)["input_ids"])


def _row_length(tokenizer: Any, row: Mapping[str, Any], kind: str) -> int:
    if kind == "pretrain":
        return _n_tokens(tokenizer, row["text"], True)
    if kind == "prompts":
        prompt = row["prompt"]
        if isinstance(prompt, list):
            return _n_tokens(tokenizer, _render(tokenizer, prompt, True), False)
        return _n_tokens(tokenizer, prompt, True)
    if kind == "sft" and "messages" in row:
        return _n_tokens(tokenizer, _render(tokenizer, row["messages"], False), False)
    prompt = row["prompt"]
    answers = [row["completion"]] if kind == "sft" else [row["chosen"], row["rejected"]]
    if isinstance(prompt, list):
        return max(_n_tokens(tokenizer, _render(tokenizer, prompt + a, False), False) for a in answers)
    return max(_n_tokens(tokenizer, prompt + a, True) for a in answers)


_CONSEQUENCE = {
    "pretrain": "they are truncated at max_length (or split into blocks when texts are packed/grouped)",
    "sft": (
        "SFTTrainer TRUNCATES them at max_length: the end of the assistant answer and its EOS are cut, so "
        "the model may not learn to stop"
    ),
    "preference": (
        "RewardTrainer DROPS such pairs SILENTLY (no warning): the reward model trains and is evaluated on "
        "the shorter pairs only, which biases it toward short answers"
    ),
    "prompts": (
        "PPO prompts this long are truncated or filtered out by the recipe and leave no room for the response"
    ),
}


def check_lengths(ds: Dataset, tokenizer: Any, max_length: int, kind: str, source: str) -> LengthReport:
    """Count rows of ``ds`` longer than ``max_length`` tokens (chat template for conversational rows).

    Preference rows count the longer of prompt+chosen and prompt+rejected; prompts count the
    templated prompt with the generation prompt.
    """
    _check_kind(kind)
    if max_length <= 0:
        raise ValueError(f"max_length must be positive, got {max_length}")
    lengths = [_row_length(tokenizer, row, kind) for row in ds]
    too_long = tuple(i for i, n in enumerate(lengths) if n > max_length)
    n = len(lengths)
    if too_long:
        shown = ", ".join(map(str, too_long[:10])) + (", ..." if len(too_long) > 10 else "")
        message = (
            f"{source}: {len(too_long)} of {n} {kind} rows ({len(too_long) / n:.1%}) are longer than "
            f"max_length={max_length} tokens (longest {max(lengths)}; rows {shown}). {_CONSEQUENCE[kind]}. "
            "Raise max_length or filter these rows before training."
        )
    else:
        message = f"{source}: all {n} {kind} rows fit in max_length={max_length} tokens."
    return LengthReport(
        source=source,
        kind=kind,
        max_length=max_length,
        n_rows=n,
        n_too_long=len(too_long),
        max_tokens=max(lengths, default=0),
        mean_tokens=sum(lengths) / n if n else 0.0,
        too_long_rows=too_long,
        message=message,
    )
