"""Push stage outputs and datasets to the Hugging Face Hub, pull them back for offline use.

The functions behind `instructgpt push / push-data / pull` and the recipes' `push_to_hub` option. They use
the standard `huggingface_hub` client, so they work with the real Hub and with any Hub-compatible endpoint
(`HF_ENDPOINT`, e.g. `pipelines.testing.HubServer`). Tokens come from the `token` argument or the usual
client sources (`HF_TOKEN`, `hf auth login`); they are never logged nor written to any file or card.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import HfApi, constants, get_token, snapshot_download
from huggingface_hub.errors import (
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

__all__ = [
    "BranchNotEmptyError",
    "HubError",
    "REDACTED",
    "pull",
    "push_dataset",
    "push_stage",
    "redact_secrets",
    "resolve_source",
]

logger = logging.getLogger(__name__)

REDACTED = "<redacted>"
HF_TOKEN_PATTERN = re.compile(r"hf_[A-Za-z0-9]{20,}")

# Never uploaded: trainer checkpoints and logs, optimizer/scheduler/RNG states, pickled training arguments
# (they hold `hub_token`), and files that look like credentials. Patterns match any path component.
EXCLUDED_PATTERNS = (
    "checkpoint-*", "runs", "wandb", "logs", "__pycache__", ".git", ".cache", ".ipynb_checkpoints",
    "optimizer.pt", "optimizer.bin", "optimizer*.safetensors", "scheduler.pt", "scaler.pt", "rng_state*.pth",
    "global_step*", "training_args.bin", "*.tmp",
    ".env", ".env.*", "*.pem", "*.key", ".netrc", ".git-credentials", "token", "*.token", "stored_tokens",
    ".huggingface",
)  # fmt: skip
_TEXT_SUFFIXES = {
    ".json",
    ".yaml",
    ".yml",
    ".md",
    ".txt",
    ".py",
    ".jinja",
    ".cfg",
    ".toml",
    ".ini",
    ".csv",
    ".jsonl",
}
_TOKENIZER_FILES = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"}

_SECRET_KEYS = {
    "token", "hub_token", "hf_token", "auth_token", "access_token", "api_token", "bearer_token",
    "password", "passwd", "secret", "secret_key", "client_secret", "api_key", "apikey", "private_key",
    "credentials", "authorization",
}  # fmt: skip
# `<x>_token` keys of tokenizers and model configs name vocabulary entries, not credentials.
_VOCAB_TOKEN_PREFIXES = {
    "pad", "eos", "bos", "unk", "sep", "cls", "mask", "start", "end", "image", "audio", "video", "boi", "eoi",
    "boa", "eoa", "eot", "eom", "fim_prefix", "fim_middle", "fim_suffix", "fim_pad", "think", "tool", "system",
    "user", "assistant", "decoder_start", "vision_start", "vision_end",
}  # fmt: skip


class HubError(RuntimeError):
    """A Hub operation failed; the message names the repository/revision and the fix."""


class BranchNotEmptyError(HubError):
    """The target branch already holds a previous push and `overwrite` was not given."""


# ------------------------------------------------------------------------------------------ secrets
def _is_secret_key(key: str) -> bool:
    key = key.lower().replace("-", "_")
    if key in _SECRET_KEYS:
        return True
    for suffix in ("_token", "_password", "_passwd", "_api_key", "_apikey", "_secret", "_secret_key"):
        if key.endswith(suffix):
            return not (suffix == "_token" and key[: -len(suffix)] in _VOCAB_TOKEN_PREFIXES)
    return False


def redact_secrets(obj: Any, *, known_secrets: Iterable[str] = (), keys: bool = True) -> Any:
    """A copy of `obj` (nested dicts/lists/tuples) with secrets replaced by `"<redacted>"`.

    Values of secret-looking keys (`token`, `hub_token`, `*_token` except tokenizer entries like `pad_token`,
    `password`, `api_key`, ...) are redacted when they are non-empty strings; in every string, Hugging Face
    tokens (`hf_...`) and the literal `known_secrets` are replaced. `keys=False` skips the key-based rule.
    """
    literals = sorted({s for s in known_secrets if s and len(s) >= 4}, key=len, reverse=True)

    def scrub(text: str) -> str:
        for literal in literals:
            text = text.replace(literal, REDACTED)
        return HF_TOKEN_PATTERN.sub(REDACTED, text)

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: (REDACTED if keys and isinstance(k, str) and _is_secret_key(k) and isinstance(v, str) and v
                    else walk(v))
                for k, v in value.items()
            }  # fmt: skip
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, tuple):
            return tuple(walk(v) for v in value)
        if isinstance(value, str):
            return scrub(value)
        return value

    return walk(obj)


def _token(token: str | None) -> str | None:
    return token if token is not None else get_token()


# ------------------------------------------------------------------------------------------ errors
def _describe(repo_id: str, repo_type: str) -> str:
    return f"{repo_type} repository '{repo_id}'" if repo_type != "model" else f"repository '{repo_id}'"


def _hub_error(err: Exception, repo_id: str, revision: str | None, repo_type: str, api: HfApi) -> HubError:
    """Turn a `huggingface_hub` error into a `HubError` that says what is wrong and what to do."""
    where = f"{_describe(repo_id, repo_type)} on {api.endpoint}"
    if isinstance(err, RevisionNotFoundError):
        try:
            refs = api.list_repo_refs(repo_id, repo_type=repo_type)
            known = ", ".join(sorted(b.name for b in refs.branches) + sorted(t.name for t in refs.tags))
        except HfHubHTTPError:
            known = "unknown"
        return HubError(
            f"Revision '{revision}' does not exist in the {where}. Existing branches and tags: {known}. "
            "Pass one of them (or a commit sha) as the revision."
        )
    if isinstance(err, RepositoryNotFoundError):
        return HubError(
            f"The {where} was not found. Check the repo id"
            + (" and the repo type" if repo_type == "model" else f" (repo type: {repo_type})")
            + "; if it is private, use a token with read access: set HF_TOKEN or run `hf auth login` "
            "(in Python, the `token` argument)."
        )
    if isinstance(err, OfflineModeIsEnabled):
        return HubError(
            f"Cannot reach the {where}: offline mode is enabled (HF_HUB_OFFLINE=1). Unset HF_HUB_OFFLINE to "
            "download or push."
        )
    if isinstance(err, HfHubHTTPError) and err.response is not None:
        status = err.response.status_code
        if status == 401 and api.token is None:
            return HubError(
                f"The Hub at {api.endpoint} needs a token for the {_describe(repo_id, repo_type)} (401): set "
                "HF_TOKEN or run `hf auth login` (in Python, the `token` argument)."
            )
        if status == 401:
            return HubError(
                f"The Hub at {api.endpoint} rejected the token used for the {_describe(repo_id, repo_type)} "
                "(401 Unauthorized). Set HF_TOKEN to a valid token or run `hf auth login` (in Python, the `token` "
                "argument), or unset HF_TOKEN to read a public repository anonymously."
            )
        if status == 403:
            return HubError(
                f"The token has no permission for the {where} (403 Forbidden). Use a token with write access "
                "to this namespace."
            )
    return HubError(f"Hub request for the {where} failed: {err}")


# ------------------------------------------------------------------------------------------ staging
def _excluded(rel: Path) -> bool:
    return any(fnmatch.fnmatchcase(part, pattern) for part in rel.parts for pattern in EXCLUDED_PATTERNS)


def _stage_file(src: Path, dst: Path, known_secrets: Iterable[str]) -> None:
    """Copy `src` to `dst`, redacting secrets from text files; refuse binaries that contain a known secret."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    literals = [s for s in known_secrets if s]
    if src.suffix.lower() not in _TEXT_SUFFIXES:
        if literals:
            data = src.read_bytes()
            for literal in literals:
                if literal.encode() in data:
                    raise HubError(
                        f"{src} contains the Hub token: refusing to upload it. Remove the secret first."
                    )
        shutil.copy2(src, dst)
        return
    text = src.read_text(encoding="utf-8", errors="surrogateescape")
    redacted: str | None = None
    if src.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if data is not None:
            clean = redact_secrets(data, known_secrets=literals, keys=src.name not in _TOKENIZER_FILES)
            if clean != data:
                redacted = json.dumps(clean, indent=2, ensure_ascii=False) + "\n"
    elif src.suffix.lower() in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            data = None
        if isinstance(data, (dict, list)):
            clean = redact_secrets(data, known_secrets=literals)
            if clean != data:
                redacted = yaml.safe_dump(clean, sort_keys=False, allow_unicode=True)
    if redacted is None:
        scrubbed = redact_secrets(text, known_secrets=literals)
        redacted = scrubbed if scrubbed != text else None
    if redacted is None:
        shutil.copy2(src, dst)
    else:
        logger.info("Redacted secrets from %s before upload", src.name)
        dst.write_text(redacted, encoding="utf-8", errors="surrogateescape")


