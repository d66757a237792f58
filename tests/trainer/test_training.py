"""Real (tiny) TensorFlow training: learning, BatchNorm statistics, stop, max time, resume, continue."""

from __future__ import annotations

import json

import pytest

from storage.checkpoints import TRAINING_WEIGHTS, WEIGHTS, Checkpoints
from trainer import evaluate
from trainer.data import ImageCache
from trainer.events import Step
from trainer.models import build_detector
from trainer.train import Trainer

pytestmark = pytest.mark.slow


def test_tiny_run_reaches_high_eval_mode_map_on_its_training_data(trained_model) -> None:
    """Catches the BatchNorm trap: with Keras' momentum 0.999 the moving statistics stay near their
    initial values and eval-mode mAP collapses while the training loss looks fine."""
    cfg = trained_model.config
    detector = build_detector(cfg)
    detector.network.load_weights(str(trained_model.result.checkpoint / "model.weights.h5"))
    data = trained_model.data
    cache = ImageCache(data.train, cfg.input_size, data.cache_dir)
    detections = evaluate.detect(evaluate.make_predict_fn(detector), cache.images)
    metrics = evaluate.coco_metrics([(s.boxes, s.classes) for s in data.train], detections, cfg.labels)
    assert metrics["map50"] > 0.8, metrics["map50"]
    assert metrics["recall"] > 0.5


def test_validation_loss_comes_from_the_same_pass_as_the_detections(trained_model) -> None:
    """One pass of the network gives both: the same detections as `detect`, and the loss of the
    network's eval-mode outputs against the detector's own targets, computed here eagerly."""
    import numpy as np
    import tensorflow as tf

    from trainer.loss import detection_loss

    cfg = trained_model.config
    detector = build_detector(cfg)
    detector.network.load_weights(str(trained_model.result.checkpoint / "model.weights.h5"))
    samples = trained_model.data.train[:20]
    images = ImageCache(samples, cfg.input_size, trained_model.data.cache_dir).images
    predict = evaluate.make_predict_fn(detector)
    detections, loss = evaluate.detect_with_loss(predict, evaluate.make_loss_fn(detector), images, samples, 8)
    for got, want in zip(detections, evaluate.detect(predict, images), strict=True):
        np.testing.assert_array_equal(got.classes, want.classes)
        np.testing.assert_allclose(got.boxes, want.boxes, atol=1e-6)  # other batch size, other sums
    totals = []
    for start in (0, 8, 16):  # batches of 8, as above: the loss is normalised per batch
        batch = samples[start : start + 8]
        targets = [detector.match(tf.constant(s.boxes.reshape(-1, 4)), tf.constant(s.classes)) for s in batch]
        box_t, cls_t, w = (tf.stack(x) for x in zip(*targets, strict=True))
        box_p, logits = detector.network(np.asarray(images[start : start + 8], np.float32), training=False)
        anchors = tf.constant(detector.anchors)
        total = detection_loss(box_p, logits, box_t, cls_t, w, anchors, **cfg.loss_options())["total"]
        totals.append(float(total) * len(batch))
    assert loss > 0
    assert loss == pytest.approx(sum(totals) / len(samples), rel=1e-4)


def test_metrics_are_written_every_checkpoint(trained_model) -> None:
    work = trained_model.out_dir.parent / "work"
    lines = [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [100, 200]
    for m in lines:
        assert {"map50", "map50_95", "per_class_ap50", "precision", "recall", "confusion", "val_loss"} <= set(
            m
        )
        assert set(m["per_class_ap50"]) == set(trained_model.config.labels)
    assert list((work / "tensorboard").glob("events.out.tfevents.*"))


def test_stop_then_resume_then_max_time(trained_model, tmp_path) -> None:
    """A stop request saves a checkpoint; a new run resumes from it (weights, optimizer, schedule
    position) and a time budget stops it at the next step. Augmentation stops at augment_until."""
    cfg = trained_model.config.with_(steps=50, ema_decay=0.98, augment=True, augment_until=0.9)
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) >= 4

    trainer = Trainer(cfg, trained_model.data, tmp_path / "w", should_stop=stop)
    first = trainer.run()
    assert trainer.train_step.experimental_get_tracing_count() == 1  # a second trace costs 10-20 s
    assert first.reason == "stop_requested"
    assert first.steps_completed == 4
    assert trainer.augmenting  # 4 of 50 steps: still augmenting
    assert Checkpoints(tmp_path / "w").latest() == first.checkpoint
    assert json.loads((first.checkpoint / "state.json").read_text())["step"] == 4
    # the average (evaluated, delivered) and the raw weights training resumes from, side by side
    assert (first.checkpoint / WEIGHTS).exists() and (first.checkpoint / TRAINING_WEIGHTS).exists()

    events = []
    trainer = Trainer(
        cfg.with_(max_seconds=0.001), trained_model.data, tmp_path / "w", on_event=events.append
    )
    second = trainer.run()
    # resumed into a built optimizer; the un-augmented batches need no new trace either
    assert trainer.train_step.experimental_get_tracing_count() == 1
    assert not trainer.augmenting  # the time budget is spent: progress 1.0 is past augment_until
    assert second.reason == "max_time"
    assert second.steps_completed == 5
    (step,) = [e for e in events if isinstance(e, Step)]
    assert step.step == 5  # continued, not restarted
    # the step and seconds came back; with the time budget spent, the schedule has decayed to zero
    assert step.learning_rate == pytest.approx(0.0, abs=1e-9)
    assert Checkpoints(tmp_path / "w").latest().name == "step-0000005"  # type: ignore[union-attr]


def test_continue_from_an_earlier_model_starts_a_new_budget(trained_model, tmp_path) -> None:
    cfg = trained_model.config.with_(steps=3)
    events = []
    weights = trained_model.result.checkpoint / "model.weights.h5"
    result = Trainer(
        cfg, trained_model.data, tmp_path / "w", on_event=events.append, init_weights=weights
    ).run()
    assert result.steps_completed == 3
    first_loss = next(e for e in events if isinstance(e, Step)).loss["total"]
    assert first_loss < 1.0  # starts from a trained model, not from scratch (~5 at step 1)
