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
from concurrent.futures import Future, ThreadPoolExecutor, wait
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


def atomic_write(path: Path, data: bytes, durable: bool = True, make_parent: bool = True) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one, never a part.

    With `durable=False` the data is not fsynced; call `os.sync()` before relying on it.
    """
    if make_parent:
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
        self._folders: set[str] = set()  # fan-out folders known to exist (saves a mkdir per blob)

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
    """Writes blobs on a few threads (file creation dominates ingest time) with bounded memory."""

    def __init__(self, blobs: BlobStore, threads: int = 2, in_flight: int = 32) -> None:
        self._blobs = blobs
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="blob")
        self._slots = threading.BoundedSemaphore(in_flight)
        self._futures: list[Future[tuple[str, bool]]] = []

    def put(self, data: bytes, digest: str) -> None:
        self._slots.acquire()
        future = self._pool.submit(self._blobs.put, data, digest, False)
        future.add_done_callback(lambda _f: self._slots.release())
        self._futures.append(future)

    def created(self) -> list[str]:
        """Wait for every write; return the digests this writer created (failed writes left out)."""
        wait(self._futures)
        return [f.result()[0] for f in self._futures if f.exception() is None and f.result()[1]]

    def finish(self) -> None:
        """Wait for every write; raise the first failure (a full disk, say)."""
        wait(self._futures)
        for f in self._futures:
            if (error := f.exception()) is not None:
                raise error

    def close(self) -> None:
        self._pool.shutdown(wait=True)