def _stage_folder(src: Path, dst: Path, known_secrets: Iterable[str], skip: Iterable[str] = ()) -> list[str]:
    """Copy the uploadable files of `src` into `dst`; returns their relative paths."""
    skip = set(skip)
    copied = []
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if path.is_dir() or _excluded(rel) or rel.as_posix() in skip:
            continue
        _stage_file(path, dst / rel, known_secrets)
        copied.append(rel.as_posix())
    return copied


def _check_remote_code(folder: Path) -> None:
    """A config with `auto_map` must ship the code files it names, or nobody can load the model."""
    config_path = folder / "config.json"
    if not config_path.is_file():
        return
    auto_map = json.loads(config_path.read_text()).get("auto_map") or {}
    for ref in auto_map.values():
        for item in ref if isinstance(ref, list) else [ref]:
            if not item or "--" in item:  # `repo--module.Class` points at code in another repository
                continue
            module = item.rsplit(".", 1)[0]
            if not (folder / f"{module}.py").is_file():
                raise HubError(
                    f"{config_path} maps to `{item}` (trust_remote_code) but {module}.py is missing from "
                    f"{folder}: save the model with `save_pretrained` after `import pipelines` so its code is copied."
                )


def _merge_adapter(adapter_dir: Path, dst: Path) -> None:
    """Merge the PEFT adapter in `adapter_dir` into its base model and save the result in `dst`."""
    from peft import PeftConfig, PeftModel
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    import pipelines  # noqa: F401 - registers PicoGPT with the Auto classes

    peft_config = PeftConfig.from_pretrained(str(adapter_dir))
    base_name = peft_config.base_model_name_or_path
    if not base_name:
        raise HubError(f"{adapter_dir}/adapter_config.json does not name its base model: cannot merge.")
    task = str(getattr(peft_config, "task_type", "") or "")
    auto = AutoModelForSequenceClassification if task.endswith("SEQ_CLS") else AutoModelForCausalLM
    kwargs: dict[str, Any] = {"trust_remote_code": True}
    revision = getattr(peft_config, "revision", None)
    if not revision:  # TRL's trainers leave it unset; the stage recorded the revision it trained on
        base_info = (_read_json(adapter_dir / "stage_info.json") or {}).get("base_model")
        if isinstance(base_info, dict) and base_info.get("name_or_path") == base_name:
            revision = base_info.get("revision")
    if revision:
        kwargs["revision"] = revision
    if auto is AutoModelForSequenceClassification:
        kwargs["num_labels"] = 1
    base = auto.from_pretrained(base_name, **kwargs)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(str(dst))


