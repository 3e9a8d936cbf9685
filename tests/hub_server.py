"""A small Hugging Face Hub-compatible http server on 127.0.0.1, for offline download tests.

It serves a folder laid out as ``<root>/<org>/<repo>/<files>`` with the parts of the Hub protocol
that huggingface_hub (checked against version 2.4) really uses:

Downloads (``hf_hub_download``):
    ``HEAD`` and ``GET /{repo_id}/resolve/{revision}/{filename}``. The HEAD answer must carry
    ``X-Repo-Commit`` (the commit the revision resolves to; without it the client refuses the
    endpoint), an ``ETag`` (the cache's blob name: the git blob sha1 of a regular file, the sha256
    of an LFS file, which the Hub also repeats as ``X-Linked-Etag``), and the size
    (``X-Linked-Size`` for LFS files, else ``Content-Length``). Errors are 404 with an
    ``X-Error-Code`` the client maps to its exceptions: ``RepoNotFound``,
    ``RevisionNotFound``, ``EntryNotFound`` (with ``X-Repo-Commit``, so that the client caches
    the file's absence). GET honours ``Range: bytes=N-`` (the client resumes with it).
    ``revision`` may be ``main`` or the repository's current commit hash, which is a sha1 of the
    folder's file names and contents, so it changes whenever a file does, or an earlier commit
    kept by :meth:`HubServer.snapshot` (every upload keeps the commits before and after it):
    ``main`` moves, a commit hash keeps answering the files it had.

Repository info: ``GET /api/models/{repo_id}`` and ``/api/models/{repo_id}/revision/{rev}``.

Uploads (``create_repo`` + ``upload_folder``): ``POST /api/repos/create``,
``POST /api/validate-yaml``, ``POST /api/models/{repo_id}/preupload/{rev}`` (every file is
declared "regular", so its content travels base64-encoded inside the commit: no LFS or Xet
transfer is emulated) and ``POST /api/models/{repo_id}/commit/{rev}`` (NDJSON ``header`` /
``file`` / ``deletedFile`` lines), which writes the files under ``<root>/<repo_id>``.

Every request is recorded in :attr:`HubServer.requests` so tests can assert, for example, that
an offline load made none.
"""
from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = ["HubServer", "LFS_SUFFIXES"]

