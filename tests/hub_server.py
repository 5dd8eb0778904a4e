# Copyright 2026 The hf-crnn Authors. Licensed under the Apache License, Version 2.0.
"""A small, real HTTP server that speaks enough of the Hugging Face Hub protocol for upload/download tests.

`huggingface_hub` and `transformers` are pointed at it through `HF_ENDPOINT`, so the tests exercise the real client
code paths (HTTP requests, NDJSON commits, Git LFS transfers, cache layout) instead of mocked client methods.
Only the standard library is used (plus PyYAML, if installed, to validate model-card metadata like the Hub does).

Endpoints (model repos only; `{repo}` is `namespace/name`, `{rev}` a branch name or a 40-hex commit id):

    POST /api/repos/create                          create a repo (409 if it exists), with an initial commit that
                                                    holds the Hub's default `.gitattributes`
    GET  /api/whoami-v2                             the token's user
    POST /api/validate-yaml                         README.md front-matter check done before every commit
    GET  /api/models/{repo}                         model info: sha, siblings, private, pipeline_tag, cardData, ...
    GET  /api/models/{repo}/revision/{rev}          the same at a revision
    GET  /api/models/{repo}/tree/{rev}[/{path}]     tree listing (`recursive=`), files with oid/size/lfs
    POST /api/models/{repo}/preupload/{rev}         upload mode per file: "lfs" for weights and big files, else
                                                    "regular"; with the remote oid so unchanged files are skipped
    POST /{repo}.git/info/lfs/objects/batch         Git LFS batch API, "basic" transfer: upload + verify actions
    PUT  /__lfs__/{oid}                             LFS object upload (the batch API's `upload.href`); sha256 checked
    POST /__lfs__/{oid}/verify                      LFS verify action (`verify.href`)
    POST /api/models/{repo}/commit/{rev}            NDJSON commit: header, file (base64), lfsFile, deletedFile,
                                                    deletedFolder lines; applied atomically; `parentCommit` checked
    HEAD /{repo}/resolve/{rev}/{path}               file metadata headers: ETag, X-Repo-Commit, Content-Length and,
    GET  /{repo}/resolve/{rev}/{path}               for LFS files, X-Linked-Etag / X-Linked-Size; GET adds the body

Errors carry the `X-Error-Code` header (RepoNotFound, RevisionNotFound, EntryNotFound) that `huggingface_hub` turns
into its typed exceptions, and `X-Repo-Commit` on a missing file so the client can cache the absence.

Not implemented: Xet storage (clients must upload with `HF_HUB_DISABLE_XET=1`; downloads never use Xet because no
`X-Xet-Hash` header is sent), branches other than `main` (commits on other branches get RevisionNotFound), pull
requests, dataset/space repos, multipart LFS transfers, HTTP range requests.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

try:
    import yaml
except ImportError:  # without PyYAML the server accepts any card metadata and reports none
    yaml = None

DEFAULT_BRANCH = "main"
DEFAULT_USER = "test-user"

# The Hub stores a file through LFS when `.gitattributes` says so (weights, archives, ...) or when it is large.
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".onnx", ".h5", ".msgpack", ".npy", ".npz", ".zip")
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024
DEFAULT_GITATTRIBUTES = "".join(f"*{suffix} filter=lfs diff=lfs merge=lfs -text\n" for suffix in LFS_SUFFIXES).encode()

_COMMIT_ID = re.compile(r"^[0-9a-f]{40}$")
_API_REPO_ROUTE = re.compile(
    r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/(?P<action>revision|tree|preupload|commit)/(?P<rest>.+))?$"
)
_RESOLVE_ROUTE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_LFS_BATCH_ROUTE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)\.git/info/lfs/objects/batch$")
_LFS_OBJECT_ROUTE = re.compile(r"^/__lfs__/(?P<oid>[0-9a-f]{64})(?P<verify>/verify)?$")


def git_blob_sha1(content: bytes) -> str:
    """The git object id of a blob, which the Hub uses as ETag and oid of non-LFS files."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The Git LFS pointer file that git stores in place of an LFS file."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclasses.dataclass(frozen=True)