def _needs_card(readme: Path) -> bool:
    """No README.md, or only the empty template `peft`/`huggingface_hub` write (`[More Information Needed]`)."""
    if not readme.is_file():
        return True
    if "[More Information Needed]" in readme.read_text(encoding="utf-8", errors="replace"):
        logger.info("Replacing the template model card in %s with a generated one", readme.parent)
        return True
    return False


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# ------------------------------------------------------------------------------------------ push
def _prepare_branch(
    api: HfApi, repo_id: str, repo_type: str, revision: str | None, private: bool, overwrite: bool
) -> tuple[str, bool]:
    """Create the repo and branch if needed; refuse a branch that already holds a push unless `overwrite`.

    Returns the branch and whether its content is to be replaced by the upload (a branch created now from
    main starts as a copy of main, which the push must not keep; or `overwrite`).
    """
    branch = revision or constants.DEFAULT_REVISION
    created = False
    try:
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        if branch != constants.DEFAULT_REVISION:
            refs = api.list_repo_refs(repo_id, repo_type=repo_type)
            if branch not in {b.name for b in refs.branches}:
                api.create_branch(repo_id, branch=branch, repo_type=repo_type)
                created = True
        files = api.list_repo_files(repo_id, repo_type=repo_type, revision=branch)
    except HfHubHTTPError as err:
        raise _hub_error(err, repo_id, branch, repo_type, api) from err
    existing = [f for f in files if f != ".gitattributes"]
    if existing and not overwrite and not created:
        raise BranchNotEmptyError(
            f"Branch '{branch}' of the {_describe(repo_id, repo_type)} on {api.endpoint} already has files from a "
            f"previous push ({', '.join(sorted(existing)[:5])}{', ...' if len(existing) > 5 else ''}). Pass "
            "overwrite=True (--overwrite) to replace them, or choose another branch with revision=... (--revision)."
        )
    return branch, bool(existing) and (overwrite or created)


