"""From a checkpoint to a delivered model folder (storage/model_folder.py lists its files).

export      float and int8 .tflite with packed labels, checked in LiteRT; labels, config, weights
evaluate    both models in LiteRT on the same images (validation split, else training), then on the
            test split when there is one
thresholds  per label and overall, where F1 is highest on the validation images, measured again on
            the test images; packed into the int8 model (trainer/thresholds.py)
report      the predictions, curves and quality pictures, and advice from the run's logs
manifest    the verdict (is int8 close enough to float?), the thresholds and a sha256 of every file
"""

from __future__ import annotations

import platform
import shutil
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from storage import __version__
from storage.blobs import atomic_write
from storage.checkpoints import WEIGHTS
from storage.model_folder import FLOAT, PACKED_THRESHOLDS, FileEntry, Manifest, Metrics, ModelFolder
from storage.thresholds import Thresholds
from trainer.config import TrainConfig
from trainer.data import ImageCache, Sample, calibration
from trainer.evaluate import Detections, coco_metrics, confusion_matrix
from trainer.events import TrainResult
from trainer.metadata import detection_metadata, populate
from trainer.quality_picture import FALSE_ALARM, MISSED, quality_picture
from trainer.report import diagnose, plot_curves, predictions_image, read_jsonl
from trainer.thresholds import choose_thresholds, keep, measure
from trainer.train import LOSS_LOG, METRICS_LOG, TrainData
from trainer.verify import MAX_INT8_DROP, check_signature, gate_copies, int8_drop, run_tflite

INT8_DROP = "int8_drop"  # metrics.by_model key of gate_drop's figures
PREVIEW_IMAGES = 6


@dataclass
class Evaluation:
    """Both models run on the same images: their metrics and what they detected."""

    split: str  # "validation", or "training (no validation split)"
    images: np.ndarray  # uint8 [n, S, S, 3]
    truths: list[tuple[np.ndarray, np.ndarray]]
    metrics: dict[str, dict[str, Any]]  # "float" / "int8" -> COCO figures and ms_per_image
    detections: dict[str, list[Detections]]


def export_and_verify(
    config: TrainConfig,
    checkpoint: Path,
    data: TrainData,
    out_dir: Path,
    train_result: TrainResult | None = None,
    workdir: Path | None = None,
) -> Manifest:
    """Export float and int8 models from `checkpoint`, verify both in LiteRT, write labels and manifest."""
    folder = ModelFolder(out_dir)
    folder.path.mkdir(parents=True, exist_ok=True)
    files, _ = export(config, checkpoint, data, folder)
    evaluation = evaluate(config, data, folder)
    drop = gate_drop(config, evaluation, folder)
    test = evaluate_test(config, data, folder)
    thresholds = thresholds_of(config, evaluation, test)
    signature = pack_thresholds(config, folder, thresholds)
    files["predictions"] = folder.predictions
    atomic_write(folder.predictions, _predictions(config, evaluation, thresholds))
    files["quality"] = folder.quality
    atomic_write(folder.quality, _quality(config, test or evaluation, thresholds))
    advice: list[str] = []
    if workdir is not None:
        losses, evals = read_jsonl(workdir / LOSS_LOG), read_jsonl(workdir / METRICS_LOG)
        atomic_write(folder.curves, plot_curves(losses, evals))
        files["curves"] = folder.curves
        advice = diagnose(losses, evals)
    test_figures = {"images": len(test.truths), **test.metrics} if test else None
    manifest = make_manifest(
        config, signature, evaluation, advice, train_result, files, test_figures, thresholds, drop
    )
    folder.write_manifest(manifest)
    return manifest


def export(
    config: TrainConfig, checkpoint: Path, data: TrainData, folder: ModelFolder
) -> tuple[dict[str, Path], dict[str, object]]:
    """Write both .tflite files (labels packed inside), the labels, the config and the Keras weights;
    return them by manifest key, and the int8 model's checked signature."""
    import keras

    from trainer.export import convert
    from trainer.models import build_detector
    from trainer.stem import equalize_stem

    keras.mixed_precision.set_global_policy("float32")  # export in float32 even after GPU training
    detector = build_detector(config.with_(weights="none"))
    detector.network.load_weights(str(checkpoint / WEIGHTS))
    train_cache = ImageCache(data.train, config.input_size, data.cache_dir)
    bound = detector.box_bound(data.train)
    representative = calibration(train_cache, config.seed)
    # Only the exported copy: the weights file that goes on training below is the checkpoint's own.
    equalize_stem(detector.network, representative)
    convert(detector, folder.float_model, folder.int8_model, representative, box_bound=bound)
    files = {"float": folder.float_model, "int8": folder.int8_model}
    labels_bytes = ("\n".join(config.labels) + "\n").encode()
    atomic_write(folder.labels, labels_bytes)
    for kind in ("float", "int8"):
        packed = populate(
            files[kind].read_bytes(), _metadata(config, kind, folder), {folder.labels.name: labels_bytes}
        )
        atomic_write(files[kind], packed)
    check_signature(files["float"], config.input_size, np.float32)
    signature = check_signature(files["int8"], config.input_size, np.uint8)
    config.save(folder.config)
    # The Keras weights travel with the model so that it can be trained more ("continue").
    shutil.copyfile(checkpoint / WEIGHTS, folder.weights)
    files |= {"labels": folder.labels, "config": folder.config, "weights": folder.weights}
    return files, signature


