"""The training loop, readable top to bottom.

    build model -> (resume | init from an earlier model) -> loop:
        one step; poll stop / time budget; every `checkpoint_every` steps: evaluate, checkpoint
    -> final checkpoint -> TrainResult

Checkpoints hold the network weights, the optimizer's variables (momentum and iteration count, so a
resumed run continues the learning-rate schedule where it was) and the config. `latest` and `best`
(by validation mAP@0.5) are kept; older ones are pruned.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from storage.blobs import atomic_write
from trainer import evaluate
from trainer.config import TrainConfig
from trainer.data import ImageCache, Sample, train_dataset
from trainer.loss import detection_loss
from trainer.models import build_detector
from trainer.models.detector import Detector

log = logging.getLogger(__name__)

Event = dict[str, object]
LOSS_LOG_EVERY = 10


def select_device() -> str:
    """'GPU' with mixed precision when a GPU is visible, else 'CPU'; no code changes either way.

    Must run before the model is built (the dtype policy applies to layers created afterwards).
    """
    if tf.config.list_physical_devices("GPU"):
        keras.mixed_precision.set_global_policy("mixed_float16")
        return "GPU"
    keras.mixed_precision.set_global_policy("float32")
    return "CPU"


class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `peak`, then cosine decay to zero at `total` steps."""

    def __init__(self, peak: float, warmup: int, total: int) -> None:
        self.peak, self.warmup, self.total = peak, max(warmup, 1), max(total, 1)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warm = self.peak * step / self.warmup
        progress = tf.clip_by_value((step - self.warmup) / max(self.total - self.warmup, 1), 0.0, 1.0)
        cosine = 0.5 * self.peak * (1 + tf.cos(math.pi * progress))
        return tf.where(step < self.warmup, warm, cosine)

    def get_config(self) -> dict:
        return {"peak": self.peak, "warmup": self.warmup, "total": self.total}


@dataclass
class EarlyStopping:
    """Stop when validation mAP has not improved for `patience` evaluations (None: never)."""

    patience: int | None
    best: float = -1.0
    without_gain: int = 0

    def update(self, map50: float) -> bool:
        """Record an evaluation; True when training should stop."""
        if map50 > self.best:
            self.best, self.without_gain = map50, 0
        else:
            self.without_gain += 1
        return bool(self.patience) and self.without_gain >= self.patience  # type: ignore[operator]


@dataclass
class TrainData:
    train: list[Sample]
    val: list[Sample]
    cache_dir: Path


@dataclass
class TrainResult:
    steps_completed: int
    reason: str  # completed | stop_requested | max_time | early_stopping
    seconds: float
    checkpoint: Path | None  # latest
    best_checkpoint: Path | None
    metrics: dict[str, object] = field(default_factory=dict)  # of the last evaluation
    images_per_second: float = 0.0


def _save_checkpoint(
    workdir: Path, step: int, detector: Detector, optimizer: keras.optimizers.Optimizer, extra: dict
) -> Path:
    """Write a checkpoint folder atomically (temp folder, then rename) and point `latest` at it."""
    final = workdir / "checkpoints" / f"step-{step:07d}"
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    detector.network.save_weights(str(tmp / "model.weights.h5"))
    np.savez(tmp / "optimizer.npz", *[v.numpy() for v in optimizer.variables])
    detector.config.save(tmp / "config.json")
    atomic_write(tmp / "state.json", json.dumps({"step": step, **extra}).encode())
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    atomic_write(
        workdir / "checkpoints" / "latest.json", json.dumps({"path": final.name, "step": step}).encode()
    )
    return final


def latest_checkpoint(workdir: Path) -> Path | None:
    pointer = Path(workdir) / "checkpoints" / "latest.json"
    if not pointer.exists():
        return None
    path = pointer.parent / json.loads(pointer.read_text())["path"]
    return path if path.exists() else None


def _prune(workdir: Path, keep: set[Path]) -> None:
    for path in (workdir / "checkpoints").glob("step-*"):
        if path not in keep:
            shutil.rmtree(path, ignore_errors=True)


