"""The quality picture (model_folder.QUALITY): a precision-recall curve per label, with the model's
threshold marked on it, and the confusion matrix at those thresholds, in one picture posted with a
finished job.

The curves are COCO's (trainer/pr_curves.py, at IoU 0.5, kept in the metrics); the marked point is
the threshold the robot uses (trainer/thresholds.py), measured exactly, so it may sit a little under
COCO's curve, which is the best precision at each recall or beyond. Matrix rows are the true label
plus "false alarm" (a detection with no object under it); columns are the predicted label plus
"missed" (an object nothing found).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

from storage.thresholds import OperatingPoint

FALSE_ALARM, MISSED = "false alarm", "missed"


def quality_picture(
    labels: Sequence[str],
    curves: dict[str, dict[str, list[float]]],
    points: dict[str, OperatingPoint],
    fallback: float,
    matrix: Sequence[Sequence[int]],
    split: str,
) -> bytes:
    """PNG: one precision-recall panel per label with its operating point (`points`, measured on the
    same images; a label without one uses `fallback`), then the confusion matrix."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = len(labels) + 1
    cols = min(panels, 4)
    rows = math.ceil(panels / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.8 * rows), dpi=100, squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax, label in zip(flat, labels, strict=False):
        _curve(ax, label, curves.get(label, {}), points.get(label), fallback)
    _matrix(fig, flat[len(labels)], labels, matrix)
    for ax in flat[panels:]:
        ax.axis("off")
    fig.suptitle(f"Precision and recall on the {split} images; the dot is the robot's threshold", fontsize=10)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    plt.close(fig)
    return out.getvalue()


def _curve(
    ax: Any, label: str, curve: dict[str, list[float]], point: OperatingPoint | None, fallback: float
) -> None:
    if curve.get("recall"):
        ax.plot(curve["recall"], curve["precision"], color="#1f77b4")
    if point is not None:
        ax.plot([point.recall], [point.precision], "o", color="#d62728")
        ax.annotate(
            f"{point.score:.2f}", (point.recall, point.precision), textcoords="offset points", xytext=(6, -12)
        )
        title = f"{label}: threshold {point.score:.2f}, F1 {point.f1:.2f}"
    else:
        title = f"{label}: no threshold of its own (uses {fallback:.2f})"
    ax.set(title=title, xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02))
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)


def _matrix(fig: Any, ax: Any, labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> None:
    rows, cols = [*labels, FALSE_ALARM], [*labels, MISSED]
    counts = [list(r) for r in matrix] or [[0] * len(cols) for _ in rows]
    image = ax.imshow(counts, cmap="Blues")
    top = max(max(r) for r in counts) or 1
    for i, row in enumerate(counts):
        for j, n in enumerate(row):
            if i == len(labels) and j == len(labels):
                continue  # nothing there and nothing found: not counted
            ax.text(j, i, str(n), ha="center", va="center", color="white" if n > top / 2 else "black")
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title="Confusion at the thresholds")
    ax.title.set_fontsize(9)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