def evaluate(config: TrainConfig, data: TrainData, folder: ModelFolder) -> Evaluation:
    """Both models in LiteRT on the validation images (the training images when there are none)."""
    eval_set = data.val or data.train
    split = "validation" if data.val else "training (no validation split)"
    return _evaluate_on(config, eval_set, split, data.cache_dir, folder)


def evaluate_test(config: TrainConfig, data: TrainData, folder: ModelFolder) -> Evaluation | None:
    """Both models on the test split, which nothing before chose or trained on; None without one."""
    if not data.test:
        return None
    return _evaluate_on(config, data.test, "test", data.cache_dir, folder)


def _metadata(
    config: TrainConfig, kind: str, folder: ModelFolder, thresholds: Thresholds | None = None
) -> bytes:
    """The TFLite metadata of the `kind` model; with the thresholds once they are chosen (int8 only)."""
    return detection_metadata(
        name=f"FieldLens {config.model}",
        description=f"Detects {', '.join(config.labels)}. {kind} model trained with FieldLens.",
        input_size=config.input_size,
        labels_file=folder.labels.name,
        version=__version__,
        score_threshold=thresholds.overall.score if thresholds else None,
        thresholds_file=PACKED_THRESHOLDS if thresholds else None,
    )


def thresholds_of(config: TrainConfig, evaluation: Evaluation, test: Evaluation | None) -> Thresholds:
    """The int8 model's thresholds, chosen on `evaluation` (validation), measured on `test`, and the
    confusion matrix at them on the test images (else the validation ones)."""
    labels = config.labels
    chosen = choose_thresholds(evaluation.truths, evaluation.detections["int8"], labels, evaluation.split)
    if test is not None:
        chosen = replace(
            chosen,
            test=measure(chosen, test.truths, test.detections["int8"], labels),
            test_images=len(test.truths),
        )
    shown = test or evaluation
    matrix = confusion_matrix(shown.truths, keep(shown.detections["int8"], labels, chosen), labels)
    confusion = {
        "split": shown.split,
        "rows": [*labels, FALSE_ALARM],
        "columns": [*labels, MISSED],
        "matrix": matrix,
    }
    return replace(chosen, confusion=confusion)


def pack_thresholds(config: TrainConfig, folder: ModelFolder, thresholds: Thresholds) -> dict[str, object]:
    """Put the thresholds into the int8 model (metadata and a packed file); returns its checked signature
    (only metadata changed: what it computes is what was evaluated)."""
    files = {folder.labels.name: folder.labels.read_bytes(), PACKED_THRESHOLDS: thresholds.packed()}
    packed = populate(folder.int8_model.read_bytes(), _metadata(config, "int8", folder, thresholds), files)
    atomic_write(folder.int8_model, packed)
    return check_signature(folder.int8_model, config.input_size, np.uint8)


def gate_drop(config: TrainConfig, evaluation: Evaluation, folder: ModelFolder) -> dict[str, Any]:
    """int8 below float, averaged over the evaluation's images and invisibly perturbed copies of them
    (trainer/verify.py, gate_copies): what the int8 gate judges."""
    m = evaluation.metrics
    first = [m["float"]["map50"], m["float"]["map50_95"], m["int8"]["map50"], m["int8"]["map50_95"]]
    images = evaluation.images
    copies = gate_copies(len(images))
    return int8_drop(
        folder.float_model, folder.int8_model, images, evaluation.truths, config.labels, copies, first
    )


def _evaluate_on(
    config: TrainConfig, samples: list[Sample], split: str, cache_dir: Path, folder: ModelFolder
) -> Evaluation:
    images = np.asarray(ImageCache(samples, config.input_size, cache_dir).images)
    truths = [(s.boxes, s.classes) for s in samples]
    evaluation = Evaluation(split, images, truths, {}, {})
    for kind, path in (("float", folder.float_model), ("int8", folder.int8_model)):
        started = time.perf_counter()
        evaluation.detections[kind] = run_tflite(path, images)
        elapsed_ms = (time.perf_counter() - started) * 1000 / max(len(samples), 1)
        metrics = coco_metrics(truths, evaluation.detections[kind], config.labels, config.score_threshold)
        evaluation.metrics[kind] = {**metrics, "ms_per_image": elapsed_ms}
    return evaluation


