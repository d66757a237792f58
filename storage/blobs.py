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

_HEX = frozenset("0123456789abcdef")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _create_temp(path: Path) -> tuple[int, str]:
    """A new temp file beside `path` (cheaper than `tempfile.mkstemp`, which this loop would call often)."""
    tmp = str(path.parent / f".tmp-{path.name}-{os.getpid()}-{threading.get_ident()}")
    try:
        return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), tmp
    except FileExistsError:
        return tempfile.mkstemp(dir=path.parent, prefix=".tmp-")


def atomic_write(path: Path, data: bytes, durable: bool = True, make_parent: bool = True) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one, never a part.

    With `durable=False` the data is not fsynced; call `os.sync()` before relying on it.
    """
    if make_parent:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    try:
        try:
            view = memoryview(data)
            while view:  # os.write may write less than asked (a signal, a full pipe)
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class BlobStore:
    """Blobs under `root/ab/cdef...` named by their sha256."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._folders: set[str] = set()  # fan-out folders known to exist (saves a mkdir per blob)

    def path(self, digest: str) -> Path:
        if len(digest) != 64 or not _HEX.issuperset(digest):
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
            if os.stat(path).st_size == len(data):
                return digest, False
        except FileNotFoundError:
            pass
        try:
            atomic_write(path, data, durable=durable, make_parent=digest[:2] not in self._folders)
        except FileNotFoundError:  # the folder was removed behind our back
            atomic_write(path, data, durable=durable)
        self._folders.add(digest[:2])
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


class BlobWriter:
    """Stores the blobs of one ingest without an fsync each, and remembers the ones it created.

    `put` writes on the calling thread: ingest calls it from its reading threads, one per core,
    and file creation releases the GIL, so a pool of its own would only add hand-offs. Call
    `BlobStore.flush()` before committing rows that name these blobs; `created()` lists what to
    remove when the ingest fails.
    """

    def __init__(self, blobs: BlobStore) -> None:
        self._blobs = blobs
        self._created: list[str] = []

    def put(self, data: bytes, digest: str) -> None:
        """Store `data` under `digest`; thread-safe (a failure, a full disk say, raises here)."""
        digest, created = self._blobs.put(data, digest, durable=False)
        if created:
            self._created.append(digest)

    def created(self) -> list[str]:
        """The digests this writer created so far."""
        return list(self._created)