def push_stage(
    output_dir: str | os.PathLike,
    repo_id: str,
    *,
    revision: str | None = None,
    private: bool = False,
    token: str | None = None,
    overwrite: bool = False,
    merge_adapter: bool = False,
    commit_message: str | None = None,
) -> str:
    """Upload a stage output folder to `repo_id` (on branch `revision`, default main); returns the commit sha.

    Uploads weights, config, tokenizer and the model's code files, plus a model card (`README.md`, built by
    `pipelines.model_card` when the folder has none, or only an empty template), without `checkpoint-*`, `runs/`, optimizer states or
    credentials; secrets in JSON/YAML/text files are redacted. An adapter folder (`adapter_config.json`) is
    pushed as an adapter, or merged into its base model first when `merge_adapter=True`. Refuses to replace a
    previous push on the same branch unless `overwrite=True` (which then mirrors the folder exactly).
    """
    from pipelines.model_card import build_model_card

    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        raise HubError(f"Cannot push {output_dir}: it is not a folder.")
    token = _token(token)
    api = HfApi(token=token)
    known = [token] if token else []
    is_adapter = (output_dir / "adapter_config.json").is_file()
    if merge_adapter and not is_adapter:
        raise HubError(f"merge_adapter=True but {output_dir} has no adapter_config.json.")

    branch, replace = _prepare_branch(api, repo_id, "model", revision, private, overwrite)
    with tempfile.TemporaryDirectory(prefix="pipelines-push-") as tmp:
        staging = Path(tmp)
        if merge_adapter:
            logger.info("Merging the adapter in %s into its base model", output_dir)
            _merge_adapter(output_dir, staging)
            skip = {"adapter_config.json", "adapter_model.safetensors", "adapter_model.bin", "README.md"}
            skip |= {p.name for p in staging.iterdir()}  # the merged weights, config and code win
            _stage_folder(output_dir, staging, known, skip=skip)
        else:
            _stage_folder(output_dir, staging, known)
        _check_remote_code(staging)
        stage_info = _read_json(staging / "stage_info.json")
        if stage_info is not None:
            stage_info["hub"] = {"repo_id": repo_id, "revision": None, "branch": branch}
            if merge_adapter:
                stage_info["merged_adapter"] = True
            (staging / "stage_info.json").write_text(
                json.dumps(redact_secrets(stage_info, known_secrets=known), indent=2)
            )
        if _needs_card(staging / "README.md"):
            card = build_model_card(staging, repo_id=repo_id)
            (staging / "README.md").write_text(
                redact_secrets(str(card), known_secrets=known), encoding="utf-8"
            )
        stage = (stage_info or {}).get("stage", "model")
        message = commit_message or f"Upload {stage} stage" + (" (merged adapter)" if merge_adapter else "")
        try:
            info = api.upload_folder(
                folder_path=staging,
                repo_id=repo_id,
                repo_type="model",
                revision=branch,
                commit_message=message,
                delete_patterns="*" if replace else None,
            )
        except HfHubHTTPError as err:
            raise _hub_error(err, repo_id, branch, "model", api) from err
    sha = info.oid
    logger.info("Pushed %s to %s (branch %s, commit %s)", output_dir, info.commit_url, branch, sha)
    _record_push(output_dir, repo_id, branch, sha)
    return sha


