"""A delivered model's figures as the job and model pages show them: float vs int8, per label, the
confusion matrix and the precision-recall curves (from its manifest, storage/model_folder.py)."""

from __future__ import annotations

from typing import Any

from storage.model_folder import Manifest
from storage.thresholds import Thresholds

# (row title, key in each model's figures, how to print it)
FIGURES = (
    ("mAP@0.5", "map50", "{:.3f}"),
    ("mAP@0.5:0.95", "map50_95", "{:.3f}"),
    ("precision at score ≥ {threshold}", "precision", "{:.3f}"),
    ("recall at score ≥ {threshold}", "recall", "{:.3f}"),
    ("milliseconds per image (LiteRT, on the server)", "ms_per_image", "{:.1f}"),
)


def _fmt(pattern: str, value: object) -> str:
    return pattern.format(value) if isinstance(value, int | float) else "--"


def best_f1(curve: dict[str, list[float]]) -> dict[str, float] | None:
    """The point of a precision-recall curve with the highest F1: its score, precision and recall."""
    points = zip(curve.get("recall", []), curve.get("precision", []), curve.get("score", []), strict=False)
    best = max(points, key=lambda p: 2 * p[0] * p[1] / (p[0] + p[1]) if p[0] + p[1] else 0.0, default=None)
    if best is None or best[0] + best[1] == 0:
        return None
    return {"recall": best[0], "precision": best[1], "score": best[2]}


def _operating_point(thresholds: Thresholds | None, label: str, curve: dict | None) -> dict | None:
    """Where the robot detects `label`: the model's own threshold for it (storage/thresholds.py), or
    for a model delivered before those, the best-F1 point read off its precision-recall curve."""
    if thresholds is not None:
        point = thresholds.labels.get(label) or thresholds.overall
        shown = (thresholds.test or {}).get(label) or point
        return {"score": point.score, "precision": shown.precision, "recall": shown.recall, "own": True}
    best = best_f1(curve) if curve else None
    return {**best, "own": False} if best else None


def _confusion(data: dict[str, Any] | None) -> dict[str, Any]:
    """A confusion matrix with its row and column names, from either layout: the model's thresholds'
    (`rows`, `columns`) or the evaluation's (`labels`, the last one "background/missed")."""
    data = data or {}
    matrix = data.get("matrix") or []
    if "rows" in data:
        rows, columns = list(data["rows"]), list(data["columns"])
    else:
        labels = list(data.get("labels") or [])
        rows, columns = [*labels[:-1], "background"], [*labels[:-1], "missed"]
    if len(rows) != len(matrix) or any(len(r) != len(columns) for r in matrix):
        return {"rows": [], "columns": [], "split": ""}
    return {
        "rows": [(name, row, max(sum(row), 1)) for name, row in zip(rows, matrix, strict=True)],
        "columns": columns,
        "split": data.get("split", ""),
    }


def results(manifest: Manifest) -> dict[str, Any]:
    """Everything the results section of a page needs, as plain values."""
    by = manifest.metrics.by_model
    floats, ints = by.get("float", {}), by.get("int8", {})
    curves = ints.get("pr_curves") or {}
    thresholds = manifest.thresholds
    threshold = ints.get("score_threshold", manifest.config.get("score_threshold"))
    at = _fmt("{:.2f}", threshold)
    per_label = [
        {
            "label": label,
            "float": _fmt("{:.3f}", floats.get("per_class_ap50", {}).get(label)),
            "int8": _fmt("{:.3f}", ints.get("per_class_ap50", {}).get(label)),
            "best": _operating_point(thresholds, label, curves.get(label)),
        }
        for label in manifest.labels
    ]
    at_thresholds = thresholds.confusion if thresholds is not None else None
    confusion = _confusion(at_thresholds or ints.get("confusion"))
    return {
        "figures": [
            (title.format(threshold=at), _fmt(p, floats.get(key)), _fmt(p, ints.get(key)))
            for title, key, p in FIGURES
        ],
        "per_label": per_label,
        "threshold": threshold,
        "robot": thresholds.robot_sentence() if thresholds is not None else None,
        "confusion": confusion,
        "curves": curves,
        "verdict": manifest.verdict,
        "advice": manifest.advice,
        "int8_ok": manifest.int8_ok,
        "evaluated_on": manifest.evaluated_on,
    }
