"""Datasets of the recipe: the embedded task, loaders, validation, data cards and export."""

from pipelines.data.cards import render_embedded_cards, write_data_cards
from pipelines.data.export import export_embedded
from pipelines.data.loaders import TEST_FRACTION, get_dataset, parse_hh_dialogue
from pipelines.data.task import (
    CATEGORIES,
    DEFAULT_KINDS,
    KINDS,
    RECIPE_TASK_SEED,
    Instruction,
    TaskConfig,
    build_task,
    gold_score,
    judge_batch,
    parse_instruction,
)
from pipelines.data.validation import (
    DATASET_KINDS,
    DataValidationError,
    LengthReport,
    check_lengths,
    validate_dataset,
)

__all__ = [
    "CATEGORIES",
    "DATASET_KINDS",
    "DEFAULT_KINDS",
    "KINDS",
    "RECIPE_TASK_SEED",
    "TEST_FRACTION",
    "DataValidationError",
    "Instruction",
    "LengthReport",
    "TaskConfig",
    "build_task",
    "check_lengths",
    "export_embedded",
    "get_dataset",
    "gold_score",
    "judge_batch",
    "parse_hh_dialogue",
    "parse_instruction",
    "render_embedded_cards",
    "validate_dataset",
    "write_data_cards",
]
