"""Every export layout teams bring ingests into the same dataset: counts, labels, boxes in pixels, splits."""

from __future__ import annotations

from collections import Counter

import pytest

from storage.domain import Split
from storage.errors import UserError
from storage.services import Services
from tests import exports
from tests.exports import Photo, photos

PS = photos(train=6, valid=3, test=2)
BOXES = sum(len(p.boxes) for p in PS)
EXPORT_SPLIT = {"train": Split.TRAIN, "valid": Split.VAL, "test": Split.TEST}

LAYOUTS = {
    # name: (zip, layout name, converter, whether the export's three splits are kept)
    "roboflow voc": (lambda: exports.roboflow_voc(PS), "Roboflow Pascal VOC", "voc", True),
    "labelimg": (lambda: exports.labelimg(PS), "labelImg (XML beside each photo)", "voc", False),
    "labelimg at the top": (
        lambda: exports.labelimg(PS, folder=""),
        "labelImg (XML beside each photo)",
        "voc",
        False,
    ),
    "classic voc": (lambda: exports.classic_voc(PS, lists=False), "Pascal VOC", "voc", False),
    "voc with ImageSets": (lambda: exports.classic_voc(PS), "Pascal VOC", "voc", True),
    "voc devkit": (
        lambda: exports.classic_voc(PS, prefix="VOCdevkit/VOC2012/"),
        "Pascal VOC devkit",
        "voc",
        True,
    ),
    "cvat voc 1.1": (lambda: exports.classic_voc(PS, cvat=True), "CVAT Pascal VOC 1.1", "voc", True),
    "label studio voc": (lambda: exports.label_studio(PS), "Label Studio Pascal VOC", "voc", False),
    "roboflow coco": (lambda: exports.roboflow_coco(PS), "Roboflow COCO", "coco", True),
    "roboflow yolo": (lambda: exports.yolo(PS), "Roboflow YOLO", "yolo", True),
}


def _stored(services: Services, name: str) -> dict[str, tuple[Split, tuple]]:
    ds = services.datasets.get("local", name)
    out = {}
    for img in services.datasets.images(ds.id):
        stem = img.filename.split("_jpg.rf.")[0].removesuffix(".jpg")
        out[stem] = (img.split, tuple((b.label, b.xmin, b.ymin, b.xmax, b.ymax) for b in img.boxes))
    return out


@pytest.mark.parametrize("layout", list(LAYOUTS), ids=list(LAYOUTS))
def test_each_layout_ingests_the_same_photos_boxes_and_labels(services: Services, layout: str) -> None:
    make, name, converter, keeps_split = LAYOUTS[layout]
    report = services.datasets.add("local", "ds", make())
    assert report.dataset.image_count == len(PS)
    assert report.dataset.box_count == BOXES
    assert set(report.dataset.label_counts) == set(exports.LABELS)  # Roboflow's category 0 is no label
    assert (report.dataset.layout, report.dataset.converter) == (name, converter)
    assert not [w for w in report.dataset.warnings if "ignored" in w]
    stored = _stored(services, "ds")
    for p in PS:
        split, boxes = stored[p.stem]
        assert [b[0] for b in boxes] == [b[0] for b in p.boxes]
        for got, want in zip(boxes, p.boxes, strict=True):
            assert got[1:] == pytest.approx(want[1:], abs=1e-3)
        if keeps_split:
            assert split is EXPORT_SPLIT[p.split], p
    counts = Counter(split for split, _ in stored.values())
    if keeps_split:
        assert (counts[Split.TRAIN], counts[Split.VAL], counts[Split.TEST]) == (6, 3, 2)
        assert "kept from the export" in report.dataset.split_note
    else:
        assert counts[Split.TEST] == 0 and counts[Split.VAL] >= 1 and counts[Split.TRAIN] >= 1
        assert "drawn by FieldLens" in report.dataset.split_note


def test_plain_coco_takes_its_split_from_the_file_names(services: Services) -> None:
    report = services.datasets.add("local", "coco", exports.plain_coco(PS))
    assert report.dataset.layout == "COCO"
    assert (report.train_images, report.val_images, report.test_images) == (6, 5, 0)
    assert report.dataset.box_count == BOXES


