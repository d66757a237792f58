"""bench/yolo.py hands Ultralytics the same images and boxes FieldLens trains on."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from bench.yolo import write_yolo_layout
from trainer.data import Sample


def _image(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 20), (200, 10, 10)).save(out, format=fmt)
    return out.getvalue()


def test_the_yolo_layout_holds_each_image_with_its_boxes_as_centre_and_size(tmp_path: Path) -> None:
    jpeg, png = _image("JPEG"), _image("PNG")
    boxed = Sample("a1", lambda: jpeg, np.array([[0.1, 0.2, 0.5, 0.6]], np.float32), np.array([2], np.int32))
    empty = Sample("b2", lambda: png, np.zeros((0, 4), np.float32), np.zeros((0,), np.int32))
    paths = write_yolo_layout(tmp_path, {"train": [boxed], "val": [empty]}, ["buoy: red", "gate"])

    assert paths == {
        "train": {"a1": tmp_path / "images/train/a1.jpg"},
        "val": {"b2": tmp_path / "images/val/b2.png"},
    }
    assert paths["train"]["a1"].read_bytes() == jpeg  # the bytes as stored, not re-encoded
    (line,) = (tmp_path / "labels/train/a1.txt").read_text().splitlines()
    cls, *xywh = line.split()
    assert cls == "1"  # FieldLens's classes count from 1 (0 is the background), YOLO's from 0
    np.testing.assert_allclose([float(v) for v in xywh], [0.4, 0.3, 0.4, 0.4], atol=1e-6)
    assert (tmp_path / "labels/val/b2.txt").read_text() == ""  # a photo without objects
    data = yaml.safe_load((tmp_path / "data.yaml").read_text())
    assert data == {
        "path": str(tmp_path),
        "train": "images/train",
        "val": "images/val",
        "names": {0: "buoy: red", 1: "gate"},
    }