def make_manifest(
    config: TrainConfig,
    signature: dict[str, object],
    evaluation: Evaluation,
    advice: list[str],
    train_result: TrainResult | None,
    files: dict[str, Path],
    test: dict[str, Any] | None = None,
    thresholds: Thresholds | None = None,
    drop: dict[str, Any] | None = None,
) -> Manifest:
    """The manifest: figures, the verdict on the int8 model, its thresholds, and a sha256 of every file.

    `test` (both models on the test split) is kept apart under `metrics.by_model["test"]`; `drop`
    (gate_drop: int8 below float over several evaluations) under `metrics.by_model["int8_drop"]`.
    """
    m = evaluation.metrics
    metrics = Metrics(
        float(m["float"]["map50"]),
        float(m["int8"]["map50"]),
        float(m["float"]["map50_95"]),
        float(m["int8"]["map50_95"]),
        {
            "float": m["float"],
            "int8": m["int8"],
            **({"test": test} if test else {}),
            **({INT8_DROP: drop} if drop else {}),
        },
    )
    good = int8_close_enough(metrics)
    return Manifest(
        model=config.model,
        input_size=config.input_size,
        labels=list(config.labels),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        config=config.to_dict(),
        signature=signature,
        evaluated_on=evaluation.split,
        metrics=metrics,
        int8_ok=good,
        verdict=_verdict(metrics, good, evaluation.split)
        + _test_sentence(test)
        + (f" Score threshold, {thresholds.robot_sentence()}." if thresholds else ""),
        advice=advice,
        training=None if train_result is None else _training(train_result),
        host=platform.platform(),
        files={key: FileEntry.of(path) for key, path in files.items()},
        thresholds=thresholds,
    )


def int8_drops(metrics: Metrics) -> tuple[float, float]:
    """How far int8 is below float on mAP@0.5 and mAP@0.5:0.95: the mean over several evaluations
    when the manifest has it, else the one evaluation's difference."""
    drop = metrics.by_model.get(INT8_DROP)
    if drop:
        d50, d95 = drop["mean"]
        return float(d50), float(d95)
    return metrics.map50_float - metrics.map50_int8, metrics.map50_95_float - metrics.map50_95_int8


def int8_close_enough(metrics: Metrics) -> bool:
    """The int8 gate: neither mAP of the int8 model more than MAX_INT8_DROP below the float model's."""
    return max(int8_drops(metrics)) <= MAX_INT8_DROP + 1e-9  # 0.80 - 0.78 is 0.0200000000000000018


def _verdict(metrics: Metrics, good: bool, split: str) -> str:
    figures = (
        f"int8 mAP@0.5 {metrics.map50_int8:.3f} vs float {metrics.map50_float:.3f}, mAP@0.5:0.95 "
        f"{metrics.map50_95_int8:.3f} vs {metrics.map50_95_float:.3f} on the {split} images"
    )
    drop = metrics.by_model.get(INT8_DROP)
    if drop:
        d50, d95 = int8_drops(metrics)
        figures += (
            f"; over those images and {drop['evaluations'] - 1} copies with invisible noise, int8 is "
            f"on average {_below(d50)} on mAP@0.5 and {_below(d95)} on mAP@0.5:0.95"
        )
    if good:
        return figures + "."
    return (
        f"NOT DELIVERED AS GOOD: the int8 model is more than {MAX_INT8_DROP:.2f} below the float model "
        f"({figures}). Use {FLOAT}, or train longer with more images."
    )


def _below(drop: float) -> str:
    return f"{abs(drop):.3f} {'below' if drop >= 0 else 'above'} float"


def _test_sentence(test: dict[str, Any] | None) -> str:
    if not test:
        return ""
    int8 = test["int8"]
    return (
        f" On the {test['images']} test images (never trained on or used to choose): int8 mAP@0.5 "
        f"{int8['map50']:.3f}, mAP@0.5:0.95 {int8['map50_95']:.3f}."
    )


def _training(result: TrainResult) -> dict[str, Any]:
    return {
        "steps_completed": result.steps_completed,
        "reason": result.reason,
        "seconds": result.seconds,
        "images_per_second": result.images_per_second,
    }


def _predictions(config: TrainConfig, evaluation: Evaluation, thresholds: Thresholds) -> bytes:
    """The int8 model's detections as the robot keeps them (each label at its threshold)."""
    shown = slice(0, min(PREVIEW_IMAGES, len(evaluation.truths)))
    kept = keep(evaluation.detections["int8"][shown], config.labels, thresholds)
    return predictions_image(
        list(evaluation.images[shown]), evaluation.truths[shown], kept, config.labels, threshold=0.0
    )


def _quality(config: TrainConfig, shown: Evaluation, thresholds: Thresholds) -> bytes:
    """The quality picture on the images of `shown` (the test split when there is one)."""
    points = thresholds.test if shown.split == "test" and thresholds.test else thresholds.labels
    return quality_picture(
        config.labels,
        dict(shown.metrics["int8"].get("pr_curves") or {}),
        {label: point for label, point in points.items() if label in thresholds.labels},
        thresholds.overall.score,
        thresholds.confusion["matrix"],
        shown.split,
    )
