"""Train and run Ultralytics YOLO on a prepared YOLO-layout folder (run by bench/yolo.py).

Runs in an interpreter that has `ultralytics` (and PyTorch) installed, which FieldLens's does not;
it imports nothing of FieldLens. Usage (bench/yolo.py writes the JSON job):

    /path/to/yolo-venv/bin/python bench/yolo_train.py JOB.json

The job says the data.yaml, the validation images, the model (a .yaml: from scratch), the minutes
(Ultralytics' `time`, which fits its schedule to the time, not to epochs), input size, batch,
workers and seed. It writes JOB's `out` JSON: the detections on each validation image (normalised
ymin, xmin, ymax, xmax; classes from 1, as FieldLens's evaluator takes them), the epochs and
seconds trained, the median inference time per image and Ultralytics' version.
"""

from __future__ import annotations

import csv
import json
import statistics
import sys
import time
from pathlib import Path


def main(job_path: str) -> None:
    import ultralytics
    from ultralytics import YOLO

    job = json.loads(Path(job_path).read_text())
    model = YOLO(job["model"])
    start = time.monotonic()
    model.train(
        data=job["data"],
        time=job["minutes"] / 60,
        imgsz=job["imgsz"],
        batch=job["batch"],
        workers=job["workers"],
        seed=job["seed"],
        device="cpu",
        project=job["project"],
        name="train",
        exist_ok=True,
        plots=False,
        verbose=False,
    )
    wall = time.monotonic() - start
    save_dir = Path(model.trainer.save_dir)
    with open(save_dir / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    trained_seconds = float(rows[-1]["time"]) if rows and "time" in rows[-1] else wall

    best = YOLO(str(model.trainer.best))
    detections, inference_ms = {}, []
    for key, path in job["val_images"].items():
        (r,) = best.predict(
            path,
            imgsz=job["imgsz"],
            conf=0.001,
            iou=0.7,
            max_det=100,
            device="cpu",
            verbose=False,
        )
        xyxy = r.boxes.xyxyn.numpy()
        detections[key] = {
            "boxes": [[b[1], b[0], b[3], b[2]] for b in xyxy.tolist()],
            "scores": r.boxes.conf.numpy().tolist(),
            "classes": [int(c) + 1 for c in r.boxes.cls.numpy().tolist()],
        }
        inference_ms.append(r.speed["inference"])
    out = {
        "version": ultralytics.__version__,
        "epochs": len(rows),
        "trained_seconds": trained_seconds,
        "wall_seconds": wall,
        "inference_ms": statistics.median(inference_ms) if inference_ms else None,
        "detections": detections,
    }
    Path(job["out"]).write_text(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
