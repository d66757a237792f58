"""TFLiteDetector: run an SSD-style detection model (boxes, classes, scores, count) on frames."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from edge.detection import Detection
from edge.errors import EdgeError, NotADetectionModel
from edge.files import LABELS
from edge.interpreter import load_interpreter
from edge.metadata import input_normalization, packed_labels
from edge.thresholds import resolve

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutputMap:
    boxes: int
    classes: int
    scores: int
    count: int


@dataclass(frozen=True)
class Geometry:
    """Where a frame of `frame_size` (w, h) sits in a model input of `input_size` (w, h):
    input pixel = frame pixel * scale + pad, per axis (pad is 0 unless letterboxed)."""

    frame_size: tuple[int, int]
    input_size: tuple[int, int]
    scale: tuple[float, float]
    pad: tuple[float, float]

    def to_frame(self, box: Sequence[float]) -> tuple[float, float, float, float]:
        """A model box (ymin, xmin, ymax, xmax) normalised to the input -> (xmin, ymin, xmax, ymax) in
        frame pixels, clipped to the frame."""
        (fw, fh), (iw, ih) = self.frame_size, self.input_size
        (sx, sy), (px, py) = self.scale, self.pad
        ymin, xmin, ymax, xmax = (float(v) for v in box)

        def clip(value: float, most: int) -> float:
            return min(max(value, 0.0), float(most))

        return (
            clip((xmin * iw - px) / sx, fw),
            clip((ymin * ih - py) / sy, fh),
            clip((xmax * iw - px) / sx, fw),
            clip((ymax * ih - py) / sy, fh),
        )


LETTERBOX_GREY = (114, 114, 114)


def fit_frame(frame: np.ndarray, width: int, height: int, letterbox: bool) -> tuple[np.ndarray, Geometry]:
    """Resize an RGB uint8 frame to (height, width, 3): stretched (as FieldLens trains), or letterboxed
    (aspect ratio kept, centred on grey bars). Returns the pixels and how to map boxes back."""
    h, w = frame.shape[:2]
    image = Image.fromarray(frame)
    if not letterbox:
        pixels = np.asarray(image.resize((width, height), Image.Resampling.BILINEAR))
        return pixels, Geometry((w, h), (width, height), (width / w, height / h), (0.0, 0.0))
    scale = min(width / w, height / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    canvas = Image.new("RGB", (width, height), LETTERBOX_GREY)
    px, py = (width - nw) // 2, (height - nh) // 2
    canvas.paste(image.resize((nw, nh), Image.Resampling.BILINEAR), (px, py))
    return np.asarray(canvas), Geometry((w, h), (width, height), (scale, scale), (float(px), float(py)))


def map_outputs(details: list[dict]) -> OutputMap:
    """Tell the four outputs apart by shape and name, not by position."""
    found = ", ".join(f"{d['name']} {tuple(d['shape'])}" for d in details)
    if len(details) != 4:
        raise NotADetectionModel(
            f"expected 4 outputs boxes/classes/scores/count, found {len(details)}: {found}"
        )
    boxes = [d for d in details if len(d["shape"]) == 3 and d["shape"][-1] == 4]
    count = [d for d in details if int(np.prod(d["shape"])) == 1]
    pairs = [d for d in details if len(d["shape"]) == 2 and d not in count]
    if len(boxes) != 1 or len(count) != 1 or len(pairs) != 2:
        raise NotADetectionModel(f"expected 4 outputs boxes/classes/scores/count, found {found}")

    def rank(d: dict) -> int:  # lower: classes
        name = d["name"].lower()
        if "score" in name or name.endswith(":2"):
            return 1
        if "class" in name or name.endswith(":1"):
            return 0
        return 2

    a, b = sorted(pairs, key=lambda d: (rank(d), d["index"]))
    if rank(a) == rank(b) == 2:
        a, b = sorted(pairs, key=lambda d: d["index"])  # the standard order: classes before scores
    return OutputMap(boxes[0]["index"], a["index"], b["index"], count[0]["index"])


def read_labels(path: Path | None, model_bytes: bytes, model_path: Path) -> list[str]:
    if path is not None:
        if not Path(path).is_file():
            raise EdgeError(f"Labels file {path} does not exist. Give the {LABELS} delivered with the model.")
        return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    packed = packed_labels(model_bytes)
    if packed:
        return packed
    beside = model_path.with_name(LABELS)
    if beside.is_file():
        return read_labels(beside, model_bytes, model_path)
    raise EdgeError(
        f"No labels for {model_path.name}: the model has none packed inside and there is no {LABELS} "
        "beside it. Pass --labels PATH."
    )


class TFLiteDetector:
    """Loads a detection .tflite and its labels; `detect(frame)` returns Detections.

    Frames are RGB uint8 arrays [H, W, 3]. The frame is resized to the model input (as FieldLens
    trains), or letterboxed to keep its aspect ratio; boxes come back in the frame's pixels.
    A detection is kept when its score reaches its label's threshold: the model's own unless
    `threshold` (every label) or `label_thresholds` (some labels) say otherwise (edge/thresholds.py).
    """

    def __init__(
        self,
        model: Path,
        labels: Path | None = None,
        threads: int = 2,
        threshold: float | None = None,
        label_thresholds: Mapping[str, float] | None = None,
        only: Iterable[str] | None = None,
        letterbox: bool = False,
    ) -> None:
        self.model_path = Path(model)
        self.interpreter = load_interpreter(self.model_path, threads)
        data = self.model_path.read_bytes()
        inputs = self.interpreter.get_input_details()
        if len(inputs) != 1 or len(inputs[0]["shape"]) != 4 or inputs[0]["shape"][-1] != 3:
            raise NotADetectionModel(
                f"expected one image input (1, H, W, 3), found {[tuple(i['shape']) for i in inputs]}"
            )
        self.input = inputs[0]
        self.height, self.width = int(self.input["shape"][1]), int(self.input["shape"][2])
        self.outputs = map_outputs(self.interpreter.get_output_details())
        self.labels = read_labels(labels, data, self.model_path)
        self.normalization = input_normalization(data) or (127.5, 127.5)
        unknown = set(label_thresholds or {}) - set(self.labels)
        if unknown:
            raise EdgeError(
                f"thresholds name unknown labels {sorted(unknown)}; the model's labels are {self.labels}"
            )
        self.thresholds = resolve(data, threshold, label_thresholds)
        self.only = set(only) if only else None
        self.letterbox = letterbox

    def preprocess(self, frame: np.ndarray) -> tuple[np.ndarray, Geometry]:
        """The input tensor [1, H, W, 3] of the model's dtype, and the geometry to map boxes back."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise EdgeError(f"expected an RGB uint8 frame (H, W, 3), got {frame.shape} {frame.dtype}")
        pixels, geometry = fit_frame(frame, self.width, self.height, self.letterbox)
        dtype = self.input["dtype"]
        if dtype == np.uint8:
            tensor = pixels
        elif dtype == np.int8:
            tensor = (pixels.astype(np.int16) - 128).astype(np.int8)
        else:
            mean, std = self.normalization
            tensor = ((pixels.astype(np.float32) - mean) / std).astype(dtype)
        return tensor[None], geometry

    def infer(self, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        it = self.interpreter
        it.set_tensor(self.input["index"], tensor)
        it.invoke()
        boxes = it.get_tensor(self.outputs.boxes)[0]
        classes = it.get_tensor(self.outputs.classes)[0]
        scores = it.get_tensor(self.outputs.scores)[0]
        count = int(np.asarray(it.get_tensor(self.outputs.count)).ravel()[0])
        return boxes, classes, scores, min(count, len(scores))

    def detect(self, frame: np.ndarray) -> list[Detection]:
        tensor, geometry = self.preprocess(frame)
        boxes, classes, scores, count = self.infer(tensor)
        h, w = frame.shape[:2]
        out = []
        for box, cls, score in zip(boxes[:count], classes[:count], scores[:count], strict=True):
            class_id = int(cls)
            label = self.labels[class_id] if 0 <= class_id < len(self.labels) else f"class {class_id}"
            if np.float32(score) < np.float32(self.thresholds.of(label)):  # as the trainer chose them
                continue
            if self.only is not None and label not in self.only:
                continue
            x0, y0, x1, y1 = geometry.to_frame(box)
            out.append(
                Detection(label, class_id, float(score), (x0, y0, x1, y1), (x0 / w, y0 / h, x1 / w, y1 / h))
            )
        return out
