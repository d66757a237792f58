"""Pull the team's model from the FieldLens server, verify it, swap it in atomically; roll back.

Protocol (served by the bot's web server, authenticated with the team's edge token):
    GET {server}/api/v1/models/latest            -> manifest JSON of the model the team's robots get
        (the promoted one, else the newest that passed the int8 check):
        {"model_id": 7, "name": "...", "created_at": "...", "promoted": true, "map50_int8": 0.91,
         "thresholds": {"overall": 0.42, "labels": {...}},
         "files": {"int8": {"path": <the int8 model's name>, "sha256": "...", "bytes": 123,
                            "url": "/api/v1/models/7/files/<name>"}, "labels": {...}}}
    GET {server}{url}                             -> the file's bytes
Both with `Authorization: Bearer <token>`.

On disk, each model lives in its own folder `model-<id>-<sha>`, and `current` is a symlink to the
one in use, replaced in a single rename: a robot never sees half a model, and a failed or tampered
download leaves the current model untouched. When a pull changes the model, `previous` points at
the one it replaced, so `rollback` can swap the two back.
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
from edge.files import MANIFEST

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
            raise PullError(
                "the server has no model for this team's robots yet: no delivered model passed the int8 check"
            ) from e
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


def _point(dest: Path, link: str, version: Path) -> None:
    """Make `dest/link` point at `version` in one rename."""
    tmp = dest / f".{link}-{secrets.token_hex(4)}"
    os.symlink(version.name, tmp)
    os.replace(tmp, dest / link)


def _swap_current(dest: Path, version: Path) -> None:
    """`version` becomes current; the model it replaces becomes previous."""
    current = dest / "current"
    if current.is_symlink() and current.resolve() != version.resolve() and current.resolve().is_dir():
        _point(dest, "previous", current.resolve())
    _point(dest, "current", version)


def rollback(dest: Path) -> Path:
    """Swap current and previous back; returns the model folder now current."""
    dest = Path(dest)
    previous = dest / "previous"
    if not previous.is_symlink() or not previous.resolve().is_dir():
        raise PullError(f"there is no previous model in {dest} to go back to")
    _swap_current(dest, previous.resolve())
    log.info("rolled back to %s", previous.resolve().name)
    return (dest / "current").resolve()


def describe(version: Path) -> str:
    """One line on a pulled model: id, name, when trained, its mAP and thresholds."""
    try:
        m = json.loads((version / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError):
        return version.name
    parts = [f"trained {str(m['created_at'])[:10]}"] if m.get("created_at") else []
    if isinstance(m.get("map50_int8"), int | float):
        parts.append(f"mAP@0.5 {m['map50_int8']:.3f}")
    parts.append("promoted by the team" if m.get("promoted") else "newest that passed the int8 check")
    text = f"model {m.get('model_id')} {m.get('name', '')!r} ({', '.join(parts)})"
    thresholds = m.get("thresholds") or {}
    if "overall" in thresholds:
        labels = ", ".join(f"{k} {v:.2f}" for k, v in (thresholds.get("labels") or {}).items())
        text += f"; score thresholds {thresholds['overall']:.2f}" + (f" ({labels})" if labels else "")
    return text


def pull(server: str, token: str, dest: Path, timeout: float = 30.0) -> Path:
    """Download, verify and activate the team's model; returns the active model folder."""
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
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
            os.rename(staging, version)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    _swap_current(dest, version)
    log.info("model %s is now current in %s", manifest["model_id"], dest)
    return version
