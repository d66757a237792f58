"""Reading a training run for students: loss and mAP plots, predictions vs ground truth, and a
plain-language diagnosis of the curves. Works from the files a run writes (loss.jsonl,
metrics.jsonl), so it can be rendered at any time, by any process, without TensorFlow.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a JSON-lines file; a last line cut short by a crash is skipped."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def diagnose(losses: Sequence[dict], evals: Sequence[dict]) -> list[str]:
    """What the curves say, each with what to try. Empty when there is too little to say.

    Validation mAP outranks the training loss: the loss is noisy (small batches, augmentation) and,
    with an IoU-aware classification loss, can rise while the boxes get better, so a loss that looks
    like it diverges or stalls is not called so while mAP is still at its best or climbing.
    """
    advice = []
    maps = [r["map50"] for r in evals if "map50" in r]
    improving = len(maps) >= 2 and maps[-1] >= max(maps) - 1e-9 and maps[-1] - maps[-2] > 0.01
    mapping_well = bool(maps) and maps[-1] >= max(maps) - 0.02 and max(maps) - min(maps) > 0.05
    train = [r["total"] for r in losses if "total" in r]
    if len(train) >= 4:
        k = max(1, len(train) // 5)
        smooth = np.convolve(np.asarray(train, dtype=float), np.ones(k) / k, mode="valid")
        first, last = float(smooth[0]), float(smooth[-1])
        if not np.all(np.isfinite(train)):
            advice.append(
                "Diverging: the training loss became infinite or NaN. Lower the learning rate, or check "
                "the labels for boxes that are clearly wrong."
            )
        elif last > 1.5 * float(np.min(smooth)) and not (improving or mapping_well):
            advice.append(
                "Diverging: the training loss went back up. Lower the learning rate, or check the "
                "labels for boxes that are clearly wrong."
            )
        elif last > 0.9 * first and not (improving or mapping_well):
            advice.append(
                "Not learning: the training loss is flat. Check the boxes in the dataset preview, start "
                "from the pretrained backbone (--weights imagenet), or train for more steps."
            )
    val = [(r["step"], r["val_loss"]) for r in evals if "val_loss" in r]
    if len(val) >= 3 and len(train) >= 4:
        best_step, best_val = min(val, key=lambda v: v[1])
        if val[-1][1] > 1.1 * best_val and best_step != val[-1][0] and train[-1] < train[len(train) // 2]:
            advice.append(
                f"Overfitting: the validation loss rose after step {best_step} while the training loss "
                "kept falling, so the model is memorising its training photos. Add more (and more "
                "varied) images or train fewer steps; the best checkpoint is the one delivered."
            )
    if improving:
        advice.append(
            f"Still improving: mAP@0.5 rose from {maps[-2]:.2f} to {maps[-1]:.2f} at the last "
            "evaluation. Continue training from this model for more steps."
        )
    elif len(maps) >= 3 and max(maps) - maps[-1] < 0.01 and max(maps) - min(maps[-3:]) < 0.02:
        advice.append(
            "Levelled off: mAP@0.5 barely changed over the last evaluations. More steps will not "
            "help much; more and more varied images will."
        )
    return advice


def plot_curves(losses: Sequence[dict], evals: Sequence[dict]) -> bytes:
    """PNG with the loss curves (train, validation) and the mAP curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_map) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=100)
    if losses:
        ax_loss.plot(
            [r["step"] for r in losses], [r["total"] for r in losses], label="training", color="#1f77b4"
        )
    val = [r for r in evals if "val_loss" in r]
    if val:
        ax_loss.plot(
            [r["step"] for r in val], [r["val_loss"] for r in val], "o-", label="validation", color="#d62728"
        )
    ax_loss.set(title="Loss", xlabel="step", yscale="log")
    ax_loss.legend()
    ax_loss.grid(alpha=0.3)
    with_map = [r for r in evals if "map50" in r]
    if with_map:
        steps = [r["step"] for r in with_map]
        ax_map.plot(steps, [r["map50"] for r in with_map], "o-", label="mAP@0.5")
        ax_map.plot(steps, [r["map50_95"] for r in with_map], "s-", label="mAP@0.5:0.95")
    ax_map.set(title="Validation mAP", xlabel="step", ylim=(0, 1))
    ax_map.legend()
    ax_map.grid(alpha=0.3)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    plt.close(fig)
    return out.getvalue()


def predictions_image(
    images: Sequence[np.ndarray],
    truths: Sequence[tuple[np.ndarray, np.ndarray]],
    detections: Sequence,
    labels: Sequence[str],
    threshold: float = 0.3,
) -> bytes:
    """PNG grid: each image twice, ground truth on the left, predictions (score >= threshold) on the right."""
    from PIL import Image

    from edge.draw import draw_boxes

    tiles = []
    for image, (gt_boxes, gt_classes), det in zip(images, truths, detections, strict=True):
        size = image.shape[0]
        left, right = Image.fromarray(np.asarray(image)), Image.fromarray(np.asarray(image))
        draw_boxes(
            left,
            [
                (labels[c - 1], b[1] * size, b[0] * size, b[3] * size, b[2] * size)
                for b, c in zip(gt_boxes, gt_classes, strict=True)
            ],
            labels,
        )
        keep = det.scores >= threshold
        draw_boxes(
            right,
            [
                (f"{labels[c - 1]} {s:.2f}", b[1] * size, b[0] * size, b[3] * size, b[2] * size)
                for b, c, s in zip(det.boxes[keep], det.classes[keep], det.scores[keep], strict=True)
            ],
            labels,
        )
        pair = Image.new("RGB", (size * 2 + 4, size), (255, 255, 255))
        pair.paste(left, (0, 0))
        pair.paste(right, (size + 4, 0))
        tiles.append(pair)
    cols = 2
    rows = (len(tiles) + cols - 1) // cols
    w, h = tiles[0].size
    sheet = Image.new("RGB", (cols * (w + 8), rows * (h + 8)), (40, 40, 40))
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % cols) * (w + 8), (i // cols) * (h + 8)))
    out = io.BytesIO()
    sheet.save(out, "PNG")
    return out.getvalue()
