"""How well a model's anchors fit a dataset's objects: per label, the objects' size at the model's input
and the share of objects that no anchor overlaps at IoU >= 0.5.

    python -m bench.anchors [--zip ../shared/datasets/robosub_transdec.zip]
                            [--models ssd_mobilenet_v2_320 ssd_mobilenet_v2_fpnlite_320 ...]

The zip is ingested into a temporary data folder with the real readers (any layout FieldLens takes),
every box is put on the model's square input as the trainer stretches the photo onto it, and each is
compared with every anchor of the model (the anchors the trainer matches and the exported op decodes).
An object with no anchor at IoU >= 0.5 gets one only through the assigner's forced best match (SSD),
or through ATSS's statistics, and its box must then be regressed from a far-off start. The issue that
asked for this measured 35-40% of the FTC balls so.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from storage.plan import MODELS

SHARED = Path(__file__).resolve().parents[2] / "shared"


def boxes_by_label(zip_path: Path) -> dict[str, np.ndarray]:
    """Every box of the dataset as normalised (ymin, xmin, ymax, xmax), by label."""
    from storage.services import open_services
    from storage.settings import Settings

    with tempfile.TemporaryDirectory() as home:
        services = open_services(Settings(home=Path(home)))
        services.datasets.add("local", "bench", zip_path)
        dataset = services.datasets.get("local", "bench")
        out: dict[str, list[tuple[float, float, float, float]]] = defaultdict(list)
        for image in services.datasets.images(dataset.id):
            w, h = image.width, image.height
            for b in image.boxes:
                out[b.label].append((b.ymin / h, b.xmin / w, b.ymax / h, b.xmax / w))
    return {label: np.asarray(rows, dtype=np.float32) for label, rows in sorted(out.items())}


def best_iou(boxes: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """For each box (ymin, xmin, ymax, xmax), its highest IoU with any anchor (cy, cx, h, w)."""
    import tensorflow as tf

    from trainer.box_coder import center_to_corners, iou

    return tf.reduce_max(iou(tf.constant(boxes), center_to_corners(tf.constant(anchors))), axis=1).numpy()


def anchors_of(model: str) -> tuple[np.ndarray, int]:
    """The anchors of `model` as the trainer builds it (TensorFlow: the grids come from the network)."""
    from trainer.config import TrainConfig
    from trainer.models import build_detector

    config = TrainConfig(model=model, labels=("a",), alpha=0.35)  # the width does not change the grids
    return build_detector(config).anchors, config.input_size


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--zip", type=Path, default=SHARED / "datasets" / "robosub_transdec.zip")
    parser.add_argument(
        "--models",
        nargs="+",
        default=list(MODELS),
    )
    args = parser.parse_args()
    if not args.zip.exists():
        raise SystemExit(f"{args.zip} not found; pass a dataset zip with --zip")
    by_label = boxes_by_label(args.zip)
    for model in args.models:
        anchors, size = anchors_of(model)
        print(f"\n{model}: {len(anchors)} anchors, {size} px input; {args.zip.name}")
        header = f"{'objects':>7} {'median w x h px':>16} {'no anchor >= 0.5':>17} {'mean best IoU':>14}"
        print(f"{'label':<22} {header}")
        every = []
        for label, boxes in by_label.items():
            best = best_iou(boxes, anchors)
            every.append(best)
            w = np.median(boxes[:, 3] - boxes[:, 1]) * size
            h = np.median(boxes[:, 2] - boxes[:, 0]) * size
            print(
                f"{label:<22} {len(boxes):>7} {f'{w:.0f} x {h:.0f}':>16} {np.mean(best < 0.5):>17.0%} "
                f"{best.mean():>14.3f}"
            )
        best = np.concatenate(every)
        print(f"{'all':<22} {len(best):>7} {'':>16} {np.mean(best < 0.5):>17.0%} {best.mean():>14.3f}")


if __name__ == "__main__":
    main()
