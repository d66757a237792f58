"""Datasets of a team: split, combine, delete, isolation and names, on real SQLite and files."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from edge.draw import contact_sheet
from storage.errors import DatasetLabelsDiffer, InvalidName, NameTaken, NotFound
from storage.services import Services
from storage.voc.synth import make_voc_zip
from tests.vocdata import good_files, make_zip, voc_xml


def test_split_is_deterministic_stored_and_about_80_20(services: Services, synth_zip: bytes) -> None:
    a = services.datasets.add("local", "a", synth_zip)
    b = services.datasets.add("local", "b", synth_zip)
    split_a = [(i.filename, i.split) for i in services.datasets.images(a.dataset.id)]
    split_b = [(i.filename, i.split) for i in services.datasets.images(b.dataset.id)]
    assert split_a == split_b
    assert (a.train_images, a.val_images) == (19, 5)
    assert a.dataset.split_seed == 1234 and a.dataset.val_fraction == 0.2


def test_combine_requires_identical_labels_and_names_the_difference(services: Services) -> None:
    services.datasets.add("local", "balls", make_zip(good_files(2)))
    other = good_files(2)
    other["Annotations/img0.xml"] = voc_xml("img0.jpg", objects=[("cone", 1, 1, 20, 20)])
    services.datasets.add("local", "cones", make_zip(other))
    with pytest.raises(DatasetLabelsDiffer, match=r"only in 'balls': none; only in 'cones': cone"):
        services.datasets.combine("local", "both", ["balls", "cones"])
    assert [d.name for d in services.datasets.list_team("local")] == ["balls", "cones"]


def test_combine_reuses_blobs_keeps_splits_and_originals(services: Services) -> None:
    services.datasets.add("local", "one", make_voc_zip(images=10, seed=1))
    services.datasets.add("local", "two", make_voc_zip(images=10, seed=2))
    blobs_before = services.blobs.all_digests()
    report = services.datasets.combine("local", "both", ["one", "two"])
    assert services.blobs.all_digests() == blobs_before  # nothing copied
    assert report.dataset.image_count == 20
    assert report.dataset.parents == [services.datasets.get("local", n).id for n in ("one", "two")]
    originals = {
        i.filename: i.split
        for n in ("one", "two")
        for i in services.datasets.images(services.datasets.get("local", n).id)
    }
    combined = {i.filename: i.split for i in services.datasets.images(report.dataset.id)}
    assert combined == originals
    assert {d.name for d in services.datasets.list_team("local")} == {"one", "two", "both"}


def test_delete_removes_only_unshared_blobs(services: Services) -> None:
    services.datasets.add("local", "one", make_voc_zip(images=6, seed=1))
    services.datasets.add("local", "two", make_voc_zip(images=6, seed=2))
    services.datasets.combine("local", "both", ["one", "two"])
    all_blobs = services.blobs.all_digests()
    services.datasets.delete("local", "one")
    assert services.blobs.all_digests() == all_blobs  # still used by "both"
    services.datasets.delete("local", "both")
    two = {i.sha256 for i in services.datasets.images(services.datasets.get("local", "two").id)}
    assert services.blobs.all_digests() == two
    assert services.db["boxes"].count == sum(
        len(i.boxes) for i in services.datasets.images(services.datasets.get("local", "two").id)
    )


def test_teams_see_only_their_own_datasets(services: Services, synth_zip: bytes) -> None:
    services.datasets.add("guild-1", "mine", synth_zip)
    assert services.datasets.list_team("guild-2") == []
    with pytest.raises(NotFound):
        services.datasets.get("guild-2", "mine")
    with pytest.raises(NotFound):
        services.datasets.get_by_id("guild-2", services.datasets.get("guild-1", "mine").id)
    with pytest.raises(NotFound):
        services.datasets.delete("guild-2", "mine")
    services.datasets.add("guild-2", "mine", synth_zip)  # same name in another team is fine
    assert len(services.datasets.list_team("guild-1")) == 1


@pytest.mark.parametrize("name", ["", " ", "../etc", "a/b", "-x", "x" * 65, "naïve\u0000"])
def test_invalid_names_are_refused(services: Services, synth_zip: bytes, name: str) -> None:
    with pytest.raises(InvalidName, match="not a valid name"):
        services.datasets.add("local", name, synth_zip)


def test_taken_name_is_refused_before_reading_the_zip(services: Services, synth_zip: bytes) -> None:
    services.datasets.add("local", "taken", synth_zip)
    with pytest.raises(NameTaken, match="already has a dataset named 'taken'"):
        services.datasets.add("local", "taken", b"not even a zip")


def test_preview_is_a_png_with_boxes(services: Services, synth_zip: bytes) -> None:
    services.datasets.add("local", "p", synth_zip)
    png = contact_sheet(*services.datasets.preview_images("local", "p", count=4))
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG"
    assert img.size == (4 * 256, 256)
    assert len(np.unique(np.asarray(img.convert("RGB")).reshape(-1, 3), axis=0)) > 50  # not blank


def test_a_write_failing_midway_stops_the_ingest_and_leaves_nothing(services: Services, monkeypatch) -> None:
    """A full disk, say: the reading threads stop taking new photos, and what was written goes."""
    real_put, calls = services.blobs.put, []

    def put(data: bytes, digest: str | None = None, durable: bool = True) -> tuple[str, bool]:
        calls.append(digest)
        if len(calls) == 20:
            raise OSError(28, "No space left on device")
        return real_put(data, digest, durable)

    monkeypatch.setattr(services.blobs, "put", put)
    with pytest.raises(OSError, match="No space left"):
        services.datasets.add("local", "x", make_voc_zip(images=200, seed=3))
    assert len(calls) < 100
    assert services.blobs.all_digests() == set()
    assert services.db["datasets"].count == 0 and services.db["images"].count == 0


def test_failed_ingest_after_blobs_were_written_removes_them(services: Services, monkeypatch) -> None:
    """A crash between blob writes and the row insert leaves no new blob behind."""

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(services.datasets, "_insert", boom)
    with pytest.raises(RuntimeError):
        services.datasets.add("local", "x", make_voc_zip(images=5, seed=9))
    assert services.blobs.all_digests() == set()
    assert services.db["datasets"].count == 0
