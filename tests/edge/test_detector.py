"""TFLiteDetector with the real LiteRT interpreter on the session's real int8 model."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from edge.detector import TFLiteDetector
from edge.errors import EdgeError
from storage.voc.synth import make_voc_zip
from tests.edge.conftest import rgb

pytestmark = pytest.mark.slow


def _truth(name: str):
    """Ground-truth boxes of a synthetic image, read back from its VOC annotation."""
    import defusedxml.ElementTree as ET

    with zipfile.ZipFile(io.BytesIO(make_voc_zip(images=40, seed=21))) as zf:
        root = ET.fromstring(zf.read(f"Annotations/{name.replace('.jpg', '.xml')}"))
    return [
        (o.findtext("name"), *(float(o.find("bndbox").findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")))
        for o in root.iter("object")
    ]


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_detections_land_on_the_objects_in_frame_pixels(int8_model, frames_dir) -> None:
    """The real model on frames like those it was trained on (stretched to its input, as it trained)."""
    detector = TFLiteDetector(int8_model, threshold=0.3)
    assert detector.labels == ["circle", "square", "triangle"]
    hits = total = 0
    for path in sorted(frames_dir.glob("*.jpg")):
        frame = rgb(path)
        detections = detector.detect(frame)
        h, w = frame.shape[:2]
        for d in detections:
            assert 0 <= d.box[0] < d.box[2] <= w and 0 <= d.box[1] < d.box[3] <= h
            assert d.box_norm == pytest.approx((d.box[0] / w, d.box[1] / h, d.box[2] / w, d.box[3] / h))
        for label, *box in _truth(path.name):
            total += 1
            hits += any(d.label == label and _iou(d.box, box) > 0.5 for d in detections)
    assert hits >= 0.7 * total, (hits, total)


def _oracle():
    """A stand-in for the interpreter whose answer is known: the bright rectangle in the input it is
    given, as (ymin, xmin, ymax, xmax) normalised, class 1, score 0.9. Whatever the detector did to
    the frame (stretch or letterbox), mapping this box back must land on the rectangle in the frame."""

    def infer(tensor: np.ndarray):
        pixels = tensor[0].astype(np.int16)
        ys, xs = np.nonzero(pixels[..., 0] > 200)
        h, w = pixels.shape[:2]
        box = [ys.min() / h, xs.min() / w, (ys.max() + 1) / h, (xs.max() + 1) / w]
        return np.array([box], np.float32), np.array([1.0]), np.array([0.9]), 1

    return infer


@pytest.mark.parametrize("letterbox", [False, True])
@pytest.mark.parametrize(
    ("width", "height", "box"), [(640, 360, (400, 60, 560, 300)), (360, 640, (30, 420, 330, 600))]
)
def test_letterboxed_and_stretched_boxes_map_back_to_frame_pixels(
    int8_model, letterbox, width, height, box
) -> None:
    """The letterbox geometry through `detect()`, on known boxes rather than a tiny model's accuracy."""
    detector = TFLiteDetector(int8_model, threshold=0.3, letterbox=letterbox)
    detector.infer = _oracle()  # type: ignore[method-assign]
    frame = np.full((height, width, 3), 20, np.uint8)
    x0, y0, x1, y1 = box
    frame[y0:y1, x0:x1] = 255
    (d,) = detector.detect(frame)
    assert d.label == "square" and d.score == pytest.approx(0.9)
    assert d.box == pytest.approx(box, abs=1.5 * max(width, height) / 128), (d.box, box)
    assert _iou(d.box, box) > 0.9
    assert d.box_norm == pytest.approx(
        (d.box[0] / width, d.box[1] / height, d.box[2] / width, d.box[3] / height)
    )


def test_thresholds_and_label_filter(int8_model, frames_dir) -> None:
    frame = rgb(sorted(frames_dir.glob("*.jpg"))[0])
    everything = TFLiteDetector(int8_model, threshold=0.0).detect(frame)
    assert len(everything) > 0
    assert all(d.score >= 0.9 for d in TFLiteDetector(int8_model, threshold=0.9).detect(frame))
    only = TFLiteDetector(int8_model, threshold=0.0, only=["square"]).detect(frame)
    assert {d.label for d in only} <= {"square"}
    strict = TFLiteDetector(int8_model, threshold=0.0, label_thresholds={"circle": 1.01}).detect(frame)
    assert all(d.label != "circle" for d in strict)
    with pytest.raises(EdgeError, match="unknown labels"):
        TFLiteDetector(int8_model, label_thresholds={"robot": 0.5})


def test_missing_labels_file_is_named(int8_model, tmp_path) -> None:
    with pytest.raises(EdgeError, match=r"Labels file .* does not exist"):
        TFLiteDetector(int8_model, labels=tmp_path / "nope.txt")
    bare = tmp_path / "bare.tflite"
    data = int8_model.read_bytes()
    bare.write_bytes(data[: data.find(b"PK\x03\x04")])  # strip the packed labels
    with pytest.raises(EdgeError, match=r"No labels for bare.tflite"):
        TFLiteDetector(bare)
    (tmp_path / "labels.txt").write_text("a\nb\nc\n")
    assert TFLiteDetector(bare).labels == ["a", "b", "c"]


def test_float_model_uses_the_normalisation_in_its_metadata(trained_model, frames_dir) -> None:
    detector = TFLiteDetector(trained_model.out_dir / "model_float.tflite", threshold=0.3)
    assert detector.normalization == (0.0, 1.0)
    frame = rgb(sorted(frames_dir.glob("*.jpg"))[0])
    int8 = TFLiteDetector(trained_model.out_dir / "model_int8.tflite", threshold=0.3).detect(frame)
    flt = detector.detect(frame)
    assert {d.label for d in flt} == {d.label for d in int8}
