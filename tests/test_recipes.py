"""Every YAML recipe parses with its stage's dataclasses, and the chains point where they should."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipelines.configs import parse_recipe_args, recipe_dataclasses
from pipelines.runner import STAGES as RUNNER_STAGES

REPO = Path(__file__).resolve().parents[1]
STAGES = {stage.name for stage in RUNNER_STAGES}
YAMLS = sorted(p for p in (REPO / "recipes").rglob("*.yaml"))


def test_every_recipe_dir_is_covered():
    assert {p.parent.relative_to(REPO / "recipes").as_posix() for p in YAMLS} >= {
        "tiny", "tiny/variants", "tiny/qlora", "ci", "small", "base",
    }  # fmt: skip
    assert all(p.stem in STAGES for p in YAMLS), [p for p in YAMLS if p.stem not in STAGES]


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: p.relative_to(REPO / "recipes").as_posix())
def test_yaml_parses_with_its_stage_dataclasses(path, tmp_path):
    config = yaml.safe_load(path.read_text())
    # The GPU recipes ask for bf16, which transformers refuses on a CPU machine: parse them as fp32.
    extra = ["--bf16", "false"] if config.get("bf16") else []
    script_args, training_args, model_args = parse_recipe_args(
        recipe_dataclasses(path.stem), ["--config", str(path), "--output_dir", str(tmp_path / "out"), *extra]
    )
    assert training_args.seed == config["seed"]
    assert script_args.dataset_name == config.get("dataset_name", "embedded")
    if path.stem != "pretrain":
        assert model_args.model_name_or_path, "every stage after pretraining names its starting model"
    if path.stem in ("ppo", "ppo_ptx"):
        assert training_args.reward_model_path == config["reward_model_path"]
        assert training_args.num_sample_generations == 0, "sampling between updates breaks exact PPO resume"
    if path.stem == "ppo_ptx":
        assert script_args.ptx_coef > 0


@pytest.mark.parametrize("recipe_dir", ["tiny", "ci", "small", "base"])
def test_chain_points_at_the_previous_stage_output(recipe_dir):
    folder = REPO / "recipes" / recipe_dir
    load = {p.stem: yaml.safe_load(p.read_text()) for p in folder.glob("*.yaml")}
    out = {stage: cfg["output_dir"] for stage, cfg in load.items()}
    assert load["sft"]["model_name_or_path"] == out["pretrain"]
    assert load["reward"]["model_name_or_path"] == out["sft"]
    assert load["ppo"]["model_name_or_path"] == out["sft"]
    assert load["ppo"]["reward_model_path"] == out["reward"]


def test_cpu_recipes_do_not_ask_for_bf16():
    for path in YAMLS:
        if path.parent.name in ("tiny", "ci", "variants"):
            assert yaml.safe_load(path.read_text()).get("bf16") is False, path
