"""What the bot and the CLI say about jobs and models, in one place, so that both say it the same way.

Job states keep their ftc-ml names (teams know them); each comes with one plain sentence. Jobs and
models have separate id spaces, so they are always written `job 7` and `model 3`, never `#7`.
"""

from __future__ import annotations

from storage.domain import JobState

STATE_SENTENCES: dict[JobState, str] = {
    JobState.QUEUED: "Waiting for a free trainer; its minutes are reserved.",
    JobState.PREPARING: "Loading the images and building the model.",
    JobState.RUNNING: "Training now.",
    JobState.STOP_REQUESTED: "Stopping after the current step; the last checkpoint will be kept.",
    JobState.STOPPING: "Stopped training; turning the last checkpoint into a model.",
    JobState.STOPPED: "Stopped early; the model from its last checkpoint was delivered.",
    JobState.CANCELED: "Canceled before its first checkpoint: nothing was kept and its minutes are back.",
    JobState.SUCCEEDED: "Finished its steps or its time; the model is ready.",
    JobState.FAILED: "Training failed; its minutes are back.",
    JobState.TRY_AGAIN_LATER: "Not started: the queue was full. Nothing was reserved.",
}

# Shown where a model is chosen (the bot's choice text is at most 100 characters).
MODEL_DESCRIPTIONS: dict[str, str] = {
    "ssd_mobilenet_v2_320": "fastest on a robot; the kind ftc-ml trained and Limelight runs (default)",
    "ssd_mobilenet_v2_fpnlite_320": "a feature pyramid for small or far objects; about 15% slower to train",
    "ssd_mobilenet_v2_fpnlite_p3p6_320": "experimental, small objects; 20% slower to train, 1.6x to run",
    "ssd_mobilenet_v2_s8_320": "experimental, small or thin objects; 12% slower to train, 1.1x to run",
    "ssd_mobilenet_v2_s8td_320": "experimental, s8 with deeper context; 5% slower to train, 1.1x to run",
}

EPOCH_SENTENCE = (
    "An epoch is one pass over every training image; about 100 epochs is a good start (ftc-ml's rule)."
)


def state_line(state: JobState) -> str:
    """`RUNNING: Training now.`: the ftc-ml name, then what it means."""
    return f"{state}: {STATE_SENTENCES.get(state, '')}".strip()


def model_choice(model: str) -> str:
    """A model's name and what it is good for, for a list of choices."""
    description = MODEL_DESCRIPTIONS.get(model)
    return f"{model}: {description}" if description else model


def duration(seconds: object) -> str:
    """A time as h:mm:ss, or "--" while it is not known (None): how the bot and the CLI write times."""
    if not isinstance(seconds, int | float):
        return "--"
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
