"""The real datasets in ../shared ingest with the counts their READMEs state."""

from __future__ import annotations

import pytest

from storage.services import Services

pytestmark = pytest.mark.shared


def test_kangaroo_counts_and_quirks(services: Services, shared_dir) -> None:
    report = services.datasets.add("local", "kangaroo", shared_dir / "datasets" / "kangaroo.zip")
    assert (report.dataset.image_count, report.dataset.box_count) == (164, 266)
    assert report.dataset.label_counts == {"kangaroo": 266}
    assert report.label_images == {"kangaroo": 164}
    warnings = "\n".join(report.dataset.warnings)
    assert "00090.jpg" in warnings and "cut short" in warnings
    assert "00103.jpg (65537)" in warnings
    images = services.datasets.images(report.dataset.id)
    assert sum(b.truncated for i in images for b in i.boxes) == 62


def test_raccoon_counts_and_quirks(services: Services, shared_dir) -> None:
    report = services.datasets.add("local", "raccoon", shared_dir / "datasets" / "raccoon.zip")
    assert (report.dataset.image_count, report.dataset.box_count) == (200, 217)
    assert report.dataset.label_counts == {"raccoon": 217}
    warnings = "\n".join(report.dataset.warnings)
    for name in ("raccoon-150.jpg (L)", "raccoon-152.jpg (L)", "raccoon-161.jpg (L)"):
        assert name in warnings
    images = services.datasets.images(report.dataset.id)
    assert sum(b.truncated for i in images for b in i.boxes) == 59


def test_robosub_with_its_imagesets_keeps_the_published_test_split(
    services: Services, shared_dir, tmp_path
) -> None:
    """The published ImageSets/Main lists (1,349 train / 364 test) become the split; validation is drawn."""
    import zipfile

    root = tmp_path / "upload" / "VOCdevkit" / "VOC2017"
    for name in ("robosub_transdec.zip", "robosub_transdec-ImageSets.zip"):
        with zipfile.ZipFile(shared_dir / "datasets" / name) as zf:
            zf.extractall(root)
    report = services.datasets.add("local", "robosub", tmp_path / "upload")
    assert report.dataset.image_count == 1713
    assert report.dataset.layout == "Pascal VOC devkit"
    assert report.test_images == 364
    assert report.train_images + report.val_images == 1349
    assert 0.15 < report.val_images / 1349 < 0.3
    assert (
        "Test images kept from the export (ImageSets/Main (test.txt, train.txt))" in report.dataset.split_note
    )
    images = services.datasets.images(report.dataset.id)
    groups: dict[int, set] = {}
    for img in images:
        if img.dup_group is not None and img.split.value != "test":
            groups.setdefault(img.dup_group, set()).add(img.split)
    assert groups and all(len(s) == 1 for s in groups.values())
