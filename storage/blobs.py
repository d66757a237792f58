"""Content-addressed file store: a blob's name is the sha256 of its bytes.

Writes are atomic (temp file in the same folder, fsync, rename), so a crash never leaves a
half-written blob under its final name. Combining datasets reuses blobs and copies nothing.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _create_temp(path: Path) -> tuple[int, str]:
    """A new temp file beside `path` (cheaper than `tempfile.mkstemp`, which this loop would call often)."""
    tmp = str(path.parent / f".tmp-{path.name}-{os.getpid()}-{threading.get_ident()}")
    try:
        return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), tmp
    except FileExistsError:
        return tempfile.mkstemp(dir=path.parent, prefix=".tmp-")


def atomic_write(path: Path, data: bytes, durable: bool = True) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one, never a part.

    With `durable=False` the data is not fsynced; call `os.sync()` before relying on it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class BlobStore:
    """Blobs under `root/ab/cdef...` named by their sha256."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, digest: str) -> Path:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"not a sha256 hex digest: {digest!r}")
        return self.root / digest[:2] / digest[2:]

    def has(self, digest: str) -> bool:
        return self.path(digest).exists()

    def put(self, data: bytes, digest: str | None = None, durable: bool = True) -> tuple[str, bool]:
        """Store `data`; returns (digest, created) where created is False if it was already there.

        Writing many blobs with `durable=False` and one `flush()` is much faster than an fsync each.
        """
        digest = digest or sha256_hex(data)
        path = self.path(digest)
        try:
            # A blob that a power cut left short (written, renamed, never synced) is written again.
            if path.stat().st_size == len(data):
                return digest, False
        except FileNotFoundError:
            pass
        atomic_write(path, data, durable=durable)
        return digest, True

    @staticmethod
    def flush() -> None:
        """Make every blob written with `durable=False` durable (call before committing rows)."""
        os.sync()

    def read(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    def delete(self, digests: Iterable[str]) -> int:
        n = 0
        for digest in digests:
            try:
                self.path(digest).unlink()
                n += 1
            except FileNotFoundError:
                pass
        return n

    def all_digests(self) -> set[str]:
        if not self.root.exists():
            return set()
        return {
            p.parent.name + p.name
            for p in self.root.glob("??/*")
            if p.is_file() and not p.name.startswith(".tmp-")
        }

    def gc(self, referenced: set[str]) -> int:
        """Delete blobs nothing references and temp files a crash left behind; returns how many."""
        removed = self.delete(self.all_digests() - referenced)
        for tmp in self.root.glob("??/.tmp-*"):
            tmp.unlink(missing_ok=True)
            removed += 1
        return removed
