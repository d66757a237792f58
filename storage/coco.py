"""COCO mAP with pycocotools, without TensorFlow: the trainer's evaluation (trainer/evaluate.py) and
`model compare` (storage/model_compare.py, which the bot runs) measure with this one function.

Boxes are (ymin, xmin, ymax, xmax) normalised; classes are 1..C. They are put on a 1000x1000 canvas
for pycocotools (IoU does not change), all in COCO's "all" area range, up to 100 detections an image.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np


class Detected(Protocol):
    @property
    def boxes(self) -> np.ndarray: ...  # [K, 4]
    @property
    def scores(self) -> np.ndarray: ...  # [K]
    @property
    def classes(self) -> np.ndarray: ...  # [K] int, 1..C


def _coco_boxes(boxes: np.ndarray, scale: float = 1000.0) -> list[list[float]]:
    """Normalised corners to COCO [x, y, w, h] on a 1000x1000 canvas."""
    return [[b[1] * scale, b[0] * scale, (b[3] - b[1]) * scale, (b[2] - b[0]) * scale] for b in boxes]


def coco_evaluate(
    truths: Sequence[tuple[np.ndarray, np.ndarray]], predictions: Sequence[Detected], labels: Sequence[str]
) -> Any | None:
    """The accumulated COCOeval of these detections; None when there is no object or no detection."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images: list[dict] = []
    annotations: list[dict] = []
    results: list[dict] = []
    for i, ((boxes, classes), det) in enumerate(zip(truths, predictions, strict=True)):
        images.append({"id": i, "width": 1000, "height": 1000})
        for box, cls in zip(_coco_boxes(boxes), classes, strict=True):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i,
                    "category_id": int(cls),
                    "bbox": box,
                    "area": box[2] * box[3],
                    "iscrowd": 0,
                }
            )
        for box, score, cls in zip(_coco_boxes(det.boxes), det.scores, det.classes, strict=True):
            results.append({"image_id": i, "category_id": int(cls), "bbox": box, "score": float(score)})
    if not annotations or not results:
        return None
    gt = COCO()
    gt.dataset = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": k + 1, "name": name} for k, name in enumerate(labels)],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(results), "bbox")
        ev.params.maxDets = [1, 10, 100]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def coco_figures(
    ev: Any | None, labels: Sequence[str], truths: Sequence[tuple[np.ndarray, np.ndarray]] | None = None
) -> dict[str, Any]:
    """mAP@0.5, mAP@0.5:0.95 and AP@0.5 per label of a COCOeval (zero without one).

    A label no evaluated image shows is left out of the per-label figures: it was not measured,
    which is not the same as an AP of 0 (COCO's means leave it out too)."""
    figures: dict[str, Any] = {"map50": 0.0, "map50_95": 0.0, "per_class_ap50": {}}
    if ev is None:  # nothing detected (or nothing to find): 0 for every label the truths show
        shown = (
            None
            if truths is None
            else {int(c) for _, classes in truths for c in np.asarray(classes).tolist()}
        )
        figures["per_class_ap50"] = {n: 0.0 for k, n in enumerate(labels) if shown is None or k + 1 in shown}
        return figures
    figures["map50_95"] = max(float(ev.stats[0]), 0.0)
    figures["map50"] = max(float(ev.stats[1]), 0.0)
    precision = ev.eval["precision"]  # [T, R, K, A, M]
    for k, name in enumerate(labels):
        p = precision[0, :, k, 0, -1]
        if np.any(p > -1):
            figures["per_class_ap50"][name] = float(np.mean(p[p > -1]))
    return figures
