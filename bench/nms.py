"""The post-process settings, measured on one trained model without training again.

    python -m bench.nms MODEL_FOLDER [--zip ../shared/datasets/robosub_transdec.zip]

Loads the model folder's Keras weights and runs the Python mirror of the fused
TFLite_Detection_PostProcess op (trainer/postprocess.py) on the dataset's validation split with each
setting: fast (class-agnostic) vs regular (per-class) NMS, IoU 0.5 / 0.6, 50 / 100 detections.
Prints mAP@0.5, mAP@0.5:0.95 and the checkpoint fitness (0.1 x the first + 0.9 x the second).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared"

SETTINGS = (
    ("fast, IoU 0.5, 50 (ours before)", {"iou_threshold": 0.5, "max_detections": 50}),
    ("fast, IoU 0.5, 100", {"iou_threshold": 0.5, "max_detections": 100}),
    ("fast, IoU 0.6, 100 (TF OD API)", {"iou_threshold": 0.6, "max_detections": 100}),
    ("fast, IoU 0.7, 100", {"iou_threshold": 0.7, "max_detections": 100}),
    ("regular, IoU 0.5, 100", {"iou_threshold": 0.5, "use_regular_nms": True}),
    ("regular, IoU 0.6, 100", {"iou_threshold": 0.6, "use_regular_nms": True}),
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", type=Path)
    parser.add_argument("--zip", type=Path, default=SHARED / "datasets" / "robosub_transdec.zip")
    args = parser.parse_args()

    from storage.model_folder import ModelFolder
    from storage.services import open_services
    from storage.settings import Settings
    from trainer import evaluate
    from trainer.config import TrainConfig
    from trainer.data import ImageCache
    from trainer.models import build_detector
    from trainer.pipeline import load_data
    from trainer.postprocess import PostProcess

    folder = ModelFolder(args.model)
    config = TrainConfig.load(folder.config).with_(weights="none")
    detector = build_detector(config)
    detector.network.load_weights(str(folder.weights))
    with tempfile.TemporaryDirectory() as tmp:
        services = open_services(Settings(home=Path(tmp) / "home"))
        services.datasets.add("local", "bench", args.zip)
        _, data = load_data(services, "local", ["bench"], Path(tmp) / "cache")
        images = ImageCache(data.val, config.input_size, data.cache_dir).images
        truths = [(s.boxes, s.classes) for s in data.val]
        print(f"{args.model}: {len(truths)} validation images")
        print("| setting | mAP@0.5 | mAP@0.5:0.95 | fitness |\n|---|---|---|---|")
        for name, changes in SETTINGS:
            predict = evaluate.make_predict_fn(detector, PostProcess(**changes))
            metrics = evaluate.coco_metrics(truths, evaluate.detect(predict, images), config.labels)
            print(
                f"| {name} | {metrics['map50']:.3f} | {metrics['map50_95']:.3f} "
                f"| {evaluate.fitness(metrics):.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