class Blob:
    """One file version: its content, and whether the repo stores it through LFS."""

    content: bytes
    is_lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def git_oid(self) -> str:
        """Git blob id: of the content for regular files, of the pointer file for LFS files (as on the Hub)."""
        if self.is_lfs:
            return git_blob_sha1(lfs_pointer(self.sha256, len(self.content)))
        return git_blob_sha1(self.content)

    @property
    def etag(self) -> str:
        return self.sha256 if self.is_lfs else git_blob_sha1(self.content)


@dataclasses.dataclass(frozen=True)
class Commit:
    oid: str
    title: str
    description: str
    parent: str | None
    files: dict[str, Blob]


@dataclasses.dataclass
class Repo:
    repo_id: str
    private: bool
    commits: list[Commit] = dataclasses.field(default_factory=list)  # oldest first; the last one is `main`

    @property
    def head(self) -> Commit:
        return self.commits[-1]

    def resolve(self, revision: str) -> Commit | None:
        """The commit a branch name or commit id points to, or None."""
        revision = unquote(revision)
        if revision == DEFAULT_BRANCH:
            return self.head
        if _COMMIT_ID.match(revision):
            return next((commit for commit in self.commits if commit.oid == revision), None)
        return None


class HubError(Exception):
    """An error answered to the client the way the Hub does: status, `X-Error-Code` and a JSON `error` message."""

    def __init__(
        self,
        status: int,
        message: str,
        error_code: str | None = None,
        headers: dict | None = None,
        extra: dict | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code
        self.headers = headers or {}
        self.extra = extra or {}  # more fields of the JSON answer


class HubState:
    """In-memory repos and LFS objects, shared by the request handlers; every access holds `lock`."""

    def __init__(self, token: str | None):
        self.token = token
        self.repos: dict[str, Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}  # sha256 -> content
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status) of every request, for assertions
        self.unhandled: list[tuple[str, str]] = []  # requests no route matched: a client feature not covered here
        self.lock = threading.RLock()
        self._commit_counter = 0

    def new_commit_oid(self, *parts: str) -> str:
        self._commit_counter += 1
        return hashlib.sha1("\0".join((str(self._commit_counter), *parts)).encode()).hexdigest()

    def get_repo(self, repo_id: str, authorized: bool) -> Repo:
        repo = self.repos.get(repo_id)
        # Like the Hub, a private repo is indistinguishable from a missing one without credentials.
        if repo is None or (repo.private and not authorized):
            raise HubError(HTTPStatus.NOT_FOUND, f"Repository {repo_id} not found", "RepoNotFound")
        return repo

    def get_commit(self, repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise HubError(HTTPStatus.NOT_FOUND, f"Invalid rev id: {unquote(revision)}", "RevisionNotFound")
        return commit


class HubRequestHandler(BaseHTTPRequestHandler):
    """Routes requests to the `_handle_*` methods; `server.state` is the shared [`HubState`]."""

    server: HubServer
    protocol_version = "HTTP/1.1"  # keep-alive, as the Hub; every response therefore carries a Content-Length

    # ---- plumbing ---------------------------------------------------------------------------------------------

    def log_message(self, format, *args):
        pass  # keep test output clean; `HubState.requests` records every request instead

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    @property
    def state(self) -> HubState:
        return self.server.state

    @property
    def endpoint(self) -> str:
        return self.server.url

    def _dispatch(self, method: str):
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        self._is_head = method == "HEAD"  # HEAD answers carry the headers of a GET, but no body
        body = self._read_body()
        try:
            handler = self._route(method, path)
            if handler is None:
                with self.state.lock:
                    self.state.unhandled.append((method, self.path))
                raise HubError(HTTPStatus.NOT_FOUND, f"{method} {path} is not implemented by the test Hub server")
            with self.state.lock:
                handler(query=query, body=body)
        except HubError as error:
            payload = {"error": error.message, **error.extra}
            self._send_json(payload, status=error.status, headers=self._error_headers(error))
        except Exception as error:  # a malformed request or a server bug: answer it instead of dropping the socket
            message = f"Test Hub server error: {type(error).__name__}: {error}"
            self._send_json({"error": message}, status=HTTPStatus.INTERNAL_SERVER_ERROR)

    def send_response(self, code, message=None):
        with self.state.lock:
            self.state.requests.append((self.command, self.path, int(code)))
        super().send_response(code, message)

    def _route(self, method: str, path: str):
        """The bound handler for a request, with the path parameters bound as keyword arguments."""
        routes = {
            ("POST", "/api/repos/create"): self._handle_create_repo,
            ("GET", "/api/whoami-v2"): self._handle_whoami,
            ("POST", "/api/validate-yaml"): self._handle_validate_yaml,
        }
        if (method, path) in routes:
            return routes[(method, path)]
        if match := _API_REPO_ROUTE.match(path):
            repo_id, action, rest = unquote(match["repo"]), match["action"], match["rest"]
            if method == "GET" and action is None:
                return lambda **kw: self._handle_repo_info(repo_id, DEFAULT_BRANCH, **kw)
            if method == "GET" and action == "revision":
                return lambda **kw: self._handle_repo_info(repo_id, rest, **kw)
            if method == "GET" and action == "tree":
                revision, _, folder = rest.partition("/")
                return lambda **kw: self._handle_tree(repo_id, revision, unquote(folder), **kw)
            if method == "POST" and action == "preupload":
                return lambda **kw: self._handle_preupload(repo_id, rest, **kw)
            if method == "POST" and action == "commit":
                return lambda **kw: self._handle_commit(repo_id, rest, **kw)
        if method == "POST" and (match := _LFS_BATCH_ROUTE.match(path)):
            return lambda **kw: self._handle_lfs_batch(unquote(match["repo"]), **kw)
        if match := _LFS_OBJECT_ROUTE.match(path):
            if method == "PUT" and not match["verify"]:
                return lambda **kw: self._handle_lfs_put(match["oid"], **kw)
            if method == "POST" and match["verify"]:
                return lambda **kw: self._handle_lfs_verify(match["oid"], **kw)
        if method in ("GET", "HEAD") and (match := _RESOLVE_ROUTE.match(path)):
            return lambda **kw: self._handle_resolve(unquote(match["repo"]), match["rev"], unquote(match["path"]), **kw)
        return None

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()  # the empty line after the last chunk (no trailers are sent)
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # CRLF after each chunk
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if not self._is_head:
            self.wfile.write(body)

    def _send_json(self, payload, status: int = HTTPStatus.OK, headers: dict | None = None, content_type=None):
        self._send(status, json.dumps(payload).encode(), content_type or "application/json", headers)

    @staticmethod
    def _error_headers(error: HubError) -> dict:
        headers = dict(error.headers)
        if error.error_code:
            headers["X-Error-Code"] = error.error_code
        headers["X-Error-Message"] = error.message
        return headers

    def _is_authorized(self) -> bool:
        authorization = self.headers.get("Authorization", "")
        if not authorization.startswith("Bearer "):
            return False
        return self.state.token is None or authorization.removeprefix("Bearer ") == self.state.token

    def _require_write_access(self):
        if not self._is_authorized():
            raise HubError(HTTPStatus.UNAUTHORIZED, "Invalid credentials in Authorization header")

    @staticmethod
    def _json_body(body: bytes) -> dict:
        try:
            return json.loads(body or b"{}")
        except json.JSONDecodeError as error:
            raise HubError(HTTPStatus.BAD_REQUEST, f"Malformed JSON body: {error}") from error

    # ---- account and repos ------------------------------------------------------------------------------------

    def _handle_whoami(self, query, body):
        if not self._is_authorized():
            raise HubError(HTTPStatus.UNAUTHORIZED, "Invalid credentials in Authorization header")
        self._send_json({"type": "user", "name": DEFAULT_USER, "orgs": [], "auth": {"type": "access_token"}})

    def _handle_create_repo(self, query, body):
        self._require_write_access()
        payload = self._json_body(body)
        if payload.get("type", "model") != "model":
            raise HubError(HTTPStatus.BAD_REQUEST, "The test Hub server only hosts model repos")
        repo_id = f"{payload.get('organization') or DEFAULT_USER}/{payload['name']}"
        url = f"{self.endpoint}/{repo_id}"
        if repo_id in self.state.repos:
            # `create_repo(exist_ok=True)` reads the repo URL from this answer.
            raise HubError(HTTPStatus.CONFLICT, "You already created this model repo", extra={"url": url})
        repo = Repo(repo_id=repo_id, private=payload.get("visibility") == "private")
        initial_files = {".gitattributes": Blob(DEFAULT_GITATTRIBUTES, is_lfs=False)}
        repo.commits.append(Commit(self.state.new_commit_oid(repo_id), "initial commit", "", None, initial_files))
        self.state.repos[repo_id] = repo
        self._send_json({"url": url, "name": repo_id, "id": repo_id})

    def _handle_validate_yaml(self, query, body):
        content = self._json_body(body).get("content", "")
        errors = [{"message": message} for message in _front_matter_errors(content)]
        self._send_json({"errors": errors, "warnings": []}, status=HTTPStatus.BAD_REQUEST if errors else HTTPStatus.OK)

    def _handle_repo_info(self, repo_id: str, revision: str, query, body):
        repo = self.state.get_repo(repo_id, self._is_authorized())
        commit = self.state.get_commit(repo, revision)
        card_data = _card_metadata(commit.files.get("README.md"))
        config = _json_or_none(commit.files.get("config.json")) or {}
        info = {
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
            "id": repo_id,
            "modelId": repo_id,
            "author": repo_id.split("/")[0],
            "sha": commit.oid,
            "private": repo.private,
            "disabled": False,
            "gated": False,
            "downloads": 0,
            "likes": 0,
            "tags": card_data.get("tags", []),
            "pipeline_tag": card_data.get("pipeline_tag"),
            "library_name": card_data.get("library_name"),
            "cardData": card_data or None,
            "config": {key: config[key] for key in ("architectures", "model_type", "auto_map") if key in config},
            "siblings": [{"rfilename": path} for path in sorted(commit.files)],
        }
        self._send_json(info)

    def _handle_tree(self, repo_id: str, revision: str, folder: str, query, body):
        repo = self.state.get_repo(repo_id, self._is_authorized())
        commit = self.state.get_commit(repo, revision)
        recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
        prefix = f"{folder.strip('/')}/" if folder.strip("/") else ""
        entries: dict[str, dict] = {}
        for path, blob in sorted(commit.files.items()):
            if not path.startswith(prefix):
                continue
            parts = path[len(prefix) :].split("/")
            # Folders on the way to the file are listed too (all of them when recursive, the first one otherwise).
            for depth in range(1, len(parts) if recursive else min(len(parts), 2)):
                folder_path = prefix + "/".join(parts[:depth])
                entries.setdefault(
                    folder_path, {"type": "directory", "path": folder_path, "oid": _tree_oid(folder_path), "size": 0}
                )
            if recursive or len(parts) == 1:
                entries[path] = _file_entry(path, blob)
        if prefix and not entries:
            raise HubError(HTTPStatus.NOT_FOUND, f"{folder} does not exist on {revision}", "EntryNotFound")
        self._send_json(list(entries.values()))

    # ---- upload -----------------------------------------------------------------------------------------------

    def _handle_preupload(self, repo_id: str, revision: str, query, body):
        self._require_write_access()
        repo = self.state.get_repo(repo_id, authorized=True)
        commit = self.state.get_commit(repo, revision)
        answers = []
        for file in self._json_body(body).get("files", []):
            path, size = file["path"], int(file["size"])
            is_lfs = _is_lfs_path(path, size)
            existing = commit.files.get(path)
            # The client compares this oid with its local one to drop unchanged files from the commit.
            remote_oid = None if existing is None else (existing.sha256 if existing.is_lfs else existing.git_oid)
            answers.append(
                {"path": path, "uploadMode": "lfs" if is_lfs else "regular", "shouldIgnore": False, "oid": remote_oid}
            )
        self._send_json({"files": answers, "commitOid": commit.oid})

    def _handle_lfs_batch(self, repo_id: str, query, body):
        self._require_write_access()
        self.state.get_repo(repo_id, authorized=True)
        payload = self._json_body(body)
        if payload.get("operation") != "upload":
            raise HubError(HTTPStatus.BAD_REQUEST, "The test Hub server only implements LFS uploads")
        if "basic" not in payload.get("transfers", ["basic"]):
            raise HubError(HTTPStatus.BAD_REQUEST, "The test Hub server only implements the basic LFS transfer")
        objects = []
        for obj in payload.get("objects", []):
            oid, size = obj["oid"], int(obj["size"])
            answer = {"oid": oid, "size": size, "authenticated": True}
            if oid not in self.state.lfs_objects:  # no `actions`: the client skips objects the server already has
                href = f"{self.endpoint}/__lfs__/{oid}"
                answer["actions"] = {"upload": {"href": href}, "verify": {"href": f"{href}/verify"}}
            objects.append(answer)
        self._send_json({"transfer": "basic", "objects": objects}, content_type="application/vnd.git-lfs+json")

    def _handle_lfs_put(self, oid: str, query, body):
        if hashlib.sha256(body).hexdigest() != oid:
            raise HubError(HTTPStatus.BAD_REQUEST, f"Uploaded content does not match its sha256 oid {oid}")
        self.state.lfs_objects[oid] = body
        self._send(HTTPStatus.OK, b"", "text/plain", headers={"ETag": f'"{hashlib.md5(body).hexdigest()}"'})

    def _handle_lfs_verify(self, oid: str, query, body):
        self._require_write_access()
        size = int(self._json_body(body).get("size", -1))
        if oid not in self.state.lfs_objects or len(self.state.lfs_objects[oid]) != size:
            raise HubError(HTTPStatus.NOT_FOUND, f"LFS object {oid} of size {size} was not uploaded")
        self._send_json({"success": True})

    def _handle_commit(self, repo_id: str, revision: str, query, body):
        self._require_write_access()
        repo = self.state.get_repo(repo_id, authorized=True)
        if unquote(revision) != DEFAULT_BRANCH:
            raise HubError(HTTPStatus.NOT_FOUND, f"Only the {DEFAULT_BRANCH} branch is supported", "RevisionNotFound")
        if "create_pr" in query:
            raise HubError(HTTPStatus.BAD_REQUEST, "The test Hub server does not implement pull requests")
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(HTTPStatus.BAD_REQUEST, "A commit payload starts with a header line")
        header = lines[0]["value"]
        parent = header.get("parentCommit")
        if parent is not None and parent != repo.head.oid:
            raise HubError(HTTPStatus.PRECONDITION_FAILED, f"Parent commit {parent} is not the head of {revision}")
        # Apply every operation to a copy and publish it only at the end: a failing line leaves the repo untouched.
        files = dict(repo.head.files)
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            if key == "file":
                if value.get("encoding", "base64") != "base64":
                    raise HubError(HTTPStatus.BAD_REQUEST, f"Unsupported encoding {value.get('encoding')}")
                content = base64.b64decode(value["content"])
                files[value["path"]] = Blob(content, is_lfs=False)
            elif key == "lfsFile":
                content = self.state.lfs_objects.get(value["oid"])
                if content is None:
                    raise HubError(HTTPStatus.UNPROCESSABLE_ENTITY, f"LFS object {value['oid']} was not uploaded")
                files[value["path"]] = Blob(content, is_lfs=True)
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    raise HubError(HTTPStatus.NOT_FOUND, "A file with this name doesn't exist", "EntryNotFound")
            elif key == "deletedFolder":
                folder = value["path"].rstrip("/") + "/"
                files = {path: blob for path, blob in files.items() if not path.startswith(folder)}
            else:
                raise HubError(HTTPStatus.BAD_REQUEST, f"Unknown commit operation {key!r}")
        oid = self.state.new_commit_oid(repo_id, header.get("summary", ""), *sorted(files))
        repo.commits.append(Commit(oid, header.get("summary", ""), header.get("description", ""), repo.head.oid, files))
        self._send_json(
            {
                "success": True,
                "commitOid": oid,
                "commitUrl": f"{self.endpoint}/{repo_id}/commit/{oid}",
                "pullRequestUrl": None,
                "hookOutput": "",
            }
        )

    # ---- download ---------------------------------------------------------------------------------------------

    def _handle_resolve(self, repo_id: str, revision: str, path: str, query, body):
        repo = self.state.get_repo(repo_id, self._is_authorized())
        commit = self.state.get_commit(repo, revision)
        blob = commit.files.get(path)
        if blob is None:
            # The commit id lets the client remember in its cache that the file does not exist at this commit.
            raise HubError(HTTPStatus.NOT_FOUND, "Entry not found", "EntryNotFound", {"X-Repo-Commit": commit.oid})
        headers = {"ETag": f'"{blob.git_oid}"', "X-Repo-Commit": commit.oid, "Accept-Ranges": "none"}
        if blob.is_lfs:
            # On the Hub these come with a redirect to the CDN; the client prefers them over ETag/Content-Length.
            headers.update({"X-Linked-Etag": f'"{blob.sha256}"', "X-Linked-Size": str(len(blob.content))})
        self._send(HTTPStatus.OK, blob.content, "application/octet-stream", headers)


def _is_lfs_path(path: str, size: int) -> bool:
    return path.endswith(LFS_SUFFIXES) or size >= LFS_SIZE_THRESHOLD


def _tree_oid(path: str) -> str:
    return hashlib.sha1(f"tree {path}".encode()).hexdigest()


def _file_entry(path: str, blob: Blob) -> dict:
    entry = {"type": "file", "path": path, "oid": blob.git_oid, "size": len(blob.content)}
    if blob.is_lfs:
        pointer_size = len(lfs_pointer(blob.sha256, len(blob.content)))
        entry["lfs"] = {"oid": blob.sha256, "size": len(blob.content), "pointerSize": pointer_size}
    return entry


def _json_or_none(blob: Blob | None):
    if blob is None:
        return None
    try:
        return json.loads(blob.content)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def _split_front_matter(content: str) -> str | None:
    """The YAML between the leading `---` lines of a README, or None if it has no front matter."""
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, flags=re.DOTALL)
    return match.group(1) if match else None


