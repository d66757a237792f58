"""Theirs beside ours: Ultralytics YOLO trained for the same minutes on the same split, scored by
FieldLens's own evaluator.

    python -m bench.yolo --python /path/to/yolo-venv/bin/python
                         [--zip ../shared/datasets/robosub_transdec.zip] [--minutes 20]
                         [--model yolov8n.yaml] [--imgsz 320] [--batch 16] [--seed 0]
                         [--results bench/results/accuracy.jsonl] [--keep DIR]

Teams compare FieldLens with running `yolo train` themselves. This loads the zip as FieldLens
does (the same stored split as bench/accuracy.py: the same training and validation images),
writes it in the YOLO layout, and trains `--model` with `--python`, an interpreter that has
`ultralytics` installed (FieldLens does not depend on it: `python -m venv v && v/bin/pip install
torch==2.14.1 torchvision==0.29.1 ultralytics`). A `.yaml` model is trained from scratch, as the
issue's reference was; Ultralytics' `time=` fits its schedule to the minutes. Its best checkpoint
then detects on the validation images (confidence 0.001, up to 100 an image, Ultralytics' own
validation settings) and FieldLens's evaluator (storage/coco.py) scores them, so the figures read
across with bench/accuracy.py's rows. The line appended to the results file carries the float
PyTorch model's figures only: Ultralytics' int8 TFLite export needs converters this machine's
FieldLens does not install, so its int8 cells stay empty.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from bench.accuracy import RESULTS, SHARED, _boxes_per_label, _revision

RUNNER = Path(__file__).with_name("yolo_train.py")


def write_yolo_layout(root: Path, splits: dict[str, list], labels: list[str]) -> dict[str, dict[str, Path]]:
    """The samples of each split as `root/images/<split>/<id>.<ext>` with YOLO label files beside
    (`root/labels/<split>/<id>.txt`: class from 0, centre x, centre y, width, height, normalised),
    and `root/data.yaml`. Returns each split's image paths by sample id."""
    from PIL import Image

    paths: dict[str, dict[str, Path]] = {}
    for split, samples in splits.items():
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        paths[split] = {}
        for s in samples:
            data = s.load()
            ext = Image.open(io.BytesIO(data)).format.lower().replace("jpeg", "jpg")
            image = root / "images" / split / f"{s.key}.{ext}"
            image.write_bytes(data)
            lines = [
                f"{c - 1} {(x0 + x1) / 2:.6f} {(y0 + y1) / 2:.6f} {x1 - x0:.6f} {y1 - y0:.6f}"
                for (y0, x0, y1, x1), c in zip(s.boxes.tolist(), s.classes.tolist(), strict=True)
            ]
            (root / "labels" / split / f"{s.key}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
            paths[split][s.key] = image
    names = "\n".join(f"  {k}: {json.dumps(n)}" for k, n in enumerate(labels))
    (root / "data.yaml").write_text(
        f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n{names}\n", encoding="utf-8"
    )
    return paths


def run(args: argparse.Namespace) -> dict:
    from storage.coco import coco_evaluate, coco_figures
    from storage.services import open_services
    from storage.settings import Settings
    from trainer.evaluate import Detections
    from trainer.pipeline import load_data

    revision = _revision()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(args.keep) if args.keep else Path(tmp)
        services = open_services(Settings(home=home / "home"))
        services.datasets.add("local", "bench", args.zip)
        labels, data = load_data(services, "local", ["bench"], home / "cache")
        paths = write_yolo_layout(home / "yolo", {"train": data.train, "val": data.val}, labels.labels)
        print(
            f"{args.model}: {args.zip.name}: {len(data.train)} train / {len(data.val)} val images, "
            f"imgsz {args.imgsz}, batch {args.batch}, {args.minutes} min, seed {args.seed}",
            flush=True,
        )
        job = {
            "data": str(home / "yolo" / "data.yaml"),
            "val_images": {k: str(p) for k, p in paths["val"].items()},
            "model": args.model,
            "minutes": args.minutes,
            "imgsz": args.imgsz,
            "batch": args.batch,
            "workers": args.workers,
            "seed": args.seed,
            "project": str(home / "runs"),
            "out": str(home / "yolo_out.json"),
        }
        (home / "yolo_job.json").write_text(json.dumps(job))
        env = {"YOLO_CONFIG_DIR": str(home / "ultralytics_config"), "YOLO_OFFLINE": "1"}
        subprocess.run(
            [args.python, str(RUNNER), str(home / "yolo_job.json")],
            check=True,
            env={**os.environ, **env},
        )
        out = json.loads((home / "yolo_out.json").read_text())
        truths = [(s.boxes, s.classes) for s in data.val]
        found = [out["detections"][s.key] for s in data.val]
        predictions = [
            Detections(
                np.asarray(d["boxes"], np.float32).reshape(-1, 4),
                np.asarray(d["scores"], np.float32),
                np.asarray(d["classes"], np.int32),
            )
            for d in found
        ]
        figures = coco_figures(coco_evaluate(truths, predictions, labels.labels), labels.labels, truths)
        row = {
            "name": f"{Path(args.model).stem} from scratch (Ultralytics {out['version']}, float PyTorch)",
            "revision": revision,
            "changes": {"imgsz": args.imgsz, "batch": args.batch},
            "seed": args.seed,
            "dataset": args.zip.name,
            "model": Path(args.model).stem,
            "minutes": args.minutes,
            "val_images": len(data.val),
            "val_boxes_per_label": _boxes_per_label(data.val, labels.labels),
            "epochs_completed": out["epochs"],
            "training_minutes": out["trained_seconds"] / 60,
            "train_images_per_s": out["epochs"] * len(data.train) / out["trained_seconds"],
            "map50_float": figures["map50"],
            "map50_95_float": figures["map50_95"],
            "per_label_ap50_float": figures["per_class_ap50"],
            "latency_ms_float": out["inference_ms"],  # PyTorch on the CPU, Ultralytics' own timing
        }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    with open(args.results, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row, indent=2))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--python", required=True, help="an interpreter with ultralytics installed")
    parser.add_argument("--zip", type=Path, default=SHARED / "datasets" / "robosub_transdec.zip")
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--model", default="yolov8n.yaml", help="a .yaml trains from scratch")
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--keep", type=Path, default=None, help="work here and keep it (else a temp dir)")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
