"""From stored datasets to a delivered model: train, export float and int8, verify in LiteRT.

Output folder layout:
    model_int8.tflite   fully int8 (uint8 input), ends in TFLite_Detection_PostProcess
    model_float.tflite  the same network in float32
    labels.txt          one label per line, in class-index order
    config.json         the training config
    model.weights.h5    the Keras weights, to continue training from this model
    manifest.json       model, input size, labels, config, metrics, verdict, sha256 of each file
"""

from __future__ import annotations

import json
import logging
import platform
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from fieldlens import __version__
from storage.blobs import atomic_write, sha256_hex
from storage.domain import LabelMap, Split
from storage.errors import UserError
from storage.plan import DEFAULT_IMAGES_PER_SECOND, Plan, make_plan
from storage.services import Services
from trainer.config import TrainConfig
from trainer.data import ImageCache
from trainer.evaluate import coco_metrics
from trainer.metadata import detection_metadata, populate
from trainer.report import diagnose, plot_curves, predictions_image, read_jsonl
from trainer.train import Event, TrainData, Trainer, TrainResult
from trainer.verify import MAX_INT8_DROP, check_signature, run_tflite

log = logging.getLogger(__name__)
CALIBRATION_IMAGES = 100


class NoTrainingImages(UserError):
    """The datasets have no images in their training split."""


def plan(config: TrainConfig, train_images: int, val_images: int) -> Plan:
    """The plan of `config` on this many images (see storage.plan)."""
    return make_plan(
        config.steps,
        config.batch_size,
        train_images,
        val_images,
        DEFAULT_IMAGES_PER_SECOND.get(config.model, 20.0),
        config.max_seconds / 60 if config.max_seconds else None,
        config.checkpoint_every,
    )


def load_data(
    services: Services,
    team: str,
    dataset_names: list[str],
    cache_dir: Path,
    val_dataset: str | None = None,
    use_validation: bool = True,
) -> tuple[LabelMap, TrainData]:
    """Samples of the team's datasets (identical labels required), split as stored."""
    from trainer.samples import samples_from_datasets

    datasets = [services.datasets.get(team, n) for n in dataset_names]
    label_map = datasets[0].label_map
    for d in datasets[1:]:
        if d.label_map != label_map:
            from storage.errors import DatasetLabelsDiffer

            raise DatasetLabelsDiffer(
                f"Datasets {datasets[0].name!r} and {d.name!r} have different labels; train "
                "on datasets with identical labels, or combine them first."
            )
    ids = [d.id for d in datasets]
    if val_dataset is not None:
        train = samples_from_datasets(services.datasets, ids, label_map, None)
        val_ds = services.datasets.get(team, val_dataset)
        val = samples_from_datasets(services.datasets, [val_ds.id], label_map, None)
    else:
        train = samples_from_datasets(services.datasets, ids, label_map, Split.TRAIN)
        val = samples_from_datasets(services.datasets, ids, label_map, Split.VAL) if use_validation else []
    if not train:
        raise NoTrainingImages(
            "The datasets have no training images. Add more images (at least a few dozen)."
        )
    return label_map, TrainData(train, val, cache_dir)


def _calibration(cache: ImageCache, seed: int) -> Callable[[], object]:
    order = list(range(len(cache)))
    random.Random(seed).shuffle(order)
    chosen = sorted(order[:CALIBRATION_IMAGES])

    def images():
        for i in chosen:
            yield np.asarray(cache.images[i], np.float32)[None]

    return images


