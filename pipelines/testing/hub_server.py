"""A small, file-backed server speaking the subset of the Hugging Face Hub API that `huggingface_hub` uses.

No installable server accepts `huggingface_hub` uploads, so this module provides one for tests and offline
demos. It runs the real client end to end: `create_repo`, `upload_folder` / `create_commit` (preupload, LFS
batch with the basic transfer, then the ndjson commit), `create_branch` / `create_tag`, `repo_info`,
`list_repo_tree`, `get_paths_info`, `list_repo_refs`, `list_repo_commits`, `hf_hub_download`,
`snapshot_download`, `HfFileSystem` (and so `datasets.load_dataset(repo_id)`).

Storage is git-like: each commit has a sha and a full `{path: blob}` map (copy-on-write), branches and tags
point to commits, blob contents live once under `root_dir/blobs/<sha256>`. Repositories are persisted as JSON
under `root_dir/repos/`, so a server restarted on the same `root_dir` sees the same repositories.

Usage::

    with HubServer(tmp_path, tokens={"hf_local_token": "alice"}) as server:
        os.environ["HF_ENDPOINT"] = server.endpoint   # before importing huggingface_hub
        os.environ["HF_HUB_DISABLE_XET"] = "1"        # hub >= 1.x would otherwise upload through Xet
        os.environ["HF_TOKEN"] = "hf_local_token"

or, in a process that has already imported the Hugging Face libraries, `with hub_client_env(server):`.

Auth follows the Hub: a request carrying an unknown token gets `401` (`Invalid credentials in Authorization
header`); writes need a valid token; private repositories are invisible (404 `RepoNotFound`) without one.
Any valid token may write to any namespace (there are no organisations or permissions). Not supported:
pull requests, Xet, multipart LFS, gated repos, spaces, the search/listing endpoints; listings come in one page.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import yaml

__all__ = ["HubServer", "hub_client_env"]

logger = logging.getLogger(__name__)

_REPO_TYPES = ("model", "dataset")
_LFS_THRESHOLD = 10 * 1024 * 1024  # the Hub's limit for regular (non-LFS) git files
_SHA1_RE = re.compile(r"^[0-9a-f]{40}$")
_INVALID_CREDENTIALS = "Invalid credentials in Authorization header"
DEFAULT_GITATTRIBUTES = "\n".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text"
    for pattern in (
        "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.gguf", "*.gz", "*.h5", "*.joblib", "*.model",
        "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb", "*.pickle", "*.pkl", "*.pt",
        "*.pth", "*.safetensors", "*.tar", "*.tflite", "*.zip", "*.zst", "*tfevents*",
    )
) + "\n"  # fmt: skip


class _HubError(Exception):
    """An error answered to the client, with the Hub's `X-Error-Code` / `X-Error-Message` headers."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _pointer_size(entry: dict) -> int:
    return len(_lfs_pointer(entry["sha256"], entry["size"]))


def _card_data(readme: bytes | None) -> dict | None:
    """The YAML front matter of a README.md, as the Hub's `cardData`."""
    if not readme:
        return None
    text = readme.decode("utf-8", errors="replace")
    match = re.match(r"^\s*---\s*\n(.*?)\n---\s*(\n|$)", text, re.DOTALL)
    if not match:
        return None
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