def _front_matter_errors(content: str) -> list[str]:
    front_matter = _split_front_matter(content)
    if front_matter is None or yaml is None:
        return []
    try:
        metadata = yaml.safe_load(front_matter)
    except yaml.YAMLError as error:
        return [f"Invalid YAML in README.md front matter: {error}"]
    if metadata is not None and not isinstance(metadata, dict):
        return ["README.md front matter must be a YAML mapping"]
    return []


def _card_metadata(readme: Blob | None) -> dict:
    """The README's front matter, as the Hub exposes it in `cardData` (empty when absent or invalid)."""
    front_matter = None if readme is None else _split_front_matter(readme.content.decode(errors="replace"))
    if front_matter is None or _front_matter_errors(readme.content.decode(errors="replace")):
        return {}
    metadata = yaml.safe_load(front_matter)
    return metadata if isinstance(metadata, dict) else {}


class HubServer(ThreadingHTTPServer):
    """The test Hub on `127.0.0.1` at a free port, served from a daemon thread.

    Use as a context manager (or call `start()`/`stop()`); `url` is what `HF_ENDPOINT` should be set to.

    Args:
        token: the only token accepted for writes and private reads; `None` accepts any bearer token.
    """

    daemon_threads = True

    def __init__(self, token: str | None = None):
        super().__init__(("127.0.0.1", 0), HubRequestHandler)
        self.state = HubState(token)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubServer:
        self._thread = threading.Thread(target=self.serve_forever, name="test-hub-server", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    # ---- inspection helpers for tests -------------------------------------------------------------------------

    def repo(self, repo_id: str) -> Repo:
        with self.state.lock:
            return self.state.repos[repo_id]

    def files(self, repo_id: str, revision: str = DEFAULT_BRANCH) -> dict[str, Blob]:
        with self.state.lock:
            return dict(self.state.get_commit(self.repo(repo_id), revision).files)

    def requests(self) -> list[tuple[str, str, int]]:
        """`(method, path, status)` of every request answered so far."""
        with self.state.lock:
            return list(self.state.requests)

    def unhandled_requests(self) -> list[tuple[str, str]]:
        """Requests that no endpoint of this server matched (answered 404)."""
        with self.state.lock:
            return list(self.state.unhandled)


@contextmanager
def running_hub_server(token: str | None = None) -> Iterator[HubServer]:
    """Context manager form, for a pytest fixture: `with running_hub_server() as hub: ...`."""
    with HubServer(token) as server:
        yield server