def export_and_verify(
    config: TrainConfig,
    checkpoint: Path,
    data: TrainData,
    out_dir: Path,
    train_result: TrainResult | None = None,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Export float and int8 models from `checkpoint`, verify both in LiteRT, write labels and manifest."""
    import keras

    from trainer.export import convert
    from trainer.models import build_detector

    out_dir.mkdir(parents=True, exist_ok=True)
    keras.mixed_precision.set_global_policy("float32")  # export in float32 even after GPU training
    detector = build_detector(config.with_(weights="none"))
    detector.network.load_weights(str(checkpoint / "model.weights.h5"))
    train_cache = ImageCache(data.train, config.input_size, data.cache_dir)
    files = {
        "float": convert(detector, out_dir / "model_float.tflite", None),
        "int8": convert(detector, out_dir / "model_int8.tflite", _calibration(train_cache, config.seed)),
    }
    labels_path = out_dir / "labels.txt"
    labels_bytes = ("\n".join(config.labels) + "\n").encode()
    atomic_write(labels_path, labels_bytes)
    for kind in ("float", "int8"):
        metadata = detection_metadata(
            name=f"FieldLens {config.model}",
            description=f"Detects {', '.join(config.labels)}. {kind} model trained with FieldLens.",
            input_size=config.input_size,
            labels_file="labels.txt",
            version=__version__,
        )
        atomic_write(files[kind], populate(files[kind].read_bytes(), metadata, {"labels.txt": labels_bytes}))
    check_signature(files["float"], config.input_size, np.float32)
    signature = check_signature(files["int8"], config.input_size, np.uint8)
    config.save(out_dir / "config.json")
    files["labels"] = labels_path
    files["config"] = out_dir / "config.json"
    # The Keras weights travel with the model so that it can be trained more ("continue").
    shutil.copyfile(checkpoint / "model.weights.h5", out_dir / "model.weights.h5")
    files["weights"] = out_dir / "model.weights.h5"

    metrics: dict[str, Any] = {}
    eval_set = data.val or data.train
    split = "validation" if data.val else "training (no validation split)"
    cache = ImageCache(eval_set, config.input_size, data.cache_dir)
    truths = [(s.boxes, s.classes) for s in eval_set]
    images = np.asarray(cache.images)
    detections = {}
    for kind in ("float", "int8"):
        started = time.perf_counter()
        detections[kind] = run_tflite(files[kind], images)
        elapsed_ms = (time.perf_counter() - started) * 1000 / max(len(eval_set), 1)
        metrics[kind] = coco_metrics(truths, detections[kind], config.labels, config.score_threshold)
        metrics[kind]["ms_per_image"] = elapsed_ms
    shown = slice(0, min(6, len(eval_set)))
    predictions_png = out_dir / "predictions.png"
    atomic_write(
        predictions_png,
        predictions_image(
            images[shown], truths[shown], detections["int8"][shown], config.labels, config.score_threshold
        ),
    )
    files["predictions"] = predictions_png
    advice: list[str] = []
    if workdir is not None:
        losses, evals = read_jsonl(workdir / "loss.jsonl"), read_jsonl(workdir / "metrics.jsonl")
        atomic_write(out_dir / "curves.png", plot_curves(losses, evals))
        files["curves"] = out_dir / "curves.png"
        advice = diagnose(losses, evals)
    map_float = float(metrics["float"]["map50"])
    map_int8 = float(metrics["int8"]["map50"])
    good = map_int8 >= map_float - MAX_INT8_DROP
    verdict = (
        f"int8 mAP@0.5 {map_int8:.3f} vs float {map_float:.3f} on the {split} images."
        if good
        else f"NOT DELIVERED AS GOOD: the int8 model's mAP@0.5 ({map_int8:.3f}) is more than "
        f"{MAX_INT8_DROP:.2f} below the float model's ({map_float:.3f}). Use model_float.tflite, or train "
        "longer with more images."
    )
    manifest = {
        "model": config.model,
        "input_size": config.input_size,
        "labels": list(config.labels),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": asdict(config),
        "signature": signature,
        "evaluated_on": split,
        "metrics": {
            "map50_float": map_float,
            "map50_int8": map_int8,
            "map50_95_float": metrics["float"]["map50_95"],
            "map50_95_int8": metrics["int8"]["map50_95"],
            "float": metrics["float"],
            "int8": metrics["int8"],
        },
        "int8_ok": good,
        "verdict": verdict,
        "advice": advice,
        "training": {
            "steps_completed": train_result.steps_completed,
            "reason": train_result.reason,
            "seconds": train_result.seconds,
            "images_per_second": train_result.images_per_second,
        }
        if train_result
        else None,
        "host": platform.platform(),
        "files": {
            k: {"path": p.name, "sha256": sha256_hex(p.read_bytes()), "bytes": p.stat().st_size}
            for k, p in files.items()
        },
    }
    atomic_write(out_dir / "manifest.json", json.dumps(manifest, indent=2, default=float).encode())
    return manifest


def train_and_deliver(
    config: TrainConfig,
    data: TrainData,
    workdir: Path,
    out_dir: Path,
    on_event: Callable[[Event], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    init_weights: Path | None = None,
) -> tuple[TrainResult, dict[str, Any]]:
    result = Trainer(config, data, workdir, on_event, should_stop, init_weights).run()
    checkpoint = result.best_checkpoint or result.checkpoint
    if checkpoint is None:
        raise RuntimeError("training ended before its first checkpoint")
    manifest = export_and_verify(config, checkpoint, data, out_dir, result, workdir)
    return result, manifest