def test_an_export_without_validation_gets_validation_drawn_from_its_training_images(
    services: Services,
) -> None:
    ps = [p for p in photos(train=10, valid=0, test=3)]
    report = services.datasets.add("local", "noval", exports.roboflow_voc(ps))
    assert report.test_images == 3
    assert report.val_images == 2 and report.train_images == 8
    assert "Test images kept from the export" in report.dataset.split_note
    assert report.to_json()["test_images"] == 3


def test_only_test_images_is_refused_with_what_to_do(services: Services) -> None:
    with pytest.raises(UserError, match="none of its 3 images in training"):
        services.datasets.add("local", "t", exports.roboflow_voc(photos(train=0, valid=0, test=3)))
    assert services.datasets.list_team("local") == []


@pytest.mark.parametrize(
    "yaml_text",
    [
        "train: train/images\nval: valid/images\nnames: {0: ball, 1: cone}\n",
        "path: /home/me/datasets/ftc\ntrain: /home/me/datasets/ftc/train/images\nval: valid/images\n"
        "test: test/images\nnames: [ball, cone]\n",
    ],
    ids=["relative paths, names as a mapping", "absolute paths made on a laptop"],
)
def test_yolo_paths_are_matched_inside_the_zip(services: Services, yaml_text: str) -> None:
    report = services.datasets.add("local", "y", exports.yolo(PS, yaml_text))
    assert report.train_images == 6 and report.val_images == 3


def test_a_yolo_class_number_outside_names_is_counted_not_guessed(services: Services) -> None:
    data = exports.yolo(PS, "train: ../train/images\nval: ../valid/images\nnames: [ball]\n")
    report = services.datasets.add("local", "y", data)
    assert set(report.dataset.label_counts) == {"ball"}
    assert any("no label or no numeric coordinates" in w for w in report.dataset.warnings)


def test_near_copies_stay_on_one_side_when_fieldlens_draws_the_split(services: Services) -> None:
    """Frames of one clip (consecutive numbers) and re-saved copies never straddle train and validation."""
    from storage.voc.synth import make_voc_zip

    base = make_voc_zip(images=60, seed=5)
    report = services.datasets.add("local", "synth", base)
    images = services.datasets.images(report.dataset.id)
    by_group: dict[int, set[Split]] = {}
    for img in images:
        if img.dup_group is not None:
            by_group.setdefault(img.dup_group, set()).add(img.split)
    assert by_group, "the synthetic frames are numbered consecutively, so some must be grouped"
    assert all(len(splits) == 1 for splits in by_group.values())
    assert "drawn by FieldLens" in report.dataset.split_note


def test_near_copies_across_an_exports_split_are_reported(services: Services) -> None:
    p = photos(train=3, valid=0, test=0)
    from tests.vocdata import image_bytes

    busy = image_bytes(64, 48, colour=(0, 0, 0))
    from io import BytesIO

    from PIL import Image, ImageDraw

    img = Image.open(BytesIO(busy)).convert("RGB")
    ImageDraw.Draw(img).rectangle((10, 10, 40, 30), fill=(250, 250, 250))
    ImageDraw.Draw(img).ellipse((30, 5, 60, 45), fill=(120, 200, 30))

    def save(quality: int) -> bytes:
        buf = BytesIO()
        img.save(buf, "JPEG", quality=quality)
        return buf.getvalue()

    class Shot(Photo):
        @property
        def jpg(self) -> bytes:  # the same picture saved twice at different qualities
            return save(90 if self.split == "train" else 60)

    shots = [Shot("clip_a_001", "train", p[0].boxes), Shot("other_b_009", "valid", p[1].boxes)]
    shots += [Photo(q.stem, "train", q.boxes) for q in p[1:]]
    report = services.datasets.add("local", "leaky", exports.roboflow_voc(shots))
    assert any("1 validation image is a near copy of training images" in line for line in report.dataset.lint)


def test_combining_keeps_test_images_in_test(services: Services) -> None:
    services.datasets.add("local", "a", exports.roboflow_voc(PS))
    services.datasets.add("local", "b", exports.yolo(PS))
    report = services.datasets.combine("local", "both", ["a", "b"])
    assert (report.train_images, report.val_images, report.test_images) == (12, 6, 4)
    assert report.dataset.layout == "combined"