def _record_push(output_dir: Path, repo_id: str, branch: str, sha: str) -> None:
    """Note the pushed commit in the local `stage_info.json`, so later stages can name it as their source."""
    path = output_dir / "stage_info.json"
    info = _read_json(path)
    if info is None:
        return
    info["hub"] = {"repo_id": repo_id, "revision": sha, "branch": branch}
    try:
        path.write_text(json.dumps(info, indent=2))
    except OSError:
        logger.warning("Could not record the pushed revision in %s", path)


def push_dataset(
    data_dir_or_datasetdict: Any,
    repo_id: str,
    *,
    card_path: str | os.PathLike | None = None,
    revision: str | None = None,
    token: str | None = None,
    overwrite: bool = False,
    private: bool = False,
    commit_message: str | None = None,
) -> str:
    """Push a prepared dataset (a folder of data files, or a `datasets.Dataset`/`DatasetDict`) with its card.

    The card (`card_path`, else the folder's `README.md`) becomes the dataset repo's `README.md`; for a
    `DatasetDict`, its YAML is merged with the `configs`/`dataset_info` that `push_to_hub` writes, so
    `datasets.load_dataset(repo_id)` keeps working. Returns the commit sha. Same overwrite rule as `push_stage`.
    """
    from huggingface_hub import DatasetCard

    token = _token(token)
    api = HfApi(token=token)
    known = [token] if token else []
    card_text = Path(card_path).read_text(encoding="utf-8") if card_path is not None else None
    branch, replace = _prepare_branch(api, repo_id, "dataset", revision, private, overwrite)
    message = commit_message or "Upload dataset"
    try:
        if isinstance(data_dir_or_datasetdict, (str, os.PathLike)):
            data_dir = Path(data_dir_or_datasetdict)
            if not data_dir.is_dir():
                raise HubError(f"Cannot push {data_dir}: it is not a folder.")
            with tempfile.TemporaryDirectory(prefix="pipelines-push-data-") as tmp:
                staging = Path(tmp)
                files = _stage_folder(data_dir, staging, known)
                if not [f for f in files if f != "README.md"]:
                    raise HubError(f"{data_dir} holds no data files to push.")
                if card_text is not None:
                    (staging / "README.md").write_text(
                        redact_secrets(card_text, known_secrets=known), encoding="utf-8"
                    )
                elif not (staging / "README.md").is_file():
                    logger.warning("No data card for %s: pushing a minimal README.md", data_dir)
                    (staging / "README.md").write_text(_minimal_data_card(repo_id, files), encoding="utf-8")
                info = api.upload_folder(
                    folder_path=staging,
                    repo_id=repo_id,
                    repo_type="dataset",
                    revision=branch,
                    commit_message=message,
                    delete_patterns="*" if replace else None,
                )
            return info.oid
        push_to_hub = getattr(data_dir_or_datasetdict, "push_to_hub", None)
        if push_to_hub is None:
            raise TypeError(
                f"push_dataset expects a folder or a datasets.DatasetDict, got {type(data_dir_or_datasetdict)}"
            )
        info = push_to_hub(repo_id, revision=branch, token=token, private=private, commit_message=message)
        if card_text is None:
            return info.oid
        readme = api.hf_hub_download(repo_id, "README.md", repo_type="dataset", revision=branch)
        generated = DatasetCard.load(readme, repo_type="dataset").data.to_dict()
        card = DatasetCard(redact_secrets(card_text, known_secrets=known))
        for key in ("configs", "dataset_info"):
            if generated.get(key) is not None:
                setattr(card.data, key, generated[key])
        info = api.upload_file(
            path_or_fileobj=str(card).encode(),
            path_in_repo="README.md",
            repo_id=repo_id,
            repo_type="dataset",
            revision=branch,
            commit_message="Add the data card",
        )
        return info.oid
    except HfHubHTTPError as err:
        raise _hub_error(err, repo_id, branch, "dataset", api) from err


