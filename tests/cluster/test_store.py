"""The blob store remote workers share, on a folder and on a real S3 server (moto's, on loopback)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.store import BadStoreURL, ObjectStore, get_folder, open_store, put_folder
from tests.cluster.servers import s3_server


@pytest.fixture(params=["file", "s3"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ObjectStore]:
    if request.param == "file":
        yield open_store((tmp_path / "store").as_uri())
        return
    with s3_server("fieldlens-store-test") as env:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        yield open_store(env["FIELDLENS_STORE"] + "/prefix", env["FIELDLENS_S3_ENDPOINT_URL"])


def test_objects_round_trip_and_list_by_prefix(store: ObjectStore, tmp_path: Path) -> None:
    store.put("images/aa", b"first")
    source = tmp_path / "source.bin"
    source.write_bytes(b"second")
    store.put_file("images/bb", source)
    store.put("jobs/1/job.log", b"log")
    assert store.get("images/aa") == b"first"
    assert store.get("images/missing") is None
    assert store.keys("images/") == {"images/aa", "images/bb"}
    assert store.get_file("images/bb", tmp_path / "out" / "bb")
    assert (tmp_path / "out" / "bb").read_bytes() == b"second"
    assert not store.get_file("images/none", tmp_path / "out" / "none")
    assert not (tmp_path / "out" / "none").exists()


def test_a_folder_counts_only_once_its_last_file_is_up(store: ObjectStore, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "weights.h5").write_bytes(b"w" * 1000)
    (folder / "sub" / "labels.txt").write_text("a\nb\n")
    (folder / "manifest.json").write_text(json.dumps({"ok": True}))

    # Half an upload (everything but the manifest) is not a folder yet.
    store.put_file("models/7/weights.h5", folder / "weights.h5")
    assert not get_folder(store, "models/7", tmp_path / "half", "manifest.json")
    assert not (tmp_path / "half").exists()

    put_folder(store, "models/7", folder, "manifest.json")
    assert get_folder(store, "models/7", tmp_path / "copy", "manifest.json")
    copied = {
        p.relative_to(tmp_path / "copy").as_posix(): p.read_bytes()
        for p in (tmp_path / "copy").rglob("*")
        if p.is_file()
    }
    original = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert copied == original


def test_put_folder_sends_the_last_file_last(tmp_path: Path) -> None:
    sent: list[str] = []

    class Recorder:
        url = "memory://"

        def put_file(self, key: str, path: Path) -> None:
            sent.append(key)

    folder = tmp_path / "f"
    folder.mkdir()
    for name in ("z.bin", "manifest.json", "a.bin"):
        (folder / name).write_text(name)
    put_folder(Recorder(), "p", folder, "manifest.json")  # type: ignore[arg-type]
    assert sent[-1] == "p/manifest.json" and sorted(sent) == ["p/a.bin", "p/manifest.json", "p/z.bin"]


def test_a_store_url_that_names_nothing_usable_is_refused_with_what_to_give() -> None:
    with pytest.raises(BadStoreURL, match="file:///a/folder"):
        open_store("ftp://somewhere/x")
    with pytest.raises(BadStoreURL):
        open_store("s3://")


def test_a_key_cannot_leave_a_file_store(tmp_path: Path) -> None:
    store = open_store((tmp_path / "store").as_uri())
    with pytest.raises(ValueError, match="leaves the store"):
        store.put("../outside", b"x")
