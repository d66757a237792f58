"""Every source that runs here (image, folder, video file) and every output (JSON lines, saved files,
MJPEG stream, NetworkTables), through the real CLI and interpreter."""

from __future__ import annotations

import json
import socket
import time
import urllib.request

import numpy as np
import pytest
from click.testing import CliRunner

from edge.cli import main
from edge.errors import SourceError
from edge.sources import open_source
from tests.edge.conftest import rgb

pytestmark = pytest.mark.slow


def _run(*args: str, ok: bool = True):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert (result.exit_code == 0) == ok, result.output
    return result


def _records(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def video(frames_dir, tmp_path_factory):
    import cv2

    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10, (320, 240))
    for p in sorted(frames_dir.glob("*.jpg")):
        frame = cv2.resize(cv2.cvtColor(rgb(p), cv2.COLOR_RGB2BGR), (320, 240))
        writer.write(frame)
        writer.write(frame)
    writer.release()
    return path


def test_image_source_json_lines(int8_model, frames_dir) -> None:
    image = sorted(frames_dir.glob("*.jpg"))[0]
    (record,) = _records(
        _run("run", "--model", str(int8_model), "--source", str(image), "--json", "--threshold", "0.3")
    )
    assert record["frame"] == 0 and record["source"] == image.name
    assert record["latency_ms"] > 0 and isinstance(record["timestamp"], float)
    assert record["detections"] and {"label", "score", "box", "box_norm", "class_id"} <= set(
        record["detections"][0]
    )


def test_folder_source_reports_an_unreadable_image_and_goes_on(int8_model, frames_dir, tmp_path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    for p in sorted(frames_dir.glob("*.jpg"))[:2]:
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "aaa_broken.jpg").write_bytes(b"not a jpeg")
    records = _records(
        _run(
            "run",
            "--model",
            str(int8_model),
            "--source",
            str(folder),
            "--json",
            "--save",
            str(tmp_path / "out"),
        )
    )
    assert [r["frame"] for r in records] == [0, 1, 2]
    assert "cannot read image" in records[0]["error"]
    assert all("detections" in r for r in records[1:])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        p.name for p in folder.glob("synth*")
    )


def test_single_unreadable_image_is_a_clear_error(int8_model, tmp_path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG broken")
    result = _run("run", "--model", str(int8_model), "--source", str(bad), ok=False)
    assert "Error: cannot read image" in result.output
    with pytest.raises(SourceError, match="does not exist"):
        open_source(str(tmp_path / "missing.jpg"))


def test_video_file_source_and_annotated_video(int8_model, video, tmp_path) -> None:
    records = _records(
        _run(
            "run",
            "--model",
            str(int8_model),
            "--source",
            str(video),
            "--json",
            "--save",
            str(tmp_path / "out"),
            "--threshold",
            "0.3",
        )
    )
    assert len(records) == 10
    assert [r["frame"] for r in records] == list(range(10))
    assert sum(len(r["detections"]) for r in records) > 0
    import cv2

    capture = cv2.VideoCapture(str(tmp_path / "out" / "annotated.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 10


def test_loop_and_max_frames(int8_model, frames_dir) -> None:
    image = sorted(frames_dir.glob("*.jpg"))[0]
    records = _records(
        _run(
            "run", "--model", str(int8_model), "--source", str(image), "--json", "--loop", "--max-frames", "4"
        )
    )
    assert [r["frame"] for r in records] == [0, 1, 2, 3]


def test_mjpeg_stream_page_and_detections(int8_model, frames_dir) -> None:
    from edge.detector import TFLiteDetector
    from edge.sources import open_source
    from edge.stream import MJPEGServer

    server = MJPEGServer(host="127.0.0.1", port=0)
    try:
        detector = TFLiteDetector(int8_model, threshold=0.3)
        frame = next(open_source(str(sorted(frames_dir.glob("*.jpg"))[0])))
        server.write(frame, detector.detect(frame.image), 1.0)
        base = f"http://127.0.0.1:{server.port}"
        page = urllib.request.urlopen(base + "/", timeout=5).read().decode()
        assert '<img src="/stream"' in page
        latest = json.loads(urllib.request.urlopen(base + "/detections", timeout=5).read())
        assert latest["frame"] == 0 and "detections" in latest
        with urllib.request.urlopen(base + "/stream", timeout=5) as stream:
            assert stream.headers["Content-Type"].startswith("multipart/x-mixed-replace")
            head = stream.read(200)
            assert b"Content-Type: image/jpeg" in head and b"\xff\xd8" in head
    finally:
        server.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_networktables_publishes_the_documented_layout(int8_model, frames_dir) -> None:
    import ntcore

    from edge.detector import TFLiteDetector
    from edge.outputs import NetworkTablesOutput

    port = _free_port()
    robot = ntcore.NetworkTableInstance.create()
    robot.startServer(listen_address="127.0.0.1", port4=port)
    try:
        output = NetworkTablesOutput(f"127.0.0.1:{port}")
        table = robot.getTable("FieldLens")
        count = table.getIntegerTopic("count").subscribe(-1)
        labels = table.getStringArrayTopic("labels").subscribe([])
        boxes = table.getDoubleArrayTopic("boxes").subscribe([])
        detector = TFLiteDetector(int8_model, threshold=0.3)
        frame = next(open_source(str(sorted(frames_dir.glob("*.jpg"))[0])))
        detections = detector.detect(frame.image)
        deadline = time.time() + 10
        while count.get() != len(detections) and time.time() < deadline:
            output.write(frame, detections, 2.5)
            time.sleep(0.1)
        assert count.get() == len(detections) > 0
        assert list(labels.get()) == [d.label for d in detections]
        assert np.allclose(boxes.get(), [v for d in detections for v in d.box_norm])
        output.close()
    finally:
        robot.stopServer()


def test_bench_json_has_the_figures(int8_model) -> None:
    r = json.loads(_run("bench", "--model", str(int8_model), "--runs", "20", "--json").stdout)
    assert (
        r["median_ms"] > 0
        and r["p95_ms"] >= r["median_ms"]
        and r["fps"] == pytest.approx(1000 / r["median_ms"])
    )
    assert r["with_preprocessing"]["median_ms"] >= r["median_ms"] * 0.5
