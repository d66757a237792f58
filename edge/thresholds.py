"""Which score a detection needs: the model's own thresholds unless the user gives others.

FieldLens packs the thresholds it chose (the highest F1 on the validation images, per label and one
for all labels) into the int8 model; a model with only a TFLite-metadata recommendation gets that;
a model with neither gets DEFAULT_THRESHOLD. `--threshold` replaces the model's thresholds for
every label, `--label-threshold` replaces one label's. This is the one place the default lives:
`/model test`, `fieldlens-edge run` and its MJPEG page all go through `TFLiteDetector`, which asks here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from edge.metadata import packed_thresholds, score_threshold

DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class ScoreThresholds:
    overall: float
    labels: dict[str, float] = field(default_factory=dict)
    source: str = "default"  # "the model", "the model's metadata", "default", "--threshold"

    def of(self, label: str) -> float:
        return self.labels.get(label, self.overall)

    def describe(self) -> str:
        """`0.42 (ball 0.40, cone 0.55), from the model`."""
        per_label = ", ".join(f"{k} {v:.2f}" for k, v in self.labels.items())
        return f"{self.overall:.2f}" + (f" ({per_label})" if per_label else "") + f", from {self.source}"


def model_thresholds(model: bytes) -> ScoreThresholds:
    """The thresholds the model carries (FieldLens' packed ones, else its metadata's), else the default."""
    packed = packed_thresholds(model)
    if packed is not None:
        return ScoreThresholds(packed["overall"], packed["labels"], "the model")
    recommended = score_threshold(model)
    if recommended is not None:
        return ScoreThresholds(recommended, {}, "the model's metadata")
    return ScoreThresholds(DEFAULT_THRESHOLD, {}, "default")


def resolve(
    model: bytes, threshold: float | None = None, label_thresholds: Mapping[str, float] | None = None
) -> ScoreThresholds:
    """The model's thresholds, with the user's: `threshold` for every label, then `label_thresholds`."""
    base = model_thresholds(model) if threshold is None else ScoreThresholds(threshold, {}, "--threshold")
    if not label_thresholds:
        return base
    source = base.source + " and --label-threshold"
    return ScoreThresholds(base.overall, {**base.labels, **label_thresholds}, source)
