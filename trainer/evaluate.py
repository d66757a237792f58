"""Evaluation: detections from the network, and COCO metrics via pycocotools.

Boxes handed around here are (ymin, xmin, ymax, xmax) normalised; classes are 1..C.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from trainer import box_coder
from trainer.models.detector import Detector

IOU_MATCH = 0.5


@dataclass
class Detections:
    boxes: np.ndarray  # [K, 4]
    scores: np.ndarray  # [K]
    classes: np.ndarray  # [K] int, 1..C


def make_predict_fn(
    detector: Detector, max_detections: int = 100, score_threshold: float = 0.01, iou_threshold: float = 0.5
):
    anchors = tf.constant(detector.anchors)
    network = detector.network

    @tf.function(reduce_retracing=True)
    def predict(images: tf.Tensor):
        box_enc, logits = network(tf.cast(images, tf.float32), training=False)
        boxes = tf.clip_by_value(box_coder.decode(box_enc, anchors), 0.0, 1.0)
        nms = tf.image.combined_non_max_suppression(
            boxes[:, :, None, :],
            tf.sigmoid(logits),
            max_output_size_per_class=max_detections,
            max_total_size=max_detections,
            iou_threshold=iou_threshold,
            score_threshold=score_threshold,
            clip_boxes=False,
        )
        return nms.nmsed_boxes, nms.nmsed_scores, nms.nmsed_classes, nms.valid_detections, box_enc, logits

    return predict


def detect(predict, images: np.ndarray, batch_size: int = 16) -> list[Detections]:
    out = []
    for start in range(0, len(images), batch_size):
        boxes, scores, classes, valid, *_ = predict(np.asarray(images[start : start + batch_size]))
        for b, s, c, n in zip(boxes.numpy(), scores.numpy(), classes.numpy(), valid.numpy(), strict=True):
            out.append(Detections(b[:n], s[:n], c[:n].astype(np.int32) + 1))
    return out


def _coco_boxes(boxes: np.ndarray, scale: float = 1000.0) -> list[list[float]]:
    """Normalised corners to COCO [x, y, w, h] on a 1000x1000 canvas (IoU does not change)."""
    return [[b[1] * scale, b[0] * scale, (b[3] - b[1]) * scale, (b[2] - b[0]) * scale] for b in boxes]


def coco_metrics(
    truths: Sequence[tuple[np.ndarray, np.ndarray]],
    predictions: Sequence[Detections],
    labels: Sequence[str],
    score_threshold: float = 0.3,
) -> dict[str, object]:
    """COCO mAP@0.5 and @0.5:0.95, per-class AP@0.5, precision/recall at `score_threshold`, and a
    confusion matrix (rows: true label or 'background', columns: predicted label or 'missed')."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations, results = [], [], []
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
    categories = [{"id": k + 1, "name": name} for k, name in enumerate(labels)]
    metrics: dict[str, object] = {"map50": 0.0, "map50_95": 0.0, "per_class_ap50": {n: 0.0 for n in labels}}
    if annotations and results:
        gt = COCO()
        gt.dataset = {"images": images, "annotations": annotations, "categories": categories}
        with contextlib.redirect_stdout(io.StringIO()):
            gt.createIndex()
            dt = gt.loadRes(results)
            ev = COCOeval(gt, dt, "bbox")
            ev.params.maxDets = [1, 10, 100]
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        metrics["map50_95"] = max(float(ev.stats[0]), 0.0)
        metrics["map50"] = max(float(ev.stats[1]), 0.0)
        precision = ev.eval["precision"]  # [T, R, K, A, M]
        for k, name in enumerate(labels):
            p = precision[0, :, k, 0, -1]
            metrics["per_class_ap50"][name] = float(np.mean(p[p > -1])) if np.any(p > -1) else 0.0  # type: ignore[index]
    metrics.update(_threshold_stats(truths, predictions, labels, score_threshold))
    return metrics


def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    return box_coder.iou(tf.constant(a, tf.float32), tf.constant(b, tf.float32)).numpy()


def _threshold_stats(truths, predictions, labels, threshold: float) -> dict[str, object]:
    """Precision, recall and a confusion matrix at one score threshold (greedy IoU >= 0.5 matching)."""
    c = len(labels)
    confusion = np.zeros(
        (c + 1, c + 1), np.int64
    )  # last row: background (false positive); last column: missed
    tp = fp = fn = 0
    for (gt_boxes, gt_classes), det in zip(truths, predictions, strict=True):
        keep = det.scores >= threshold
        boxes, classes = det.boxes[keep], det.classes[keep]
        overlaps = _iou_matrix(np.asarray(gt_boxes), boxes)
        used = set()
        for g in np.argsort(-overlaps.max(axis=1)) if len(boxes) else range(len(gt_boxes)):
            candidates = (
                [d for d in np.argsort(-overlaps[g]) if d not in used and overlaps[g, d] >= IOU_MATCH]
                if len(boxes)
                else []
            )
            if candidates:
                d = candidates[0]
                used.add(d)
                confusion[gt_classes[g] - 1, classes[d] - 1] += 1
                if classes[d] == gt_classes[g]:
                    tp += 1
                else:
                    fp += 1
                    fn += 1
            else:
                confusion[gt_classes[g] - 1, c] += 1
                fn += 1
        for d in range(len(boxes)):
            if d not in used:
                confusion[c, classes[d] - 1] += 1
                fp += 1
    return {
        "score_threshold": threshold,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "confusion": {"labels": [*labels, "background/missed"], "matrix": confusion.tolist()},
    }
