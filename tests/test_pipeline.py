"""End to end: `instructgpt run` on the `ci` recipe (the tiny chain at toy scale).

Every stage runs through `accelerate launch` exactly as a user runs it; the test checks what
a user relies on afterwards: each stage's output loads with the Auto classes, the report has
its numbers and plots, the final card carries the results, and a second run skips it all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import python_block, run_as_copied
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

import pipelines  # noqa: F401  (registers PicoGPT with the Auto classes)

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
STAGES = ("pretrain", "sft", "reward", "ppo", "ppo_ptx", "rloo", "grpo")


def _run(output_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRL_EXPERIMENTAL_SILENCE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", str(REPO / "recipes" / "ci"), "--output-dir", str(output_dir), *extra],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip


@pytest.fixture(scope="module")
def ci_run(tmp_path_factory) -> Path:
    output_dir = tmp_path_factory.mktemp("ci-run")
    result = _run(output_dir)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return output_dir


def test_every_stage_output_loads_with_auto_classes(ci_run):
    for stage in STAGES:
        folder = ci_run / stage
        info = json.loads((folder / "stage_info.json").read_text())
        assert info["complete"] is True and info["stage"] == ("ppo" if stage == "ppo_ptx" else stage)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        ids = tokenizer("What is 2 plus 3?", return_tensors="pt")
        if stage == "reward":
            model = AutoModelForSequenceClassification.from_pretrained(folder)
            assert model(**ids).logits.shape == (1, 1)
        else:
            model = AutoModelForCausalLM.from_pretrained(folder)
            assert model(**ids).logits.shape[-1] == len(tokenizer)
        assert not list(folder.glob("*.tmp")) and not (folder / ".incomplete-final").exists()


def test_report_has_the_numbers_and_files_a_person_reads(ci_run):
    report = json.loads((ci_run / "report.json").read_text())
    for stage in STAGES:
        assert report["stages"][stage]["output_dir"] == str(ci_run / stage)
    reward = report["stages"]["reward"]
    assert 0.0 <= reward["eval_accuracy"] <= 1.0 and 0.0 <= reward["length_baseline_accuracy"] <= 1.0
    evaluation = report["evaluation"]
    assert 0.0 <= evaluation["sft"]["gold_score"] <= 1.0
    for policy in ("ppo", "ppo_ptx", "rloo", "grpo"):
        assert 0.0 <= evaluation[policy]["gold_score"] <= 1.0
        assert 0.0 <= evaluation[policy]["win_rate_vs_sft"] <= 1.0
        assert 0.0 <= evaluation[policy]["sampled_win_rate_vs_sft"] <= 1.0
        assert 0.0 <= evaluation[policy]["sampled_gold_score"] <= 1.0
        assert evaluation[policy]["kl_to_sft"] == pytest.approx(evaluation[policy]["kl_to_sft"])  # a number
    assert report["seed"] == 42 and report["versions"]["trl"].startswith("1.12")
    assert set(report["config_hashes"]) == set(STAGES)
    for name in ("loss_per_stage.png", "ppo_reward_kl.png", "gold_scores.png", "report.md", "samples.md"):
        assert (ci_run / name).stat().st_size > 0, name
    assert "ppo (gold" in (ci_run / "samples.md").read_text()


def test_final_policy_card_carries_results_and_lineage(ci_run):
    from huggingface_hub import ModelCard

    card = ModelCard.load(ci_run / "ppo" / "README.md")
    results = {r.metric_type: r.metric_value for r in card.data.eval_results or []}
    report = json.loads((ci_run / "report.json").read_text())
    assert any(v == pytest.approx(report["evaluation"]["ppo"]["gold_score"]) for v in results.values())
    assert "ppo" in card.data.tags


def test_readme_snippet_answers_with_the_trained_policy(ci_run):
    """README's "Using a trained model" code, run as a user runs it: a fresh interpreter, no
    `import pipelines`, no terminal to answer a trust prompt."""
    readme = (REPO / "README.md").read_text()
    code = python_block(readme[readme.index("## Using a trained model") :])
    assert 'path = "outputs/tiny/ppo"' in code
    code = code.replace('"outputs/tiny/ppo"', repr(str(ci_run / "ppo")))
    run = run_as_copied(code, cwd=ci_run)
    assert run.stdout.strip(), "the snippet prints the policy's answer"


def test_second_run_skips_finished_stages(ci_run):
    result = _run(ci_run, "--no-eval")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("complete, skipped") == len(STAGES)
