"""`/dataset upload` takes the zips teams really export (Roboflow COCO and YOLO, labelImg), splits kept."""

from __future__ import annotations

import pytest

from testkit.world import World
from tests import exports
from tests.bot.test_commands import upload

PS = exports.photos(train=6, valid=3, test=2)


@pytest.mark.parametrize(
    ("name", "make", "layout", "counts"),
    [
        ("rf-coco", lambda: exports.roboflow_coco(PS), "Roboflow COCO", "6 train, 3 validation, 2 test"),
        ("rf-yolo", lambda: exports.yolo(PS), "Roboflow YOLO", "6 train, 3 validation, 2 test"),
        ("labelimg", lambda: exports.labelimg(PS), "labelImg (XML beside each photo)", None),
    ],
)
def test_upload_reads_each_export_layout_and_says_how(
    world: World, name: str, make, layout: str, counts
) -> None:
    i = upload(world, name, make())
    text = i.text()
    assert f"Stored dataset **{name}**" in text, text
    assert f"Read as a {layout} export" in text
    if counts:
        assert counts in text and "Split kept from the export" in text
    else:
        assert "drawn by FieldLens" in text
    stored = world.call(lambda: world.bot.services.datasets.report(world.team_a.id, name))
    assert stored.test_images == (2 if counts else 0)