class _Repo:
    """One repository: commits (each a full path -> file-entry map), branches and tags. Not thread-safe."""

    def __init__(self, path: Path, data: dict):
        self.path, self.data = path, data

    @property
    def commits(self) -> dict[str, dict]:
        return self.data["commits"]

    @property
    def branches(self) -> dict[str, str]:
        return self.data["branches"]

    @property
    def tags(self) -> dict[str, str]:
        return self.data["tags"]

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.path)

    def resolve(self, revision: str) -> str:
        """Branch, tag, full or short (>= 7 chars) commit sha -> commit sha."""
        revision = revision or "main"
        if revision in self.branches:
            return self.branches[revision]
        if revision in self.tags:
            return self.tags[revision]
        if revision in self.commits:
            return revision
        if re.fullmatch(r"[0-9a-f]{7,39}", revision):
            found = [sha for sha in self.commits if sha.startswith(revision)]
            if len(found) == 1:
                return found[0]
        raise _HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def add_commit(self, parent: str | None, files: dict, title: str, message: str, author: str) -> str:
        body = {"parents": [parent] if parent else [], "files": files, "title": title, "message": message}
        date = _now()
        sha = hashlib.sha1(
            json.dumps({**body, "date": date, "nonce": secrets.token_hex(4)}, sort_keys=True).encode()
        ).hexdigest()
        self.commits[sha] = {**body, "date": date, "author": author}
        return sha

    def history(self, sha: str) -> Iterator[tuple[str, dict]]:
        """First-parent history, newest first."""
        while sha:
            commit = self.commits[sha]
            yield sha, commit
            sha = commit["parents"][0] if commit["parents"] else None

    def last_commit(self, sha: str, path: str, is_dir: bool) -> dict:
        """The newest commit in `sha`'s history that changed `path` (a file, or anything under a folder)."""

        def snapshot(files: dict) -> Any:
            if not is_dir:
                return files.get(path, {}).get("sha256")
            prefix = path.rstrip("/") + "/" if path else ""
            return sorted((p, f["sha256"]) for p, f in files.items() if p.startswith(prefix))

        chain = list(self.history(sha))
        for (csha, commit), (_, parent) in zip(chain, chain[1:] + [(None, {"files": {}})], strict=True):
            if snapshot(commit["files"]) != snapshot(parent["files"]):
                return {"id": csha, "title": commit["title"], "date": commit["date"]}
        csha, commit = chain[-1]
        return {"id": csha, "title": commit["title"], "date": commit["date"]}