#: Files the Hub stores with git-lfs (its default .gitattributes), answered with LFS headers.
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".npz", ".onnx", ".png")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _git_blob_sha1(data: bytes) -> str:
    # What the Hub reports as the ETag of a regular (non-LFS) file: git's blob object id.
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubServer:
    """Threaded Hub-compatible server over a folder of repositories.

    Args:
        root: Folder holding ``<org>/<repo>/<files>``; created if needed.

    Attributes:
        endpoint: ``http://127.0.0.1:<port>``, the value for ``HF_ENDPOINT``.
        requests: ``(method, path)`` of every request received, in order.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.requests: list[tuple[str, str]] = []
        #: Faults, by file name in the repository: GET answers these bytes instead of the file's
        #: (the headers still describe the real file, as a corrupting proxy would)...
        self.wrong_bytes: dict[str, bytes] = {}
        #: ...or sends this many bytes of the body and then drops the connection (a resumed
        #: request, with a Range header, is dropped before its first byte).
        self.drop_after: dict[str, int] = {}
        #: Earlier commits: {repo_id: {commit: {path: bytes}}} (see :meth:`snapshot`).
        self.history: dict[str, dict[str, dict[str, bytes]]] = {}
        self._lock = threading.Lock()
        handler = type("_BoundHandler", (_Handler,), {"hub": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "HubServer":
        """Start serving in a daemon thread."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True,
                                        name="hub-server")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ repository state
    def repo_dir(self, repo_id: str) -> Path:
        """Folder of a repository (which may not exist)."""
        return self.root / repo_id

    def files(self, repo_id: str) -> dict[str, Path]:
        """{path in repo: file} of a repository, hidden files excluded."""
        base = self.repo_dir(repo_id)
        return {p.relative_to(base).as_posix(): p for p in sorted(base.rglob("*"))
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(base).parts)}

    def snapshot(self, repo_id: str) -> str:
        """Keep the repository's current files as a commit that stays addressable by its hash.

        Returns:
            The commit hash.
        """
        commit = self.commit_hash(repo_id)
        self.history.setdefault(repo_id, {})[commit] = {
            rel: p.read_bytes() for rel, p in self.files(repo_id).items()}
        return commit

    def files_at(self, repo_id: str, commit: str) -> dict[str, bytes]:
        """{path: bytes} of a repository at a commit (the current one, or a kept one)."""
        if commit == self.commit_hash(repo_id):
            return {rel: p.read_bytes() for rel, p in self.files(repo_id).items()}
        return self.history[repo_id][commit]

    def commit_hash(self, repo_id: str) -> str:
        """Current commit of a repository: sha1 over its file names and contents."""
        h = hashlib.sha1()
        for rel, path in self.files(repo_id).items():
            h.update(rel.encode() + b"\0" + _sha256(path.read_bytes()).encode() + b"\n")
        return h.hexdigest()


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"  # keep-alive, like the Hub; every answer sets Content-Length

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        pass  # quiet: tests read HubServer.requests instead

    # ------------------------------------------------------------------ helpers
    def _record(self) -> str:
        path = urlsplit(self.path).path
        with self.hub._lock:
            self.hub.requests.append((self.command, path))
        return path

    def _send(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"",
              head: bool = False) -> None:
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if body and not head:
            self.wfile.write(body)

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, {"Content-Type": "application/json", **(headers or {})},
                   json.dumps(obj).encode())

    def _error(self, status: int, code: str, message: str, head: bool = False,
               extra: dict[str, str] | None = None) -> None:
        body = json.dumps({"error": message}).encode()
        self._send(status, {"Content-Type": "application/json", "X-Error-Code": code,
                            "X-Error-Message": message, **(extra or {})}, body, head=head)

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _split_repo(self, rest: str, marker: str) -> tuple[str, str, str] | None:
        """'org/repo/<marker>/<rev>/<tail>' -> (repo_id, rev, tail)."""
        parts = rest.strip("/").split("/")
        if marker not in parts:
            return None
        i = parts.index(marker)
        if i == 0 or i + 1 >= len(parts):
            return None
        return "/".join(parts[:i]), unquote(parts[i + 1]), unquote("/".join(parts[i + 2:]))

    def _resolve_revision(self, repo_id: str, revision: str, head: bool) -> str | None:
        if not self.hub.repo_dir(repo_id).is_dir():
            self._error(404, "RepoNotFound", "Repository not found", head)
            return None
        commit = self.hub.commit_hash(repo_id)
        if revision in self.hub.history.get(repo_id, {}):
            return revision
        if revision not in ("main", commit):
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head)
            return None
        return commit

    # ------------------------------------------------------------------ GET / HEAD
    def do_HEAD(self) -> None:  # noqa: N802 (stdlib name)
        self._get(head=True)

    def do_GET(self) -> None:  # noqa: N802
        self._get(head=False)

    def _get(self, head: bool) -> None:
        path = self._record()
        if path.startswith("/api/models/"):
            return self._repo_info(path[len("/api/models/"):], head)
        parsed = self._split_repo(path, "resolve")
        if parsed is None:
            return self._error(404, "EntryNotFound", f"No route for {path}", head)
        repo_id, revision, filename = parsed
        commit = self._resolve_revision(repo_id, revision, head)
        if commit is None:
            return None
        data = self.hub.files_at(repo_id, commit).get(filename)
        if data is None:
            return self._error(404, "EntryNotFound", f"{filename} does not exist at {commit}",
                               head, {"X-Repo-Commit": commit})
        headers = {"X-Repo-Commit": commit, "Content-Type": "application/octet-stream",
                   "Accept-Ranges": "bytes",
                   "Content-Disposition": f'attachment; filename="{Path(filename).name}"'}
        if filename.endswith(LFS_SUFFIXES):
            sha = _sha256(data)
            headers.update({"ETag": f'"{sha}"', "X-Linked-Etag": f'"{sha}"',
                            "X-Linked-Size": str(len(data))})
        else:
            headers["ETag"] = f'"{_git_blob_sha1(data)}"'
        status, body = 200, data
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes=") and not head:
            start_s, _, end_s = rng[len("bytes="):].partition("-")
            start = int(start_s or 0)
            end = int(end_s) if end_s else len(data) - 1
            status, body = 206, data[start:end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        headers["Content-Length"] = str(len(body))
        if not head and filename in self.hub.drop_after:
            return self._drop(status, headers, body[:0 if rng else self.hub.drop_after[filename]])
        if not head and filename in self.hub.wrong_bytes:
            body = self.hub.wrong_bytes[filename]
        self._send(status, headers, body, head=head)
        return None

    def _drop(self, status: int, headers: dict[str, str], part: bytes) -> None:
        """Announce the whole body, send only ``part``, and close the connection."""
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(part)
        self.wfile.flush()
        self.close_connection = True

    def _repo_info(self, rest: str, head: bool) -> None:
        parts = rest.strip("/").split("/")
        if "revision" in parts:
            i = parts.index("revision")
            repo_id, revision = "/".join(parts[:i]), unquote("/".join(parts[i + 1:]))
        else:
            repo_id, revision = "/".join(parts), "main"
        commit = self._resolve_revision(repo_id, revision, head)
        if commit is None:
            return
        files = self.hub.files_at(repo_id, commit)
        info = {"id": repo_id, "modelId": repo_id, "sha": commit, "private": False,
                "siblings": [{"rfilename": f, "size": len(b)} for f, b in files.items()]}
        body = json.dumps(info).encode()
        self._send(200, {"Content-Type": "application/json"}, body, head=head)

    # ------------------------------------------------------------------ POST (uploads)
    def do_POST(self) -> None:  # noqa: N802
        path = self._record()
        body = self._body()
        if path == "/api/repos/create":
            payload = json.loads(body or b"{}")
            repo_id = "/".join(p for p in (payload.get("organization"), payload["name"]) if p)
            folder = self.hub.repo_dir(repo_id)
            if folder.is_dir():
                return self._error(409, "RepoExists", "You already created this model repo")
            folder.mkdir(parents=True)
            return self._json(200, {"url": f"{self.hub.endpoint}/{repo_id}", "name": repo_id})
        if path == "/api/validate-yaml":
            return self._json(200, {"errors": [], "warnings": []})
        if path.startswith("/api/models/"):
            rest = path[len("/api/models/"):]
            for marker, handler in (("preupload", self._preupload), ("commit", self._commit)):
                parsed = self._split_repo(rest, marker)
                if parsed is not None:
                    repo_id, revision, _ = parsed
                    if self._resolve_revision(repo_id, revision, False) is None:
                        return None
                    return handler(repo_id, body)
        return self._error(404, "EntryNotFound", f"No route for POST {path}")

    def _preupload(self, repo_id: str, body: bytes) -> None:
        files = json.loads(body)["files"]
        existing = self.hub.files(repo_id)
        out = []
        for f in files:
            p = existing.get(f["path"])
            out.append({"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                        "oid": _git_blob_sha1(p.read_bytes()) if p is not None else None})
        self._json(200, {"files": out, "commitOid": self.hub.commit_hash(repo_id)})

    def _commit(self, repo_id: str, body: bytes) -> None:
        base = self.hub.repo_dir(repo_id)
        self.hub.snapshot(repo_id)  # the commit the branch moves away from stays addressable
        summary = ""
        for line in body.decode().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                summary = value.get("summary", "")
            elif key == "file":
                target = (base / value["path"]).resolve()
                if base.resolve() not in target.parents:
                    return self._error(400, "BadRequest", f"path escapes the repository: {value['path']}")
                target.parent.mkdir(parents=True, exist_ok=True)
                data = value["content"].encode()
                target.write_bytes(base64.b64decode(data) if value.get("encoding") == "base64" else data)
            elif key == "deletedFile":
                (base / value["path"]).unlink(missing_ok=True)
            else:
                return self._error(400, "BadRequest", f"unsupported commit operation {key!r} "
                                   "(this test server takes regular uploads only)")
        commit = self.hub.snapshot(repo_id)
        self._json(200, {"commitUrl": f"{self.hub.endpoint}/{repo_id}/commit/{commit}",
                         "commitOid": commit, "success": True, "summary": summary})


def point_huggingface_hub_at(monkeypatch: Any, server: HubServer, cache_dir: str | Path,
                             offline: bool = False) -> None:
    """Make huggingface_hub use ``server`` and ``cache_dir``, as HF_ENDPOINT / HF_HUB_CACHE would.

    huggingface_hub reads its environment once, at import, into ``huggingface_hub.constants``
    (the resolve URL template included) and its module-level ``HfApi`` instance; setting the
    environment variables in a running test would change nothing, so the attributes it really
    reads are patched instead. ``constants.HF_HUB_OFFLINE`` is read at each request.

    Args:
        monkeypatch: pytest's monkeypatch fixture (undoes everything after the test).
        server: The running server.
        cache_dir: Hugging Face cache folder for this test.
        offline: Value of HF_HUB_OFFLINE.
    """
    import huggingface_hub
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", server.endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        server.endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache_dir))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    monkeypatch.setattr(huggingface_hub.hf_api.api, "endpoint", server.endpoint)
    monkeypatch.setenv("HF_ENDPOINT", server.endpoint)  # for any subprocess a test starts
    monkeypatch.setenv("HF_HUB_CACHE", str(cache_dir))
    # A user's HF_HUB_OFFLINE=1 (README advises it on offline machines) must not reach the
    # subprocesses of a test that talks to this local server.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
