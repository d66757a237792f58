"""Where detections go: JSON lines, annotated files, an MJPEG stream, NetworkTables.

Every output has `write(frame, detections, latency_ms)` and `close()`.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from edge.detection import Detection
from edge.draw import annotate
from edge.errors import EdgeError
from edge.sources import Frame

log = logging.getLogger(__name__)


def frame_record(frame: Frame, detections: Sequence[Detection], latency_ms: float | None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "frame": frame.index,
        "source": frame.name,
        "timestamp": round(frame.timestamp, 3),
    }
    if frame.error is not None:
        record["error"] = frame.error
        return record
    record["latency_ms"] = round(latency_ms or 0.0, 2)
    record["detections"] = [d.to_json() for d in detections]
    return record


class JsonLines:
    """One JSON object per frame: frame index, source, timestamp, latency and detections."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout

    def write(self, frame: Frame, detections: Sequence[Detection], latency_ms: float | None) -> None:
        self.stream.write(json.dumps(frame_record(frame, detections, latency_ms)) + "\n")
        self.stream.flush()

    def close(self) -> None:
        pass


class SaveAnnotated:
    """Annotated images (one per image frame) or, for video and cameras, annotated.mp4 in a folder."""

    def __init__(self, folder: Path, fps: float = 15.0) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.fps = fps
        self._video: Any = None

    def write(self, frame: Frame, detections: Sequence[Detection], latency_ms: float | None) -> None:
        if frame.image is None:
            return
        image = annotate(frame.image, detections)
        if "#" not in frame.name:  # an image file
            image.save(self.folder / (Path(frame.name).stem + ".jpg"), quality=90)
            return
        import cv2

        if self._video is None:
            self._video = cv2.VideoWriter(
                str(self.folder / "annotated.mp4"), cv2.VideoWriter.fourcc(*"mp4v"), self.fps, image.size
            )
        self._video.write(cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        if self._video is not None:
            self._video.release()


class NetworkTablesOutput:
    """Publishes each frame's detections to NetworkTables 4 for FRC robots (needs pyntcore).

    Table /FieldLens (see the README for the layout): count (int), labels (string[]),
    scores (double[]), boxes (double[]: xmin, ymin, xmax, ymax normalised, 4 per detection),
    latency_ms (double), frame (int), json (string: the JSON-lines record).
    """

    def __init__(self, server: str, table: str = "FieldLens", instance: Any = None) -> None:
        try:
            import ntcore
        except ImportError as e:
            raise EdgeError("NetworkTables output needs pyntcore: pip install 'fieldlens[edge-nt]'.") from e
        if instance is None:
            instance = ntcore.NetworkTableInstance.create()
            instance.startClient4("fieldlens-edge")
            host, _, port = server.partition(":")
            if port:
                instance.setServer(host, int(port))
            elif server.isdigit():
                instance.setServerTeam(int(server))  # an FRC team number
            else:
                instance.setServer(host)
            self._owned = True
        else:
            self._owned = False
        self.instance = instance
        t = instance.getTable(table)
        self.pubs = {
            "count": t.getIntegerTopic("count").publish(),
            "labels": t.getStringArrayTopic("labels").publish(),
            "scores": t.getDoubleArrayTopic("scores").publish(),
            "boxes": t.getDoubleArrayTopic("boxes").publish(),
            "latency_ms": t.getDoubleTopic("latency_ms").publish(),
            "frame": t.getIntegerTopic("frame").publish(),
            "json": t.getStringTopic("json").publish(),
        }

    def write(self, frame: Frame, detections: Sequence[Detection], latency_ms: float | None) -> None:
        p = self.pubs
        p["count"].set(len(detections))
        p["labels"].set([d.label for d in detections])
        p["scores"].set([d.score for d in detections])
        p["boxes"].set([v for d in detections for v in d.box_norm])
        p["latency_ms"].set(latency_ms or 0.0)
        p["frame"].set(frame.index)
        p["json"].set(json.dumps(frame_record(frame, detections, latency_ms)))
        self.instance.flush()

    def close(self) -> None:
        for pub in self.pubs.values():
            pub.close()
        if self._owned:
            self.instance.stopClient()