def _restore_optimizer(optimizer: keras.optimizers.Optimizer, variables: Sequence, path: Path) -> None:
    optimizer.build(variables)
    with np.load(path / "optimizer.npz") as data:
        arrays = [data[f"arr_{i}"] for i in range(len(data.files))]
    if len(arrays) != len(optimizer.variables):
        raise RuntimeError(
            f"checkpoint {path} has {len(arrays)} optimizer variables, expected {len(optimizer.variables)}"
        )
    for var, value in zip(optimizer.variables, arrays, strict=True):
        var.assign(value)


class Trainer:
    """Trains one detector in `workdir`; resumable; reports progress through `on_event`."""

    def __init__(
        self,
        config: TrainConfig,
        data: TrainData,
        workdir: Path,
        on_event: Callable[[Event], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        init_weights: Path | None = None,
    ) -> None:
        self.config = config
        self.data = data
        self.workdir = Path(workdir)
        self.on_event = on_event or (lambda e: None)
        self.should_stop = should_stop or (lambda: False)
        self.init_weights = init_weights

    def run(self) -> TrainResult:
        cfg = self.config
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg.save(self.workdir / "config.json")
        tf.keras.utils.set_random_seed(cfg.seed)
        device = select_device()
        detector = build_detector(cfg)
        network = detector.network
        anchors = tf.constant(detector.anchors)
        schedule = WarmupCosine(cfg.learning_rate, min(cfg.warmup_steps, cfg.steps // 5), cfg.steps)
        optimizer = keras.optimizers.Adam(learning_rate=schedule, clipnorm=10.0)
        if device == "GPU":  # float16 gradients need loss scaling
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)

        start_step, best_map = 0, -1.0
        resume = latest_checkpoint(self.workdir)
        if resume is not None:
            network.load_weights(str(resume / "model.weights.h5"))
            _restore_optimizer(optimizer, network.trainable_variables, resume)
            state = json.loads((resume / "state.json").read_text())
            start_step, best_map = state["step"], state.get("best_map", -1.0)
            log.info("resumed from %s at step %s", resume, start_step)
        elif self.init_weights is not None:
            network.load_weights(str(self.init_weights))
            log.info("continuing from model weights %s", self.init_weights)

        train_cache = ImageCache(self.data.train, cfg.input_size, self.data.cache_dir)
        val_cache = ImageCache(self.data.val, cfg.input_size, self.data.cache_dir) if self.data.val else None
        batches = iter(
            train_dataset(
                train_cache,
                self.data.train,
                detector.anchors,
                cfg.batch_size,
                cfg.seed + start_step,
                cfg.augment,
            )
        )
        predict = evaluate.make_predict_fn(detector)

        @tf.function(reduce_retracing=True)
        def train_step(images, targets):
            box_t, cls_t, weights = targets
            with tf.GradientTape() as tape:
                box_p, logits = network(images, training=True)
                losses = detection_loss(
                    box_p, logits, box_t, cls_t, weights, anchors, float(cfg.extras.get("giou_weight", 1.0))
                )
                reg = tf.add_n(network.losses) if network.losses else 0.0
                total = losses["total"] + reg
            grads = tape.gradient(total, network.trainable_variables)
            optimizer.apply_gradients(zip(grads, network.trainable_variables, strict=True))
            return {**losses, "total": total}

        step, reason = start_step, "completed"
        started = time.monotonic()
        images_seen, last_tick = 0, time.monotonic()
        step_seconds: float | None = None  # moving average; the first step (tracing) is left out
        latest = resume
        best_path = self._best_path()
        early = EarlyStopping(cfg.early_stopping_patience, best_map)
        metrics: dict[str, object] = {}
        self.on_event({"kind": "started", "step": step, "steps": cfg.steps, "device": device})
        while step < cfg.steps:
            images, targets = next(batches)
            losses = {k: float(v) for k, v in train_step(images, targets).items()}
            step += 1
            images_seen += cfg.batch_size
            if not math.isfinite(losses["total"]):
                raise FloatingPointError(
                    f"training diverged at step {step} (loss {losses['total']}); lower the learning rate"
                )
            elapsed = time.monotonic() - started
            now = time.monotonic()
            if step > start_step + 1:
                dt = now - last_tick
                step_seconds = dt if step_seconds is None else 0.9 * step_seconds + 0.1 * dt
            last_tick = now
            rate = cfg.batch_size / step_seconds if step_seconds else 0.0
            eta = (cfg.steps - step) * step_seconds if step_seconds else None
            self.on_event(
                {
                    "kind": "step",
                    "step": step,
                    "steps": cfg.steps,
                    "loss": losses,
                    "images_per_second": rate,
                    "eta_seconds": eta,
                    "elapsed_seconds": elapsed,
                    "learning_rate": float(optimizer.learning_rate),
                }
            )  # at the restored iteration count
            if step % LOSS_LOG_EVERY == 0 or step == cfg.steps:
                append_line(self.workdir / "loss.jsonl", json.dumps({"step": step, **losses}))
            stop = self.should_stop()
            out_of_time = cfg.max_seconds is not None and elapsed >= cfg.max_seconds
            at_checkpoint = step % cfg.checkpoint_every == 0 or step == cfg.steps
            if at_checkpoint or stop or out_of_time:
                metrics = (
                    self._evaluate(predict, val_cache, detector, losses, anchors, step)
                    if val_cache
                    else {"step": step, "train_loss": losses}
                )
                map50 = float(metrics.get("map50", 0.0))  # type: ignore[arg-type]
                improved = map50 > best_map or val_cache is None
                best_map = max(best_map, map50)
                latest = _save_checkpoint(
                    self.workdir, step, detector, optimizer, {"best_map": best_map, "metrics": metrics}
                )
                if improved:
                    shutil.rmtree(best_path, ignore_errors=True)
                    shutil.copytree(latest, best_path)
                patience_ran_out = val_cache is not None and early.update(map50)
                _prune(self.workdir, {latest})
                self.on_event({"kind": "checkpoint", "step": step, "metrics": metrics, "path": str(latest)})
                if stop:
                    reason = "stop_requested"
                    break
                if out_of_time:
                    reason = "max_time"
                    break
                if patience_ran_out:
                    reason = "early_stopping"
                    break
        seconds = time.monotonic() - started
        result = TrainResult(
            step,
            reason,
            seconds,
            latest,
            best_path if best_path.exists() else None,
            metrics,
            images_seen / max(seconds, 1e-9),
        )
        self.on_event({"kind": "finished", **{k: v for k, v in asdict(result).items() if k != "metrics"}})
        return result

    def _best_path(self) -> Path:
        return self.workdir / "checkpoints" / "best"

    def _evaluate(
        self, predict, val_cache: ImageCache, detector: Detector, train_losses: dict, anchors, step: int
    ) -> dict[str, object]:
        images = val_cache.images
        detections = evaluate.detect(predict, images)
        truths = [(s.boxes, s.classes) for s in self.data.val]
        metrics = evaluate.coco_metrics(
            truths, detections, detector.config.labels, detector.config.score_threshold
        )
        metrics["val_loss"] = self._val_loss(detector, val_cache, anchors)
        metrics["train_loss"] = train_losses
        metrics["step"] = step
        append_line(self.workdir / "metrics.jsonl", json.dumps(metrics))
        with tf.summary.create_file_writer(str(self.workdir / "tensorboard")).as_default():
            tf.summary.scalar("map50", metrics["map50"], step=step)
            tf.summary.scalar("map50_95", metrics["map50_95"], step=step)
            tf.summary.scalar("val_loss", metrics["val_loss"], step=step)
            tf.summary.scalar("train_loss", train_losses["total"], step=step)
        return metrics

    def _val_loss(self, detector: Detector, cache: ImageCache, anchors) -> float:
        from trainer import box_coder

        totals = []
        for start in range(0, len(cache), 16):
            idx = range(start, min(start + 16, len(cache)))
            images = tf.constant(np.asarray(cache.images[start : start + 16]), tf.float32)
            matched = [
                box_coder.match(
                    tf.constant(self.data.val[i].boxes.reshape(-1, 4)),
                    tf.constant(self.data.val[i].classes),
                    anchors,
                )
                for i in idx
            ]
            box_t, cls_t, w = (tf.stack(x) for x in zip(*matched, strict=True))
            box_p, logits = detector.network(images, training=False)
            totals.append(float(detection_loss(box_p, logits, box_t, cls_t, w, anchors)["total"]) * len(idx))
        return sum(totals) / max(len(cache), 1)


def append_line(path: Path, line: str) -> None:
    """Append one line (JSON lines readers skip a last line a crash cut short)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")