def _minimal_data_card(repo_id: str, files: list[str]) -> str:
    listing = "\n".join(f"- `{f}`" for f in files)
    return (
        "---\ntags:\n- instructgpt-pipelines\n---\n\n"
        f"# {repo_id}\n\nPushed by instructgpt-pipelines without a data card. Files:\n\n{listing}\n"
    )


# ------------------------------------------------------------------------------------------ pull
def pull(
    repo_id: str,
    *,
    revision: str | None = None,
    repo_type: str = "model",
    local_dir: str | os.PathLike | None = None,
    token: str | None = None,
) -> Path:
    """Download a repository snapshot (into the HF cache, or `local_dir`) for offline use; returns its folder.

    A missing repository, a missing revision or a rejected token raise `HubError` naming the repository,
    the revision and the fix. Under `HF_HUB_OFFLINE=1` the cached snapshot is returned when there is one.
    """
    token = _token(token)
    api = HfApi(token=token)
    kwargs: dict[str, Any] = {"repo_type": repo_type, "token": token}
    if local_dir is not None:
        kwargs["local_dir"] = str(local_dir)
    if constants.is_offline_mode():
        try:
            return Path(snapshot_download(repo_id, revision=revision, **kwargs))
        except LocalEntryNotFoundError as err:
            raise HubError(
                f"The {_describe(repo_id, repo_type)} at revision '{revision or 'main'}' is not in the local "
                "cache and offline mode is enabled (HF_HUB_OFFLINE=1). Unset HF_HUB_OFFLINE to download it."
            ) from err
    try:
        # Ask first: snapshot_download falls back silently to a cached copy on a rejected token.
        api.repo_info(repo_id, revision=revision, repo_type=repo_type)
        path = snapshot_download(repo_id, revision=revision, **kwargs)
    except (HfHubHTTPError, OfflineModeIsEnabled) as err:
        raise _hub_error(err, repo_id, revision, repo_type, api) from err
    logger.info("Pulled %s@%s to %s", repo_id, revision or "main", path)
    return Path(path)


def resolve_source(
    name_or_path: str | os.PathLike,
    revision: str | None = None,
    *,
    repo_type: str = "model",
    token: str | None = None,
) -> dict[str, Any]:
    """`{"name_or_path", "revision"}` naming exactly where a stage starts from, for lineage.

    A local folder gives `revision=None` (plus `"hub"`: the repo and commit it was pushed as, read from its
    `stage_info.json`, when it was pushed); a Hub repo id gives the commit sha `revision` resolves to (from
    the Hub, or from the local cache when offline).
    """
    path = Path(name_or_path)
    if path.exists():
        out: dict[str, Any] = {"name_or_path": str(name_or_path), "revision": None}
        hub = ((_read_json(path / "stage_info.json") or {}).get("hub")) if path.is_dir() else None
        if isinstance(hub, dict) and hub.get("repo_id"):
            out["hub"] = {"repo_id": hub["repo_id"], "revision": hub.get("revision")}
        return out
    repo_id = str(name_or_path)
    if revision is not None and re.fullmatch(r"[0-9a-f]{40}", revision):
        return {"name_or_path": repo_id, "revision": revision}
    if constants.is_offline_mode():
        cache = Path(constants.HF_HUB_CACHE) / f"{repo_type}s--{repo_id.replace('/', '--')}"
        ref = cache / "refs" / (revision or constants.DEFAULT_REVISION)
        if ref.is_file():
            return {"name_or_path": repo_id, "revision": ref.read_text().strip()}
        raise HubError(
            f"Cannot resolve {_describe(repo_id, repo_type)}@{revision or 'main'} offline: it is neither a local "
            "folder nor in the Hugging Face cache. Run `instructgpt pull` first, or unset HF_HUB_OFFLINE."
        )
    token = _token(token)
    api = HfApi(token=token)
    try:
        info = api.repo_info(repo_id, revision=revision, repo_type=repo_type)
    except (HfHubHTTPError, OfflineModeIsEnabled) as err:
        raise _hub_error(err, repo_id, revision, repo_type, api) from err
    return {"name_or_path": repo_id, "revision": info.sha}
