"""The blob store that remote workers and the bot's machine share: `FIELDLENS_STORE`.

    file:///path      a folder (local, or an NFS mount every machine sees at the same path)
    s3://bucket/pfx   any S3-compatible server (AWS, MinIO, Ceph...) through boto3; the endpoint is
                      FIELDLENS_S3_ENDPOINT_URL and the keys come from the usual AWS_* variables

Keys:
    images/<sha256>                         a dataset image, named by its content
    jobs/<id>/checkpoints/<folder>/<file>   a job's checkpoints (see storage/checkpoints.py)
    jobs/<id>/checkpoints/latest.json       written last: a checkpoint is complete once it names it
    jobs/<id>/job.log                       the training process's log, sent at each checkpoint
    models/<id>/...                         a model folder, its manifest written last

A folder is "complete" once the file that says so (a manifest, latest.json) exists, so a reader on
another machine never takes half an upload for a whole one.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

from storage.blobs import atomic_write
from storage.errors import UserError


class BadStoreURL(UserError):
    """FIELDLENS_STORE names no store FieldLens can use."""


class ObjectStore(Protocol):
    url: str

    def put(self, key: str, data: bytes) -> None: ...
    def put_file(self, key: str, path: Path) -> None: ...
    def get(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is none."""

    def get_file(self, key: str, path: Path) -> bool:
        """Download to `path` (atomically); False when there is no such object."""

    def keys(self, prefix: str) -> set[str]:
        """Every key under `prefix`."""


class FileStore:
    """Objects as files under a folder; every write is atomic (temp file, rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.url = self.root.as_uri()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"key {key!r} leaves the store")
        return path

    def put(self, key: str, data: bytes) -> None:
        atomic_write(self._path(key), data)

    def put_file(self, key: str, path: Path) -> None:
        _copy_atomic(path, self._path(key))

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def get_file(self, key: str, path: Path) -> bool:
        source = self._path(key)
        if not source.is_file():
            return False
        _copy_atomic(source, path)
        return True

    def keys(self, prefix: str) -> set[str]:
        base = self._path(prefix) if prefix else self.root
        if not base.exists():
            return set()
        root = self.root.resolve()
        return {
            p.relative_to(root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".tmp-")
        }


def _copy_atomic(source: Path, target: Path) -> None:
    """Copy under a temporary name beside `target`, then rename: readers never see half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".tmp-{target.name}-{os.getpid()}")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


class S3Store:
    """Objects in an S3 bucket (under an optional prefix); S3 writes are atomic per object."""

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None) -> None:
        import boto3  # only the machines that use s3:// need it

        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.client = boto3.client("s3", endpoint_url=endpoint_url or None)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def put_file(self, key: str, path: Path) -> None:
        self.client.upload_file(str(path), self.bucket, self._key(key))

    def get(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None

    def get_file(self, key: str, path: Path) -> bool:
        data = self.get(key)
        if data is None:
            return False
        atomic_write(path, data, durable=False)
        return True

    def keys(self, prefix: str) -> set[str]:
        found: set[str] = set()
        strip = len(self.prefix) + 1 if self.prefix else 0
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(prefix)
        )
        for page in pages:
            found.update(o["Key"][strip:] for o in page.get("Contents", []))
        return found


def open_store(url: str, endpoint_url: str | None = None) -> ObjectStore:
    """The store a `FIELDLENS_STORE` value names."""
    parsed = urlparse(url)
    if parsed.scheme == "file" and parsed.path:
        return FileStore(Path(unquote(parsed.path)))
    if parsed.scheme == "s3" and parsed.netloc:
        return S3Store(parsed.netloc, parsed.path, endpoint_url)
    raise BadStoreURL(
        f"FIELDLENS_STORE={url!r} is not a store FieldLens can use. Give file:///a/folder (a folder "
        "every machine sees, NFS for instance) or s3://bucket (with FIELDLENS_S3_ENDPOINT_URL for a "
        "server other than AWS)."
    )


def put_folder(store: ObjectStore, prefix: str, folder: Path, last: str) -> None:
    """Upload every file of `folder` under `prefix`, the file named `last` after all the others."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    for path in sorted(files, key=lambda p: p.name == last and p.parent == folder):
        store.put_file(f"{prefix}/{path.relative_to(folder).as_posix()}", path)


def get_folder(store: ObjectStore, prefix: str, folder: Path, last: str) -> bool:
    """Download a folder `put_folder` wrote; False (and nothing written) unless it is complete."""
    keys = store.keys(prefix + "/")
    if f"{prefix}/{last}" not in keys:
        return False
    tmp = folder.with_name(folder.name + ".download")
    shutil.rmtree(tmp, ignore_errors=True)
    for key in keys:
        if not store.get_file(key, tmp / key[len(prefix) + 1 :]):
            raise FileNotFoundError(f"{key} vanished from {store.url} while it was being downloaded")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return True
