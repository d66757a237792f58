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
