"""The numbers a student sees before training: batch size, steps per epoch, epochs, duration.

Pure arithmetic (no TensorFlow) so that the bot can show them; the trainer uses the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass

MODELS = (
    "ssd_mobilenet_v2_320",
    "ssd_mobilenet_v2_fpnlite_320",
    "ssd_mobilenet_v2_fpnlite_p3p6_320",
    "ssd_mobilenet_v2_s8_320",
    "ssd_mobilenet_v2_s8td_320",
)
DEFAULT_MODEL = MODELS[0]
CHECKPOINT_EVERY = 100

# Training images per second on a 2-core CPU with the stem frozen (bench/train.py, README). Used until
# this machine has finished a job of that model and measured its own.
DEFAULT_IMAGES_PER_SECOND = {
    "ssd_mobilenet_v2_320": 23.0,
    "ssd_mobilenet_v2_fpnlite_320": 19.7,
    "ssd_mobilenet_v2_fpnlite_p3p6_320": 18.5,  # 0.81 x the default, side by side (README)
    "ssd_mobilenet_v2_s8_320": 20.2,  # 0.88 x the default, side by side on robosub (README)
    "ssd_mobilenet_v2_s8td_320": 21.9,  # 0.95 x the default on robosub, the same day (README)
}
# Per-job overhead outside the training loop: data cache, tracing the step, export and verification.
OVERHEAD_SECONDS = 90.0


SUGGESTED_EPOCHS = 100


def suggested_steps(train_images: int, batch_size: int, checkpoint_every: int = CHECKPOINT_EVERY) -> int:
    """ftc-ml's rule of thumb: about 100 epochs, rounded to a whole number of checkpoints (at least one)."""
    steps = SUGGESTED_EPOCHS * max(train_images, 1) / max(batch_size, 1)
    return max(checkpoint_every, round(steps / checkpoint_every) * checkpoint_every)


def effective_batch_size(requested: int, train_images: int) -> int:
    """ftc-ml's rule: halve the batch size until it is no larger than the number of training images."""
    batch = requested
    while batch > 1 and batch > train_images:
        batch //= 2
    return max(batch, 1)


def epochs_for(steps: int, batch_size: int, train_images: int) -> float:
    """ftc-ml's formula: epochs = steps * batch / training images."""
    return steps * batch_size / max(train_images, 1)


@dataclass(frozen=True)
class Plan:
    """What a job will do, computed before it is queued."""

    batch_size: int
    train_images: int
    val_images: int
    steps: int
    steps_per_epoch: float
    epochs: float
    images_per_second: float
    estimated_seconds: float
    warnings: list[str]
    test_images: int = 0  # reported when the job ends; never trained on or used to choose
    ends_by: str = "steps"  # "steps" or "time": which limit is expected to end the job

    def to_json(self) -> dict[str, object]:
        return {
            "batch_size": self.batch_size,
            "train_images": self.train_images,
            "val_images": self.val_images,
            "test_images": self.test_images,
            "ends_by": self.ends_by,
            "steps": self.steps,
            "steps_per_epoch": round(self.steps_per_epoch, 2),
            "epochs": round(self.epochs, 2),
            "images_per_second": round(self.images_per_second, 2),
            "estimated_seconds": round(self.estimated_seconds),
            "warnings": self.warnings,
        }

    def seconds_for(self, steps: int) -> float:
        """Estimated duration of `steps` at this plan's batch size and speed, overhead included."""
        return steps * self.batch_size / max(self.images_per_second, 1e-6) + OVERHEAD_SECONDS

    def summary(self) -> str:
        minutes = self.estimated_seconds / 60
        test = f", {self.test_images} test" if self.test_images else ""
        ends = (
            " The time limit will end it first; the learning rate follows the time, so it still ends slowly."
            if self.ends_by == "time"
            else ""
        )
        return (
            f"{self.train_images} training images ({self.val_images} validation{test}), batch size "
            f"{self.batch_size}: {self.steps_per_epoch:.1f} steps per epoch, so {self.steps} steps = "
            f"{self.epochs:.1f} epochs. Estimated time: about {minutes:.0f} min "
            f"(at {self.images_per_second:.1f} images/s).{ends}"
        )


def make_plan(
    steps: int,
    batch_size: int,
    train_images: int,
    val_images: int,
    images_per_second: float,
    max_minutes: float | None = None,
    checkpoint_every: int = CHECKPOINT_EVERY,
    test_images: int = 0,
) -> Plan:
    batch = effective_batch_size(batch_size, train_images)
    warnings = []
    if batch != batch_size:
        warnings.append(
            f"Batch size lowered from {batch_size} to {batch}: there are only {train_images} training images."
        )
    if steps % checkpoint_every:
        warnings.append(
            f"{steps} steps is not a multiple of {checkpoint_every}: checkpoints are saved every "
            f"{checkpoint_every} steps, and at the end."
        )
    if val_images == 0:
        warnings.append("There is no validation split, so accuracy cannot be measured on unseen images.")
    train_seconds = steps * batch / max(images_per_second, 1e-6)
    ends_by = "steps"
    if max_minutes is not None and train_seconds > max_minutes * 60:
        ends_by = "time"
        warnings.append(
            f"{steps} steps need about {train_seconds / 60:.0f} min of training, more than the maximum of "
            f"{max_minutes:g} min: training will stop at the time limit (about step "
            f"{int(max_minutes * 60 * images_per_second / batch)}), with the learning rate brought down "
            "on the way as if that were the last step. Raise max minutes to train all the steps."
        )
    return Plan(
        batch,
        train_images,
        val_images,
        steps,
        train_images / batch,
        epochs_for(steps, batch, train_images),
        images_per_second,
        train_seconds + OVERHEAD_SECONDS,
        warnings,
        test_images,
        ends_by,
    )
