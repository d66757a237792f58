"""Pull the team's latest delivered model from the FieldLens server, verify it, swap it in atomically.

Protocol (served by the bot's web server, authenticated with the team's edge token):
    GET {server}/api/v1/models/latest            -> manifest JSON:
        {"model_id": 7, "name": "...", "files": {"int8": {"path": "model_int8.tflite", "sha256": "...",
         "bytes": 123, "url": "/api/v1/models/7/files/model_int8.tflite"}, "labels": {...}}}
    GET {server}{url}                             -> the file's bytes
Both with `Authorization: Bearer <token>`.

On disk, each model lives in its own folder `model-<id>-<sha>`, and `current` is a symlink to the
one in use, replaced in a single rename: a robot never sees half a model, and a failed or tampered
download leaves the current model untouched.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse

from edge.errors import EdgeError

log = logging.getLogger(__name__)
MAX_MODEL_BYTES = 200 * 1024**2
FILES = ("int8", "labels")


class PullError(EdgeError):
    """The model could not be pulled; the current model is unchanged."""


def _get(url: str, token: str, timeout: float) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    try:
        return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - scheme checked by pull()
    except urllib.error.HTTPError as e:
        if e.code in (401, 403):
            raise PullError(
                f"the server refused the token (HTTP {e.code}); ask your team for a new edge token"
            ) from e
        if e.code == 404:
            raise PullError("the server has no delivered model for this team yet") from e
        raise PullError(f"the server answered HTTP {e.code} for {url}") from e
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        raise PullError(f"cannot reach {url}: {getattr(e, 'reason', e)}") from e


def _download(url: str, token: str, target: Path, expected: dict, timeout: float) -> None:
    digest = hashlib.sha256()
    size = 0
    with _get(url, token, timeout) as response, open(target, "wb") as out:
        while chunk := response.read(1 << 16):
            size += len(chunk)
            if size > min(int(expected.get("bytes", MAX_MODEL_BYTES)), MAX_MODEL_BYTES):
                raise PullError(f"{target.name} is larger than the manifest says; download discarded")
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != expected["sha256"]:
        raise PullError(
            f"sha256 mismatch for {target.name}: expected {expected['sha256'][:16]}..., got "
            f"{digest.hexdigest()[:16]}...; the download was discarded and the current model is unchanged"
        )


def _swap_current(dest: Path, version: Path) -> None:
    link = dest / "current"
    tmp = dest / f".current-{secrets.token_hex(4)}"
    os.symlink(version.name, tmp)
    os.replace(tmp, link)


def pull(server: str, token: str, dest: Path, timeout: float = 30.0) -> Path:
    """Download, verify and activate the latest model; returns the active model folder."""
    if urlparse(server).scheme not in ("http", "https"):
        raise PullError(f"--server must be an http:// or https:// address, got {server!r}")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with _get(urljoin(server, "/api/v1/models/latest"), token, timeout) as response:
        try:
            manifest = json.loads(response.read(1 << 20))
            files = {k: manifest["files"][k] for k in FILES}
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise PullError("the server's manifest is not a FieldLens model manifest") from e
    version = dest / f"model-{int(manifest['model_id'])}-{files['int8']['sha256'][:12]}"
    if not version.exists():
        staging = dest / f".staging-{secrets.token_hex(4)}"
        staging.mkdir()
        try:
            for key in FILES:
                name = Path(files[key]["path"]).name  # never trust a path from the network
                _download(urljoin(server, files[key]["url"]), token, staging / name, files[key], timeout)
            (staging / "manifest.json").write_text(json.dumps(manifest, indent=2))
            os.rename(staging, version)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    _swap_current(dest, version)
    log.info("model %s is now current in %s", manifest["model_id"], dest)
    return version
