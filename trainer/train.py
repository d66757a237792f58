"""The training loop, readable top to bottom.

    build model -> (resume | init from an earlier model) -> loop:
        _step: one optimizer step on one batch
        every `checkpoint_every` steps, on a stop request or at the time budget:
            _evaluate_and_checkpoint: validation metrics, checkpoint, best copy, early stopping
            _should_stop: why the run ends here, if it does
    -> Finished(TrainResult)

Checkpoints hold the network weights, the optimizer's variables (momentum and iteration count), the
step and the seconds trained so far (so a resumed run continues its schedule, which follows both
steps and time, where it was) and the config (storage/checkpoints.py names the files). With a
weight average (trainer/ema.py, on by default) the checkpoint's weights are the average, which is
what is evaluated and delivered, and the raw weights that training goes on from sit beside them.
`latest` and `best` (by validation fitness: 0.1 x mAP@0.5 + 0.9 x mAP@0.5:0.95, which rewards
tight boxes) are kept; older ones are pruned.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from storage.blobs import atomic_write
from storage.checkpoints import CONFIG, OPTIMIZER, STATE, TRAINING_WEIGHTS, WEIGHTS, Checkpoints
from trainer import evaluate, qat
from trainer.checkpoint_samples import save_samples
from trainer.config import TrainConfig
from trainer.data import ImageCache, Sample, train_dataset
from trainer.ema import WeightAverage
from trainer.events import Checkpoint, Event, Finished, Started, Step, TrainResult
from trainer.loss import detection_loss
from trainer.models import build_detector
from trainer.pacing import EarlyStopping, Schedule, StepTimer

__all__ = ["TrainData", "TrainResult", "Trainer", "select_device"]

log = logging.getLogger(__name__)
LOSS_LOG_EVERY = 10
METRICS_LOG = "metrics.jsonl"  # one line per evaluation (trainer/report.py reads both)
LOSS_LOG = "loss.jsonl"  # one line every LOSS_LOG_EVERY steps


def select_device() -> str:
    """'GPU' with mixed precision when a GPU is visible, else 'CPU'; no code changes either way.

    Must run before the model is built (the dtype policy applies to layers created afterwards).
    """
    if tf.config.list_physical_devices("GPU"):
        keras.mixed_precision.set_global_policy("mixed_float16")
        return "GPU"
    keras.mixed_precision.set_global_policy("float32")
    return "CPU"


@dataclass
class TrainData:
    train: list[Sample]
    val: list[Sample]  # chooses the best checkpoint and is what the delivered model is judged on
    cache_dir: Path
    test: list[Sample] = field(default_factory=list)  # never trained on or used to choose; reported


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
        self.checkpoints = Checkpoints(self.workdir)
        self.on_event = on_event or (lambda e: None)
        self.stop_requested = should_stop or (lambda: False)
        self.init_weights = init_weights

    def run(self) -> TrainResult:
        """Train to `config.steps`, or until a stop request, the time budget or early stopping."""
        cfg = self.config
        self._prepare()
        self.on_event(Started(self.step, cfg.steps, self.device))
        reason = "completed"
        while self.step < cfg.steps:
            losses = self._step()
            stop_requested = self.stop_requested()
            out_of_time = cfg.max_seconds is not None and self.timer.elapsed >= cfg.max_seconds
            at_checkpoint = self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps
            if at_checkpoint or stop_requested or out_of_time:
                with self.timer.part("evaluation and checkpoints"):
                    patience_ran_out = self._evaluate_and_checkpoint(losses)
                stop = self._should_stop(stop_requested, out_of_time, patience_ran_out)
                if stop is not None:
                    reason = stop
                    break
        seconds = self.timer.elapsed
        result = TrainResult(
            steps_completed=self.step,
            reason=reason,
            seconds=seconds,
            checkpoint=self.latest,
            best_checkpoint=self.checkpoints.best if self.checkpoints.best.exists() else None,
            metrics=self.metrics,
            images_per_second=self.timer.steps * cfg.batch_size / max(seconds, 1e-9),
            time_split=dict(self.timer.split),
        )
        self.on_event(Finished(result))
        return result

    # -- the steps of run(), in order ------------------------------------------------------------

    def _prepare(self) -> None:
        """Model, optimizer, the checkpoint to resume from (or weights to start from), data."""
        cfg = self.config
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg.save(self.workdir / CONFIG)
        tf.keras.utils.set_random_seed(cfg.seed)
        if cfg.deterministic:
            tf.config.experimental.enable_op_determinism()
        self.device = select_device()
        self.detector = build_detector(cfg)
        if cfg.quant_aware_from < 1.0:
            qat.make_quant_aware(self.detector.network)
        self.anchors = tf.constant(self.detector.anchors)
        # The rate is set before every step from the schedule (it depends on time, which Keras'
        # schedules cannot see); the optimizer holds it in a variable, so nothing is retraced.
        optimizer = make_optimizer(cfg, self.detector.network)
        if self.device == "GPU":  # float16 gradients need loss scaling
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        # Its variables exist before the train step is traced: created inside the first call, they
        # make tf.function trace the whole step twice (10-20 s more on two CPU cores).
        optimizer.build(self.detector.network.trainable_variables)
        self.optimizer = optimizer
        self.average = WeightAverage(self.detector.network, cfg.ema_decay) if cfg.ema_decay else None
        self.step, best_fitness, self.seconds_before = self._restore()
        budget = None if cfg.max_seconds is None else self.seconds_before + cfg.max_seconds
        self.schedule = Schedule(cfg.learning_rate, cfg.steps, cfg.warmup_steps, budget)
        self.early = EarlyStopping(cfg.early_stopping_patience, best_fitness)
        self.latest = self.checkpoints.latest()
        self.metrics: dict[str, Any] = {}
        self.train_cache = ImageCache(self.data.train, cfg.input_size, self.data.cache_dir)
        self.val_cache = (
            ImageCache(self.data.val, cfg.input_size, self.data.cache_dir) if self.data.val else None
        )
        self.augmenting = cfg.augment
        self.batches = self._batches()
        self.predict = evaluate.make_predict_fn(self.detector)
        self.val_loss = evaluate.make_loss_fn(self.detector)
        self.simulating_int8 = False
        self.train_step = self._make_train_step()
        self.timer = StepTimer()

    def _step(self) -> dict[str, float]:
        """One optimizer step; reports it, and logs the losses every LOSS_LOG_EVERY steps."""
        cfg = self.config
        seconds = self.seconds_before + self.timer.elapsed
        progress = self.schedule.progress(self.step, seconds)
        if self.augmenting and progress >= cfg.augment_until:
            self.augmenting = False  # the end of the run sees the photos as they are
            self.batches = self._batches()
        if cfg.quant_aware_from < 1.0 and not self.simulating_int8 and progress >= cfg.quant_aware_from:
            log.info("step %s: the training step rounds as the int8 model from here", self.step)
            self.simulating_int8 = True  # a new step, traced with the rounding (trainer/qat.py)
            self.train_step = self._make_train_step()
        with self.timer.part("waiting for data"):
            images, targets = next(self.batches)
        rate = self.schedule(self.step, seconds)
        self.optimizer.learning_rate = rate
        step = tf.constant(self.step + 1, tf.int64)
        with self.timer.part("train step"):
            losses = {k: float(v) for k, v in self.train_step(images, targets, step).items()}
        self.step += 1
        if not math.isfinite(losses["total"] + losses["l2"]):
            raise FloatingPointError(
                f"training diverged at step {self.step} (loss {losses['total']}); lower the learning rate"
            )
        self.timer.tick()
        per_step = self.timer.seconds_per_step
        eta = None
        if per_step:
            eta = (cfg.steps - self.step) * per_step
            if cfg.max_seconds is not None:  # the time limit may come first
                eta = min(eta, max(cfg.max_seconds - self.timer.elapsed, 0.0))
        self.on_event(
            Step(
                self.step,
                cfg.steps,
                losses,
                cfg.batch_size / per_step if per_step else 0.0,
                eta,
                self.timer.elapsed,
                rate,
            )
        )
        if self.step % LOSS_LOG_EVERY == 0 or self.step == cfg.steps:
            append_line(self.workdir / LOSS_LOG, json.dumps({"step": self.step, **losses}))
        return losses

    def _evaluate_and_checkpoint(self, losses: dict[str, float]) -> bool:
        """Evaluate, save a checkpoint (and the best one), prune; True when patience ran out."""
        with self._averaged():
            if self.val_cache is None:
                self.metrics = {"step": self.step, "train_loss": losses}
            else:
                self.metrics = self._evaluate(self.val_cache, losses)
            save_samples(self.workdir, self.step, self.predict, self.val_cache, self.data.val, self.config)
        fitness = evaluate.fitness(self.metrics)
        improved = fitness > self.early.best or self.val_cache is None
        self.latest = self._save_checkpoint(max(self.early.best, fitness))
        if improved:
            self.checkpoints.keep_best(self.latest)
        patience_ran_out = self.val_cache is not None and self.early.update(fitness)
        self.checkpoints.prune()
        self.on_event(Checkpoint(self.step, self.metrics, str(self.latest)))
        return patience_ran_out

    @staticmethod
    def _should_stop(stop_requested: bool, out_of_time: bool, patience_ran_out: bool) -> str | None:
        """Why the run ends at this checkpoint (the first that applies), or None to go on."""
        if stop_requested:
            return "stop_requested"
        if out_of_time:
            return "max_time"
        if patience_ran_out:
            return "early_stopping"
        return None

    # -- helpers ---------------------------------------------------------------------------------

    def _restore(self) -> tuple[int, float, float]:
        """Resume from the latest checkpoint, or start from `init_weights`.

        Returns the start step, the best fitness so far and the training seconds already spent.
        """
        network = self.detector.network
        resume = self.checkpoints.latest()
        if resume is not None:
            network.load_weights(str(resume / WEIGHTS))  # the average, when there is one
            if self.average is not None:
                self.average.reset()
            if (resume / TRAINING_WEIGHTS).exists():
                network.load_weights(str(resume / TRAINING_WEIGHTS))
            _restore_optimizer(self.optimizer, resume)
            state = json.loads((resume / STATE).read_text())
            log.info("resumed from %s at step %s", resume, state["step"])
            # "best_fitness" since the fitness replaced mAP@0.5; older checkpoints choose afresh
            return state["step"], state.get("best_fitness", -1.0), state.get("seconds", 0.0)
        if self.init_weights is not None:
            network.load_weights(str(self.init_weights))
            log.info("continuing from model weights %s", self.init_weights)
        if self.average is not None:
            self.average.reset()
        return 0, -1.0, 0.0

    def _averaged(self) -> AbstractContextManager[None]:
        """The averaged weights in the network (when averaging is on) for the duration of the block."""
        return self.average.swapped() if self.average is not None else nullcontext()

    def _batches(self) -> Iterator[Any]:
        cfg = self.config
        dataset = train_dataset(
            self.train_cache,
            self.data.train,
            self.detector.match,
            cfg.batch_size,
            cfg.seed + self.step,
            self.augmenting,
            cfg.repeat_threshold,
        )
        return iter(dataset)

    def _make_train_step(self) -> Callable[[Any, Any, Any], dict[str, tf.Tensor]]:
        network, optimizer, anchors = self.detector.network, self.optimizer, self.anchors
        average, loss_options = self.average, self.config.loss_options()
        rounding = qat.simulating if self.simulating_int8 else nullcontext

        @tf.function(reduce_retracing=True, autograph=False)
        def train_step(images, targets, step):
            box_t, cls_t, weights = targets
            with tf.GradientTape() as tape:
                with rounding():
                    box_p, logits = network(images, training=True)
                losses = detection_loss(box_p, logits, box_t, cls_t, weights, anchors, **loss_options)
                # Weight decay is optimized but kept out of "total", which is what validation measures.
                l2 = tf.add_n(network.losses) if network.losses else tf.constant(0.0)
                objective = losses["total"] + l2
            grads = tape.gradient(objective, network.trainable_variables)
            optimizer.apply_gradients(zip(grads, network.trainable_variables, strict=True))
            if average is not None:
                average.update(step)
            return {**losses, "l2": l2}

        return train_step

    def _evaluate(self, val_cache: ImageCache, train_losses: dict[str, float]) -> dict[str, Any]:
        labels = self.detector.config.labels
        detections, val_loss = evaluate.detect_with_loss(
            self.predict, self.val_loss, val_cache.images, self.data.val
        )
        truths = [(s.boxes, s.classes) for s in self.data.val]
        metrics = evaluate.coco_metrics(truths, detections, labels, self.detector.config.score_threshold)
        metrics["val_loss"] = val_loss
        metrics["train_loss"] = train_losses
        metrics["step"] = self.step
        append_line(self.workdir / METRICS_LOG, json.dumps(metrics))
        with tf.summary.create_file_writer(str(self.workdir / "tensorboard")).as_default():
            tf.summary.scalar("map50", metrics["map50"], step=self.step)
            tf.summary.scalar("map50_95", metrics["map50_95"], step=self.step)
            tf.summary.scalar("val_loss", metrics["val_loss"], step=self.step)
            tf.summary.scalar("train_loss", train_losses["total"], step=self.step)
        return metrics

    def _save_checkpoint(self, best_fitness: float) -> Path:
        """Write a checkpoint folder atomically (staging folder, then rename) and point `latest` at it."""
        tmp = self.checkpoints.staging(self.step)
        network = self.detector.network
        if self.average is not None:
            network.save_weights(str(tmp / TRAINING_WEIGHTS))
        with self._averaged():
            network.save_weights(str(tmp / WEIGHTS))
        np.savez(tmp / OPTIMIZER, *[v.numpy() for v in _optimizer_state(self.optimizer)])
        self.detector.config.save(tmp / CONFIG)
        state = {
            "step": self.step,
            "best_fitness": best_fitness,
            "metrics": self.metrics,
            "seconds": self.seconds_before + self.timer.elapsed,  # the schedule's clock on resume
        }
        atomic_write(tmp / STATE, json.dumps(state).encode())
        return self.checkpoints.commit(tmp, self.step)


class FusedAdam(keras.optimizers.Adam):
    """Keras' Adam with each variable's update as one TensorFlow op, ResourceApplyAdam, which does the
    same arithmetic: m and v, then var -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps).

    Keras writes that update as about twenty ops per variable. Tracing them for MobileNetV2's 252
    variables took 11 of the train step's 21 s of tracing on two cores, paid at every training start
    (and every resume). The optimizer's variables are Keras' own, so checkpoints do not change.
    """

    def apply(self, grads: Any, trainable_variables: Any = None) -> Any:
        # b1^t and b2^t once per step, not once per variable (the update runs before t advances)
        step = tf.cast(self.iterations + 1, tf.float32)
        self._powers = (tf.pow(self.beta_1, step), tf.pow(self.beta_2, step))
        return super().apply(grads, trainable_variables)

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if self.amsgrad or variable.dtype != tf.float32:
            super().update_step(gradient, variable, learning_rate)
            return
        index = self._get_variable_index(variable)
        beta1_power, beta2_power = self._powers
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=self._momentums[index].value.handle,
            v=self._velocities[index].value.handle,
            beta1_power=beta1_power,
            beta2_power=beta2_power,
            lr=tf.cast(learning_rate, tf.float32),
            beta1=self.beta_1,
            beta2=self.beta_2,
            epsilon=self.epsilon,
            grad=tf.cast(gradient, tf.float32),
        )


class ScaledAdam(FusedAdam):
    """Adam, or AdamW with `weight_decay` (Keras applies it decoupled, at the global rate), with the
    learning rate of the `slow` variables (by path) scaled by `slow_rate`.

    Keras' optimizers have one rate for every variable; the update step is the one place that
    sees both the variable and the rate.
    """

    def __init__(self, slow: set[str], slow_rate: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.slow, self.slow_rate = slow, slow_rate
        self._slow_indices: set[int] = set()

    def build(self, variables: list) -> None:
        super().build(variables)
        # the update step sees the backend's variable, not Keras' (no path): match by Adam's own index
        self._slow_indices = {self._get_variable_index(v) for v in variables if v.path in self.slow}

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if self._get_variable_index(variable) in self._slow_indices:
            learning_rate = learning_rate * self.slow_rate
        super().update_step(gradient, variable, learning_rate)


def make_optimizer(cfg: TrainConfig, network: keras.Model) -> keras.optimizers.Optimizer:
    """The config's optimizer, per-variable gradient norm clipped at 10."""
    if cfg.optimizer == "adam" and cfg.backbone_rate == 1.0:
        return FusedAdam(learning_rate=0.0, beta_2=cfg.beta_2, clipnorm=10.0)
    slow = set()
    if cfg.backbone_rate != 1.0:
        slow = {v.path for v in network.get_layer("backbone").trainable_variables}
    optimizer = ScaledAdam(
        slow,
        cfg.backbone_rate,
        learning_rate=0.0,
        beta_2=cfg.beta_2,
        clipnorm=10.0,
        weight_decay=cfg.weight_decay if cfg.optimizer == "adamw" else None,
    )
    # by identity: a name pattern would also match a kernel whose layer name holds "bias" or "beta"
    no_decay = [v for v in network.trainable_variables if v.name in ("gamma", "beta", "bias")]
    optimizer.exclude_from_weight_decay(var_list=no_decay)
    return optimizer


def _restore_optimizer(optimizer: keras.optimizers.Optimizer, path: Path) -> None:
    """Load a checkpoint's optimizer variables into `optimizer` (built on the same network)."""
    state = _optimizer_state(optimizer)
    with np.load(path / OPTIMIZER) as data:
        arrays = [data[f"arr_{i}"] for i in range(len(data.files))]
    if len(arrays) != len(state):
        raise RuntimeError(f"checkpoint {path} has {len(arrays)} optimizer variables, expected {len(state)}")
    for var, value in zip(state, arrays, strict=True):
        var.assign(value)


def _optimizer_state(optimizer: keras.optimizers.Optimizer) -> list:
    """The optimizer's variables that a checkpoint keeps: not the learning rate, which the schedule sets."""
    return [v for v in optimizer.variables if v.name != "learning_rate"]


def append_line(path: Path, line: str) -> None:
    """Append one line (JSON lines readers skip a last line a crash cut short)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")
