"""The edge runtime's score thresholds: the model's own by default, the user's when given."""

from __future__ import annotations

import io
import json
import urllib.request
import zipfile

import numpy as np
import pytest

from edge.metadata import packed_thresholds, score_threshold
from edge.thresholds import DEFAULT_THRESHOLD, model_thresholds, resolve
from trainer.metadata import detection_metadata

PACKED = {"version": 1, "overall": 0.42, "labels": {"ball": 0.4, "cone": 0.55}}


def with_files(model: bytes, files: dict[str, bytes]) -> bytes:
    out = io.BytesIO(model)
    out.seek(0, io.SEEK_END)
    with zipfile.ZipFile(out, "a", zipfile.ZIP_STORED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return out.getvalue()


def metadata_only(threshold: float | None) -> bytes:
    meta = detection_metadata("m", "d", 128, "labels.txt", "0", score_threshold=threshold)
    return b"\x00" * 64 + meta + b"\x00" * 64  # as it sits in a model's buffer


def test_packed_thresholds_win_then_the_metadata_then_the_default() -> None:
    packed = with_files(metadata_only(0.3), {"thresholds.json": json.dumps(PACKED).encode()})
    found = model_thresholds(packed)
    assert (found.overall, found.labels, found.source) == (0.42, PACKED["labels"], "the model")
    assert found.of("cone") == 0.55 and found.of("robot") == 0.42
    assert score_threshold(metadata_only(0.3)) == pytest.approx(0.3)
    assert model_thresholds(metadata_only(0.3)).source == "the model's metadata"
    assert score_threshold(metadata_only(None)) is None
    assert model_thresholds(b"not a model").overall == DEFAULT_THRESHOLD


def test_the_users_thresholds_replace_the_models() -> None:
    packed = with_files(b"model", {"thresholds.json": json.dumps(PACKED).encode()})
    every = resolve(packed, threshold=0.6)
    assert every.of("ball") == 0.6 and every.source == "--threshold"
    one = resolve(packed, label_thresholds={"ball": 0.9})
    assert one.of("ball") == 0.9 and one.of("cone") == 0.55 and "--label-threshold" in one.describe()


@pytest.mark.parametrize("junk", [b"", b"PK\x03\x04 broken", with_files(b"m", {"thresholds.json": b"{nope"})])
def test_unreadable_packed_thresholds_are_ignored(junk: bytes) -> None:
    assert packed_thresholds(junk) is None


def test_the_stream_page_shows_the_thresholds_in_use() -> None:
    from edge.stream import MJPEGServer

    server = MJPEGServer(
        host="127.0.0.1", port=0, caption="score thresholds 0.42 (ball 0.40), from <the model>"
    )
    try:
        page = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=5).read().decode()
    finally:
        server.close()
    assert "score thresholds 0.42 (ball 0.40), from &lt;the model&gt;" in page


@pytest.mark.slow
def test_the_delivered_model_carries_its_thresholds_to_the_detector(trained_model, frames_dir) -> None:
    from edge.detector import TFLiteDetector
    from tests.edge.conftest import rgb

    chosen = trained_model.manifest.thresholds
    model = trained_model.out_dir / "model_int8.tflite"
    detector = TFLiteDetector(model)
    assert detector.thresholds.source == "the model"
    assert detector.thresholds.overall == chosen.overall.score
    assert detector.thresholds.labels == {k: v.score for k, v in chosen.labels.items()}
    assert score_threshold(model.read_bytes()) == pytest.approx(chosen.overall.score)
    everything = TFLiteDetector(model, threshold=0.0)
    for path in sorted(frames_dir.glob("*.jpg")):
        frame = rgb(path)
        kept = detector.detect(frame)
        expected = [
            d
            for d in everything.detect(frame)
            if np.float32(d.score) >= np.float32(chosen.score_for(d.label))
        ]
        assert kept == expected