class _State:
    """All repositories and blobs under `root_dir`, behind one lock."""

    def __init__(self, root_dir: Path):
        self.root = root_dir
        self.blobs = root_dir / "blobs"
        self.blobs.mkdir(parents=True, exist_ok=True)
        (root_dir / "repos").mkdir(exist_ok=True)
        self.lock = threading.RLock()
        self.repos: dict[tuple[str, str], _Repo] = {}
        for repo_file in (root_dir / "repos").glob("*/*/*/repo.json"):
            data = json.loads(repo_file.read_text())
            self.repos[(data["type"], data["id"])] = _Repo(repo_file, data)

    def repo_path(self, repo_type: str, repo_id: str) -> Path:
        return self.root / "repos" / f"{repo_type}s" / repo_id / "repo.json"

    def put_blob(self, data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        target = self.blobs / sha256
        if not target.exists():
            tmp = target.with_name(f"{sha256}.{secrets.token_hex(4)}.tmp")
            tmp.write_bytes(data)
            tmp.replace(target)
        return sha256

    def file_entry(self, data: bytes, lfs: bool) -> dict:
        sha256 = self.put_blob(data)
        return self._entry(sha256, len(data), lfs, None if lfs else data)

    @staticmethod
    def _entry(sha256: str, size: int, lfs: bool, data: bytes | None) -> dict:
        if lfs:
            return {
                "sha256": sha256,
                "size": size,
                "lfs": True,
                "oid": _git_blob_sha1(_lfs_pointer(sha256, size)),
            }
        assert data is not None
        return {"sha256": sha256, "size": size, "lfs": False, "oid": _git_blob_sha1(data)}


class HubServer:
    """A local Hub on `127.0.0.1`, started on a free port; use it as a context manager.

    Args:
        root_dir: where repositories and blobs are stored (created if missing; reused if it has data).
        tokens: the valid tokens, as a mapping `token -> user name` or an iterable of tokens (all owned by
            `user`). Defaults to one random token, available as `.token`.
        user: the user name for tokens given as an iterable, and the default namespace.
        host, port: where to listen; port 0 picks a free port.
    """

    def __init__(
        self,
        root_dir: str | os.PathLike,
        *,
        tokens: Mapping[str, str] | Iterable[str] | None = None,
        user: str = "pipelines-user",
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.root_dir = Path(root_dir)
        self.root_dir.mkdir(parents=True, exist_ok=True)
        if tokens is None:
            tokens = {"hf_local" + secrets.token_hex(16): user}
        elif not isinstance(tokens, Mapping):
            tokens = {token: user for token in tokens}
        self.tokens: dict[str, str] = dict(tokens)
        self.user = user
        self._host, self._port = host, port
        self._state = _State(self.root_dir)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._upload_tickets: dict[str, tuple[str, int]] = {}  # one-use LFS upload URLs -> (sha256, size)

    @property
    def token(self) -> str:
        """A valid token (the first one)."""
        return next(iter(self.tokens))

    @property
    def endpoint(self) -> str:
        """`http://127.0.0.1:PORT`, the value for `HF_ENDPOINT`."""
        if self._httpd is None:
            raise RuntimeError("the server is not running: use `with HubServer(...)` or call start()")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubServer:
        """Start serving in a daemon thread (idempotent)."""
        if self._httpd is None:
            handler = type("_BoundHandler", (_Handler,), {"hub": self})
            self._httpd = ThreadingHTTPServer((self._host, self._port), handler)
            self._httpd.daemon_threads = True
            self._thread = threading.Thread(target=self._httpd.serve_forever, name="HubServer", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._httpd = self._thread = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------------------------------- helpers
    def repo_url(self, repo_id: str, repo_type: str = "model") -> str:
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        return f"{self.endpoint}/{prefix}{repo_id}"

    def _get_repo(self, repo_type: str, repo_id: str, user: str | None) -> _Repo:
        repo = self._state.repos.get((repo_type, repo_id))
        if repo is None or (repo.data["private"] and user is None):
            raise _HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def _create_repo(self, repo_type: str, repo_id: str, private: bool, user: str) -> _Repo:
        with self._state.lock:
            if (repo_type, repo_id) in self._state.repos:
                raise _HubError(409, f"You already created this {repo_type} repo", None)
            data = {
                "type": repo_type, "id": repo_id, "private": private, "created_at": _now(),
                "commits": {}, "branches": {}, "tags": {},
            }  # fmt: skip
            repo = _Repo(self._state.repo_path(repo_type, repo_id), data)
            gitattributes = self._state.file_entry(DEFAULT_GITATTRIBUTES.encode(), lfs=False)
            sha = repo.add_commit(None, {".gitattributes": gitattributes}, "initial commit", "", user)
            repo.branches["main"] = sha
            repo.save()
            self._state.repos[(repo_type, repo_id)] = repo
            return repo


# ---------------------------------------------------------------------------------------------- HTTP
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "PipelinesHubServer/1.0"
    timeout = 60  # idle keep-alive connections are closed after this many seconds
    hub: HubServer  # set on the per-server subclass

    # --- plumbing
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        logger.debug("%s - %s", self.address_string(), format % args)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, head_only: bool = False):
        self.send_response(status)
        headers = {"Content-Type": "application/json", **(headers or {})}
        headers.setdefault("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, str(value))
        self.end_headers()
        if body and not head_only:
            self.wfile.write(body)

    def _json(self, payload: Any, status: int = 200, headers: dict | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), headers)

    def _user(self, required: bool = False) -> str | None:
        """The user owning the request's token; 401 on an unknown token, or on no token when `required`."""
        auth = self.headers.get("Authorization")
        if auth:
            token = auth.split(" ", 1)[1].strip() if " " in auth else auth.strip()
            user = self.hub.tokens.get(token)
            if user is None:
                raise _HubError(401, _INVALID_CREDENTIALS)
            return user
        if required:
            raise _HubError(
                401, "You must be authenticated to do this (no token in the Authorization header)"
            )
        return None

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        self._query = parse_qs(split.query, keep_blank_values=True)
        parts = [unquote(p) for p in split.path.strip("/").split("/")] if split.path.strip("/") else []
        body = self._read_body() if method in ("POST", "PUT", "DELETE") else b""
        try:
            self._route(method, parts, body)
        except _HubError as err:
            headers = {"X-Error-Message": err.message, **err.headers}
            if err.code:
                headers["X-Error-Code"] = err.code
            self._send(
                err.status, b"" if method == "HEAD" else json.dumps({"error": err.message}).encode(), headers
            )
        except Exception as err:  # pragma: no cover - a bug in the server: answer 500, log it
            logger.exception("HubServer failed on %s %s", method, split.path)
            self._send(500, json.dumps({"error": f"internal error: {type(err).__name__}"}).encode())

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def _flag(self, name: str) -> bool:
        return (self._query.get(name) or ["false"])[-1].lower() in ("1", "true", "yes")

    # --- routing
    def _route(self, method: str, parts: list[str], body: bytes) -> None:
        if parts[:1] == ["api"]:
            return self._route_api(method, parts[1:], body)
        if parts[:1] == ["_lfs-upload"] and method == "PUT" and len(parts) == 2:
            return self._lfs_put(parts[1], body)
        # /{prefix}{ns}/{name}/resolve/{rev}/{path} and /{prefix}{ns}/{name}.git/info/lfs/objects/batch
        repo_type = "model"
        if parts[:1] == ["datasets"]:
            repo_type, parts = "dataset", parts[1:]
        if len(parts) >= 5 and parts[2] == "resolve" and method in ("GET", "HEAD"):
            return self._resolve(repo_type, f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]), method)
        if len(parts) == 6 and parts[1].endswith(".git") and parts[2:] == ["info", "lfs", "objects", "batch"]:
            return self._lfs_batch(repo_type, f"{parts[0]}/{parts[1][:-4]}", body)
        raise _HubError(404, f"Not found: /{'/'.join(parts)}")

    def _route_api(self, method: str, parts: list[str], body: bytes) -> None:
        if parts == ["whoami-v2"] and method == "GET":
            user = self._user(required=True)
            return self._json(
                {"type": "user", "id": user, "name": user, "fullname": user, "orgs": [],
                 "auth": {"type": "access_token", "accessToken": {"displayName": "local", "role": "write"}}}
            )  # fmt: skip
        if parts == ["validate-yaml"] and method == "POST":
            return self._validate_yaml(body)
        if parts == ["repos", "create"] and method == "POST":
            return self._repo_create(json.loads(body or b"{}"))
        if parts == ["repos", "delete"] and method == "DELETE":
            return self._repo_delete(json.loads(body or b"{}"))
        if len(parts) < 3 or parts[0] not in ("models", "datasets"):
            raise _HubError(404, f"Not found: /api/{'/'.join(parts)}")
        repo_type, repo_id, rest = parts[0][:-1], f"{parts[1]}/{parts[2]}", parts[3:]
        user = self._user(required=method in ("POST", "PUT", "DELETE") and rest[:1] != ["paths-info"])
        with self.hub._state.lock:
            repo = self.hub._get_repo(repo_type, repo_id, user)
            if method == "GET" and not rest:
                return self._repo_info(repo, "main")
            if method == "GET" and rest[:1] == ["revision"] and len(rest) >= 2:
                return self._repo_info(repo, "/".join(rest[1:]))
            if method == "GET" and rest[:1] == ["tree"] and len(rest) >= 2:
                return self._tree(repo, rest[1], "/".join(rest[2:]))
            if method == "POST" and rest[:1] == ["paths-info"] and len(rest) == 2:
                return self._paths_info(repo, rest[1], body)
            if method == "GET" and rest == ["refs"]:
                return self._refs(repo)
            if method == "GET" and rest[:1] == ["commits"] and len(rest) == 2:
                return self._commits(repo, rest[1])
            if method == "POST" and rest[:1] == ["preupload"] and len(rest) == 2:
                return self._preupload(repo, rest[1], body)
            if method == "POST" and rest[:1] == ["commit"] and len(rest) == 2:
                return self._commit(repo, rest[1], body, user or "")
            if rest[:1] in (["branch"], ["tag"]) and len(rest) == 2 and method in ("POST", "DELETE"):
                return self._ref(repo, rest[0], rest[1], method, json.loads(body or b"{}"))
        raise _HubError(404, f"Not found: /api/{'/'.join(parts)}")

    # --- endpoints: account and repos
    def _validate_yaml(self, body: bytes) -> None:
        content = json.loads(body or b"{}").get("content", "")
        match = re.match(r"^\s*---\s*\n(.*?)\n---\s*(\n|$)", content, re.DOTALL)
        if match:
            try:
                data = yaml.safe_load(match.group(1))
            except yaml.YAMLError as err:
                return self._json(
                    {"errors": [{"message": f"Invalid YAML: {err}"}], "warnings": []}, status=400
                )
            if data is not None and not isinstance(data, dict):
                return self._json(
                    {"errors": [{"message": "metadata must be a mapping"}], "warnings": []}, 400
                )
        return self._json({"errors": [], "warnings": []})

    def _repo_create(self, payload: dict) -> None:
        user = self._user(required=True)
        assert user is not None
        repo_type = payload.get("type") or "model"
        if repo_type not in _REPO_TYPES:
            raise _HubError(400, f"Unsupported repo type {repo_type!r} (this server hosts {_REPO_TYPES})")
        name, namespace = payload.get("name") or "", payload.get("organization") or user
        if not re.fullmatch(r"[\w.-]+", name) or not re.fullmatch(r"[\w.-]+", namespace):
            raise _HubError(400, f"Invalid repo name {namespace}/{name}")
        repo_id = f"{namespace}/{name}"
        private = bool(payload.get("private")) or payload.get("visibility") == "private"
        url = self.hub.repo_url(repo_id, repo_type)
        try:
            self.hub._create_repo(repo_type, repo_id, private, user)
        except _HubError as err:
            if err.status == 409:
                return self._json({"error": err.message, "url": url}, status=409)
            raise
        return self._json({"url": url, "name": repo_id, "id": repo_id})

    def _repo_delete(self, payload: dict) -> None:
        user = self._user(required=True)
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or user}/{payload.get('name')}"
        with self.hub._state.lock:
            repo = self.hub._get_repo(repo_type, repo_id, user)
            del self.hub._state.repos[(repo_type, repo_id)]
            shutil.rmtree(repo.path.parent, ignore_errors=True)
        return self._json({})

    # --- endpoints: reading
    def _repo_info(self, repo: _Repo, revision: str) -> None:
        sha = repo.resolve(revision)
        commit = repo.commits[sha]
        files = commit["files"]
        card = _card_data(self._blob_bytes(files["README.md"])) if "README.md" in files else None
        namespace = repo.data["id"].split("/")[0]
        info: dict[str, Any] = {
            "_id": hashlib.sha1(repo.data["id"].encode()).hexdigest()[:24],
            "id": repo.data["id"],
            "author": namespace,
            "sha": sha,
            "lastModified": commit["date"],
            "createdAt": repo.data["created_at"],
            "private": repo.data["private"],
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": list((card or {}).get("tags") or []),
            "cardData": card,
            "siblings": [
                {"rfilename": path, "size": f["size"], "blobId": f["oid"]}
                | (
                    {"lfs": {"size": f["size"], "sha256": f["sha256"], "pointerSize": _pointer_size(f)}}
                    if f["lfs"]
                    else {}
                )
                for path, f in sorted(files.items())
            ],
        }
        if repo.data["type"] == "model":
            info["library_name"] = (card or {}).get("library_name")
            info["pipeline_tag"] = (card or {}).get("pipeline_tag")
            if "config.json" in files:
                with contextlib.suppress(ValueError):
                    config = json.loads(self._blob_bytes(files["config.json"]))
                    info["config"] = {
                        k: config[k] for k in ("architectures", "model_type", "auto_map") if k in config
                    }
        self._json(info)

    def _blob_bytes(self, entry: dict) -> bytes:
        return (self.hub._state.blobs / entry["sha256"]).read_bytes()

    @staticmethod
    def _folders(files: dict) -> set[str]:
        return {"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)}

    def _entry_json(self, repo: _Repo, sha: str, path: str, files: dict, expand: bool) -> dict:
        if path in files:
            f = files[path]
            out: dict[str, Any] = {"type": "file", "oid": f["oid"], "size": f["size"], "path": path}
            if f["lfs"]:
                pointer = _lfs_pointer(f["sha256"], f["size"])
                out["lfs"] = {"oid": f["sha256"], "size": f["size"], "pointerSize": len(pointer)}
        else:
            prefix = path + "/"
            content = sorted((p, files[p]["oid"]) for p in files if p.startswith(prefix))
            tree_id = hashlib.sha1(json.dumps(content).encode()).hexdigest()
            out = {"type": "directory", "oid": tree_id, "size": 0, "path": path}
        if expand:
            out["lastCommit"] = repo.last_commit(sha, path, is_dir=out["type"] == "directory")
        return out

    def _tree(self, repo: _Repo, revision: str, path: str) -> None:
        sha = repo.resolve(revision)
        files = repo.commits[sha]["files"]
        folders = self._folders(files)
        path = path.strip("/")
        if path and path not in folders:
            raise _HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": sha})
        prefix = path + "/" if path else ""
        names = sorted(p for p in set(files) | folders if p.startswith(prefix))
        if not self._flag("recursive"):
            names = [p for p in names if "/" not in p[len(prefix) :]]
        expand = self._flag("expand")
        self._json(
            [self._entry_json(repo, sha, p, files, expand) for p in names], headers={"X-Repo-Commit": sha}
        )

    def _paths_info(self, repo: _Repo, revision: str, body: bytes) -> None:
        sha = repo.resolve(revision)
        files = repo.commits[sha]["files"]
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("application/json"):
            payload = json.loads(body or b"{}")
            paths, expand = payload.get("paths") or [], bool(payload.get("expand"))
        else:
            form = parse_qs(body.decode(), keep_blank_values=True)
            paths = form.get("paths", [])
            expand = (form.get("expand") or ["false"])[-1].lower() in ("1", "true")
        folders = self._folders(files)
        found = [p.strip("/") for p in paths if p.strip("/") in files or p.strip("/") in folders]
        self._json([self._entry_json(repo, sha, p, files, expand) for p in found])

    def _refs(self, repo: _Repo) -> None:
        def refs(kind: str, mapping: dict) -> list[dict]:
            return [
                {"name": name, "ref": f"refs/{kind}/{name}", "targetCommit": sha}
                for name, sha in sorted(mapping.items())
            ]

        self._json(
            {"branches": refs("heads", repo.branches), "tags": refs("tags", repo.tags), "converts": [],
             "pullRequests": []}
        )  # fmt: skip

    def _commits(self, repo: _Repo, revision: str) -> None:
        sha = repo.resolve(revision)
        self._json(
            [
                {"id": csha, "title": c["title"], "message": c["message"], "date": c["date"],
                 "authors": [{"user": c["author"] or "unknown"}], "parents": c["parents"]}
                for csha, c in repo.history(sha)
            ]
        )  # fmt: skip

    def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str, method: str) -> None:
        user = self._user()
        with self.hub._state.lock:
            repo = self.hub._get_repo(repo_type, repo_id, user)
            sha = repo.resolve(revision)
            entry = repo.commits[sha]["files"].get(path)
        if entry is None:
            raise _HubError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": sha})
        headers = {
            "Content-Type": "application/octet-stream",
            "X-Repo-Commit": sha,
            "ETag": f'"{entry["oid"]}"',
            "Accept-Ranges": "bytes",
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(path.split('/')[-1])}",
        }
        if entry["lfs"]:
            headers["X-Linked-Etag"] = f'"{entry["sha256"]}"'
            headers["X-Linked-Size"] = str(entry["size"])
        blob = self.hub._state.blobs / entry["sha256"]
        size, start, end, status = entry["size"], 0, entry["size"] - 1, 200
        range_header = self.headers.get("Range")
        if range_header and (match := re.fullmatch(r"bytes=(\d*)-(\d*)", range_header.strip())):
            first, last = match.groups()
            if first == "":  # suffix range: the last N bytes
                start, end = max(0, size - int(last or 0)), size - 1
            else:
                start, end = int(first), min(int(last), size - 1) if last else size - 1
            if start >= size and size > 0:
                return self._send(416, b"", {"Content-Range": f"bytes */{size}", **headers}, head_only=True)
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = max(0, end - start + 1)
        headers["Content-Length"] = str(length)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if method == "GET" and length:
            with blob.open("rb") as fh:
                fh.seek(start)
                remaining = length
                while remaining:
                    chunk = fh.read(min(remaining, 1 << 20))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    remaining -= len(chunk)

    # --- endpoints: writing
    def _branch(self, repo: _Repo, revision: str) -> tuple[str, str]:
        """The branch a write goes to, and its head commit; 404 RevisionNotFound when it does not exist."""
        if revision not in repo.branches:
            if revision in repo.tags or revision in repo.commits:
                raise _HubError(400, f"Cannot commit to {revision!r}: it is not a branch")
            raise _HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return revision, repo.branches[revision]

    def _is_lfs(self, repo: _Repo, files: dict, path: str, size: int, sample: bytes) -> bool:
        if size >= _LFS_THRESHOLD or b"\x00" in sample:
            return True
        attributes = files.get(".gitattributes")
        text = self._blob_bytes(attributes).decode(errors="replace") if attributes else DEFAULT_GITATTRIBUTES
        for line in text.splitlines():
            fields = line.split()
            if len(fields) >= 2 and "filter=lfs" in fields[1:]:
                pattern = fields[0]
                target = path if "/" in pattern else path.rsplit("/", 1)[-1]
                if fnmatch.fnmatchcase(target, pattern):
                    return True
        return False

    def _preupload(self, repo: _Repo, revision: str, body: bytes) -> None:
        if self._flag("create_pr"):
            raise _HubError(400, "Pull requests are not supported by this server")
        _, head = self._branch(repo, revision)
        files = repo.commits[head]["files"]
        answer = []
        for item in json.loads(body or b"{}").get("files", []):
            path, size = item["path"], int(item.get("size", 0))
            sample = base64.b64decode(item.get("sample") or "")
            lfs = self._is_lfs(repo, files, path, size, sample)
            remote = files.get(path)
            oid = (remote["sha256"] if remote["lfs"] else remote["oid"]) if remote else None
            answer.append(
                {"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid}
            )
        self._json({"files": answer, "commitOid": head})

    def _lfs_batch(self, repo_type: str, repo_id: str, body: bytes) -> None:
        user = self._user(required=True)
        payload = json.loads(body or b"{}")
        if payload.get("operation") != "upload":
            raise _HubError(400, "Only the `upload` operation of the LFS batch API is supported")
        with self.hub._state.lock:
            self.hub._get_repo(repo_type, repo_id, user)
        objects = []
        for obj in payload.get("objects", []):
            oid, size = obj["oid"], int(obj["size"])
            answer: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if not (self.hub._state.blobs / oid).exists():
                ticket = secrets.token_urlsafe(24)
                self.hub._upload_tickets[ticket] = (oid, size)
                answer["actions"] = {"upload": {"href": f"{self.hub.endpoint}/_lfs-upload/{ticket}"}}
            objects.append(answer)
        self._json({"transfer": "basic", "objects": objects, "hash_algo": "sha256"})

    def _lfs_put(self, ticket: str, body: bytes) -> None:
        oid, size = self.hub._upload_tickets.pop(ticket, (None, None))
        if oid is None:
            raise _HubError(403, "Unknown or used upload URL")
        if len(body) != size or hashlib.sha256(body).hexdigest() != oid:
            raise _HubError(400, f"Uploaded content does not match oid {oid} / size {size}")
        self.hub._state.put_blob(body)
        self._send(200, b"", {"ETag": f'"{oid}"'})

    def _commit(self, repo: _Repo, revision: str, body: bytes, user: str) -> None:
        if self._flag("create_pr"):
            raise _HubError(400, "Pull requests are not supported by this server")
        branch, head = self._branch(repo, revision)
        files = dict(repo.commits[head]["files"])
        header: dict = {}
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item.get("key"), item.get("value", {})
            if key == "header":
                header = value
            elif key == "file":
                raw = (
                    base64.b64decode(value["content"])
                    if value.get("encoding") == "base64"
                    else value["content"].encode()
                )
                files[value["path"]] = self.hub._state.file_entry(raw, lfs=False)
            elif key == "lfsFile":
                oid = value["oid"]
                blob = self.hub._state.blobs / oid
                if not blob.exists():
                    raise _HubError(400, f"LFS object {oid} for {value['path']} was never uploaded")
                files[value["path"]] = _State._entry(oid, blob.stat().st_size, True, None)
            elif key == "deletedFile":
                if value["path"] not in files:
                    raise _HubError(404, "A file with this name doesn't exist", "EntryNotFound")
                del files[value["path"]]
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                for path in [p for p in files if p.startswith(prefix)]:
                    del files[path]
            else:
                raise _HubError(400, f"Unsupported commit operation {key!r}")
        parent = header.get("parentCommit")
        if parent and not head.startswith(parent):
            raise _HubError(412, f"Parent commit {parent} is not the head of {branch} ({head})")
        title = header.get("summary") or "Upload files"
        sha = repo.add_commit(head, files, title, header.get("description") or "", user)
        repo.branches[branch] = sha
        repo.save()
        url = f"{self.hub.repo_url(repo.data['id'], repo.data['type'])}/commit/{sha}"
        self._json({"success": True, "commitOid": sha, "commitUrl": url, "pullRequestUrl": None})

    def _ref(self, repo: _Repo, kind: str, name: str, method: str, payload: dict) -> None:
        refs = repo.branches if kind == "branch" else repo.tags
        if method == "DELETE":
            if name not in refs:
                raise _HubError(404, f"Invalid rev id: {name}", "RevisionNotFound")
            if kind == "branch" and name == "main":
                raise _HubError(403, "Cannot delete the main branch")
            del refs[name]
        else:
            # POST /branch/{name} {"startingPoint": rev}, but POST /tag/{rev} {"tag": name}
            target = payload.get("startingPoint") or "main" if kind == "branch" else name
            if kind == "tag":
                name = payload.get("tag") or ""
            if name in refs:
                raise _HubError(409, f"Reference already exists: {name}")
            if not re.fullmatch(r"[\w./-]+", name) or name in repo.commits:
                raise _HubError(400, f"Invalid reference name {name!r}")
            refs[name] = repo.resolve(target)
        repo.save()
        self._json({})


# ---------------------------------------------------------------------------------------- client side
@contextlib.contextmanager
def hub_client_env(server: HubServer | str, token: str | None = None) -> Iterator[None]:
    """Point the Hugging Face clients of THIS process at `server` (a `HubServer` or an endpoint URL).

    Sets `HF_ENDPOINT`, `HF_HUB_OFFLINE=0`, `HF_HUB_DISABLE_XET=1`, `HF_TOKEN` (when a token is given or the
    server has one) and patches the module-level copies that `huggingface_hub` and `datasets` read at import
    time; everything is restored on exit. A process that sets those variables before importing any Hugging
    Face library does not need this.
    """
    endpoint = server if isinstance(server, str) else server.endpoint
    if token is None and isinstance(server, HubServer):
        token = server.token
    saved_env = {
        k: os.environ.get(k) for k in ("HF_ENDPOINT", "HF_HUB_OFFLINE", "HF_HUB_DISABLE_XET", "HF_TOKEN")
    }
    patches: list[tuple[Any, str, Any]] = []

    def patch(obj: Any, name: str, value: Any) -> None:
        if hasattr(obj, name):
            patches.append((obj, name, getattr(obj, name)))
            setattr(obj, name, value)

    os.environ.update({"HF_ENDPOINT": endpoint, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_XET": "1"})
    if token is not None:
        os.environ["HF_TOKEN"] = token
    try:
        from huggingface_hub import constants, hf_api

        patch(constants, "ENDPOINT", endpoint)
        patch(constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
        patch(constants, "HF_HUB_OFFLINE", False)
        patch(constants, "HF_HUB_DISABLE_XET", True)
        patch(hf_api.api, "endpoint", endpoint)
        import sys

        if "datasets" in sys.modules:  # only patch what is loaded: importing datasets here would be slow
            from datasets import config as ds_config

            patch(ds_config, "HF_ENDPOINT", endpoint)
            patch(ds_config, "HUB_DATASETS_URL", endpoint + "/datasets/{repo_id}/resolve/{revision}/{path}")
            patch(ds_config, "HF_HUB_OFFLINE", False)
            patch(ds_config, "HF_DATASETS_OFFLINE", False)
        with contextlib.suppress(Exception):  # fsspec caches file systems per arguments: start afresh
            from huggingface_hub import HfFileSystem

            HfFileSystem.clear_instance_cache()
        yield
    finally:
        for obj, name, value in reversed(patches):
            setattr(obj, name, value)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _demo() -> None:  # pragma: no cover - `python -m pipelines.testing.hub_server [ROOT_DIR]`
    import argparse

    parser = argparse.ArgumentParser(description="Serve a local, file-backed Hugging Face Hub.")
    parser.add_argument("root_dir", nargs="?", default=None, help="storage folder (default: a temp dir)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default=None, help="the accepted token (default: a random one)")
    args = parser.parse_args()
    root = args.root_dir or tempfile.mkdtemp(prefix="hub-server-")
    server = HubServer(root, tokens=[args.token] if args.token else None, port=args.port)
    with server:
        print(f"Serving {root} at {server.endpoint}")
        print(f"export HF_ENDPOINT={server.endpoint} HF_HUB_DISABLE_XET=1 HF_TOKEN={server.token}")
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":  # pragma: no cover
    _demo()
