"""The content-addressed file store."""

from __future__ import annotations

import pytest

from storage.blobs import BlobStore, sha256_hex


def test_put_is_content_addressed_and_idempotent(tmp_path) -> None:
    store = BlobStore(tmp_path)
    digest, created = store.put(b"hello")
    assert digest == sha256_hex(b"hello") and created
    assert store.put(b"hello") == (digest, False)
    assert store.read(digest) == b"hello"
    assert list(tmp_path.rglob(".tmp-*")) == []


def test_a_short_blob_left_by_a_power_cut_is_rewritten(tmp_path) -> None:
    store = BlobStore(tmp_path)
    digest, _ = store.put(b"hello world")
    store.path(digest).write_bytes(b"hel")
    assert store.put(b"hello world") == (digest, True)
    assert store.read(digest) == b"hello world"


def test_gc_removes_unreferenced_blobs_and_temp_files(tmp_path) -> None:
    store = BlobStore(tmp_path)
    keep, _ = store.put(b"keep")
    drop, _ = store.put(b"drop")
    (store.path(keep).parent / ".tmp-crashed").write_bytes(b"partial")
    assert store.gc({keep}) == 2
    assert store.all_digests() == {keep}
    assert not store.has(drop)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "abc", "G" * 64])
def test_non_digest_names_are_rejected(tmp_path, bad: str) -> None:
    with pytest.raises(ValueError):
        BlobStore(tmp_path).path(bad)
