"""The `instructgpt` command: `data`, `push-data`, `pull` and `run`'s argument errors.

Commands run in this process through `pipelines.cli.main` (what the console script calls) and are judged by
what a user sees: the exit code, the message on stderr, the files. A full `instructgpt run` is
`tests/test_pipeline.py`; push of a stage folder is `tests/test_hub_pipeline.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.cli import main

REPO = Path(__file__).resolve().parents[1]
DATASETS = ("embedded-pretrain", "embedded-sft", "embedded-preference", "embedded-prompts")


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """`instructgpt data --output-dir D`, once for the module (the tests below do not write into it)."""
    out = tmp_path_factory.mktemp("cli-data") / "data"
    assert main(["data", "--output-dir", str(out)]) == 0
    return out


# ----------------------------------------------------------------------------------------- data
def test_data_writes_the_four_datasets_with_cards_and_a_summary(exported):
    summary = json.loads((exported / "summary.json").read_text())
    assert sorted(summary["datasets"]) == sorted(DATASETS)
    assert sorted(p.name for p in exported.iterdir()) == sorted([*DATASETS, "summary.json", "summary.md"])
    columns = {
        "embedded-pretrain": {"text"},
        "embedded-sft": {"messages"},
        "embedded-preference": {"chosen", "rejected"},
        "embedded-prompts": {"prompt"},
    }
    for name in DATASETS:
        folder = exported / name
        rows = summary["datasets"][name]["rows"]
        assert set(rows) == {"train", "test"} and rows["train"] > rows["test"] > 0
        for split, n in rows.items():
            data = _lines(folder / f"{split}.jsonl")
            assert len(data) == n, (name, split)
            assert columns[name] <= set(data[0]), (name, data[0])
        card = (folder / "README.md").read_text()
        assert card.startswith("---\n") and "license:" in card and "pretty_name:" in card
        assert "path: train.jsonl" in card  # the card's `configs` point `load_dataset` at the files
    summary_md = (exported / "summary.md").read_text()
    for name in DATASETS:
        assert f"| {name} | train | {summary['datasets'][name]['rows']['train']} |" in summary_md


def test_data_refuses_a_non_empty_folder_without_overwrite(tmp_path, capsys):
    out = tmp_path / "data"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["data", "--output-dir", str(out)]) == 2
    captured = capsys.readouterr()
    assert f"instructgpt data: error: output folder {out} is not empty" in captured.err
    assert "--overwrite" in captured.err and captured.out == ""
    assert [p.name for p in out.iterdir()] == ["notes.txt"]  # nothing was written

    assert main(["data", "--output-dir", str(out), "--overwrite"]) == 0
    assert "embedded-sft: {'train':" in capsys.readouterr().out
    assert (out / "notes.txt").read_text() == "mine"  # --overwrite replaces the export, not the user's files
    assert all((out / name / "train.jsonl").is_file() for name in DATASETS)


# ----------------------------------------------------------------------------------------- push-data
def test_push_data_then_load_dataset(exported, hub, capsys):
    import datasets
    from huggingface_hub import DatasetCard, HfApi

    repo_id = "tester/cli-embedded-sft"
    assert main(["push-data", str(exported / "embedded-sft"), repo_id]) == 0
    sha = HfApi().dataset_info(repo_id).sha
    assert f"to dataset {repo_id}@main (commit {sha})" in capsys.readouterr().out

    loaded = datasets.load_dataset(repo_id)
    for split in ("train", "test"):
        local = _lines(exported / "embedded-sft" / f"{split}.jsonl")
        assert loaded[split].num_rows == len(local)
        assert loaded[split][0] == local[0] and loaded[split][len(local) - 1] == local[-1]
    card = DatasetCard.load(repo_id, repo_type="dataset")
    local_card = DatasetCard.load(exported / "embedded-sft" / "README.md", repo_type="dataset")
    assert (
        card.data.pretty_name == local_card.data.pretty_name and card.data.license == local_card.data.license
    )

    # a second push to the same branch is refused with the way out, and changes nothing
    assert main(["push-data", str(exported / "embedded-sft"), repo_id]) == 2
    err = capsys.readouterr().err
    assert f"'{repo_id}'" in err and "--overwrite" in err and "--revision" in err
    assert HfApi().dataset_info(repo_id).sha == sha


# ----------------------------------------------------------------------------------------- pull
@pytest.fixture
def small_repo(hub, tmp_path) -> str:
    from huggingface_hub import HfApi

    repo_id = "tester/cli-pull"
    api = HfApi()
    api.create_repo(repo_id, exist_ok=True)
    api.upload_file(path_or_fileobj=b'{"model_type": "x"}', path_in_repo="config.json", repo_id=repo_id)
    return repo_id


def test_pull_prints_the_snapshot_folder(small_repo, capsys):
    from huggingface_hub import HfApi

    assert main(["pull", small_repo]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.name == HfApi().model_info(small_repo).sha
    assert json.loads((path / "config.json").read_text()) == {"model_type": "x"}


def test_pull_errors_exit_2_naming_the_repo_and_the_fix(small_repo, hub, capsys, monkeypatch):
    def pull_error(*argv: str) -> str:
        assert main(["pull", *argv]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.startswith("instructgpt pull: error: ") and "Traceback" not in captured.err
        return captured.err

    err = pull_error("tester/cli-no-such-repo")
    assert "repository 'tester/cli-no-such-repo'" in err and "was not found" in err
    assert "repo id" in err and "HF_TOKEN" in err
    # a model repo pulled as a dataset: the message points at the repo type
    err = pull_error(small_repo, "--repo-type", "dataset")
    assert f"dataset repository '{small_repo}'" in err and "repo type" in err

    err = pull_error(small_repo, "--revision", "no-such-branch")
    assert f"Revision 'no-such-branch' does not exist in the repository '{small_repo}'" in err
    assert "Existing branches and tags: main" in err

    monkeypatch.setenv("HF_TOKEN", "hf_" + "RejectedByTheServer000000000")
    err = pull_error(small_repo)
    assert "rejected the token" in err and f"'{small_repo}'" in err and "HF_TOKEN" in err
    assert "hf_RejectedByTheServer" not in err  # the token itself is never echoed

    # the fixes name what this command accepts: tokens only through the environment or `hf auth login`
    for err in (pull_error("tester/cli-no-such-repo"), pull_error(small_repo)):
        assert "--token" not in err
    with pytest.raises(SystemExit) as exit_info:
        main(["pull", small_repo, "--token", "hf_x"])
    assert exit_info.value.code == 2


def test_pull_offline_without_a_cached_copy_says_how_to_get_one(capsys):
    # conftest sets HF_HUB_OFFLINE=1 for the whole session; no `hub` fixture here
    assert main(["pull", "tester/cli-never-pulled", "--revision", "v1"]) == 2
    err = capsys.readouterr().err
    assert "repository 'tester/cli-never-pulled' at revision 'v1' is not in the local cache" in err
    assert "HF_HUB_OFFLINE" in err


# ----------------------------------------------------------------------------------------- run
def test_run_rejects_a_missing_recipe_dir(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(tmp_path / "no-such-recipes"), "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"instructgpt run: error: recipe directory {tmp_path / 'no-such-recipes'} does not exist" in err
    assert not out.exists()  # nothing was started

    empty = tmp_path / "empty-recipes"
    empty.mkdir()
    assert main(["run", str(empty), "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{empty} holds no stage YAML (pretrain.yaml, sft.yaml" in err
    assert not out.exists()


def test_run_rejects_unknown_stage_names(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["run", str(REPO / "recipes" / "ci"), "--output-dir", str(out), "--stages", "sft", "rewards"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "instructgpt run: error: --stages rewards: no such stage YAML in" in err
    assert "(found: pretrain, sft, reward, ppo, ppo_ptx, rloo, grpo)" in err
    assert not out.exists()

    assert (
        main(
            [
                "run",
                str(REPO / "recipes" / "ci"),
                "--output-dir",
                str(out),
                "--accelerate-config",
                "nope.yaml",
            ]
        )
        == 2
    )
    assert "accelerate config nope.yaml does not exist" in capsys.readouterr().err
    assert not out.exists()
