"""The tiny model the tests and benchmarks train: small enough to train in seconds on two cores."""

from __future__ import annotations

# TrainConfig's settings for the tiny model (tests' `trained_model` fixture).
TINY = dict(
    input_size=128,
    alpha=0.35,
    batch_size=16,
    learning_rate=0.003,
    warmup_steps=20,
    weights="none",
    augment=False,
    checkpoint_every=100,
    deterministic=True,  # the same model every run on a machine: accuracy tests do not flake
    # No weight average: over a 200-step run at a high rate its 50-step horizon lags weights that are
    # still improving fast, and the edge tests need a model that detects at a 0.3 threshold (with
    # the average on, the fixture's model found 4 of 7 shapes and none at 0.3 on one frame). The
    # trainer's tests turn it on where they test it.
    ema_decay=0.0,
)

# The same tiny model as a job's training settings (what `job start` options or FIELDLENS_JOB_DEFAULTS
# would give); checkpoints every 20 steps so that job tests stay short.
TINY_JOB = {
    "input_size": TINY["input_size"],
    "alpha": TINY["alpha"],
    "weights": "none",
    "learning_rate": TINY["learning_rate"],
    "warmup_steps": 5,
    "augment": False,
    "checkpoint_every": 20,
    "deterministic": True,
    # The default rounds as int8 from 80% of a run, in a second traced step: seconds that every short
    # job in the tests would pay again. The trained_model fixture (TINY) keeps the default.
    "quant_aware_from": 1.0,
}
