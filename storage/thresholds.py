"""A model's own score thresholds: chosen by the trainer where F1 is highest, kept in its manifest and
packed into the int8 model, so that Discord, the robot and the pages all start from the same numbers.

The trainer chooses them (trainer/thresholds.py) on the validation images and measures them again
on the test images when there are some; the edge runtime reads the packed copy (`packed()`, read by
edge/thresholds.py, which may not import this package: the JSON layout below is the contract).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

# Packed into the model as {"version": 1, "overall": 0.42, "labels": {"ball": 0.4, ...}}.
PACKED_VERSION = 1


@dataclass(frozen=True)
class OperatingPoint:
    """Precision and recall (IoU >= 0.5, same label) of the detections scoring at least `score`."""

    score: float
    precision: float
    recall: float
    f1: float
    truths: int  # objects of the label(s) in the images measured

    def sentence(self) -> str:
        return f"{self.score:.2f} (precision {self.precision:.2f}, recall {self.recall:.2f})"


@dataclass(frozen=True)
class Thresholds:
    """One threshold for every label (`overall`) and one per label where one could be chosen.

    `labels` leaves out a label that had no object in the images or was never found: the robot
    uses `overall` for it. `test` holds the same thresholds measured on the test images.
    """

    overall: OperatingPoint
    labels: dict[str, OperatingPoint]
    chosen_on: str  # "validation", or "training (no validation split)"
    images: int
    test: dict[str, OperatingPoint] | None = None  # "overall" and labels, on the test images
    test_images: int = 0
    confusion: dict[str, Any] = field(default_factory=dict)  # at these thresholds: labels, matrix

    def score_for(self, label: str) -> float:
        point = self.labels.get(label)
        return point.score if point else self.overall.score

    def robot_sentence(self) -> str:
        """`robot: 0.42 (precision 0.91, recall 0.88 on the 20 test images)`: the one threshold for all
        labels (what a Limelight takes), measured on the test images when there are some."""
        point = (self.test or {}).get("overall") or self.overall
        where = f"the {self.test_images} test images" if self.test else f"the {self.chosen_on} images"
        measured = f"precision {point.precision:.2f}, recall {point.recall:.2f} on {where}"
        return f"robot: {self.overall.score:.2f} ({measured})"

    def label_lines(self) -> list[str]:
        """One line per label: its threshold and the precision and recall there."""
        lines = []
        for label, point in self.labels.items():
            shown = (self.test or {}).get(label) or point
            lines.append(
                f"{label}: {point.score:.2f} (precision {shown.precision:.2f}, recall {shown.recall:.2f})"
            )
        return lines

    def packed(self) -> bytes:
        """The JSON packed into the int8 model, which the edge runtime reads."""
        data = {
            "version": PACKED_VERSION,
            "overall": self.overall.score,
            "labels": {label: point.score for label, point in self.labels.items()},
        }
        return json.dumps(data, indent=1).encode()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Thresholds | None:
        if not data:
            return None
        test = data.get("test")
        return cls(
            overall=OperatingPoint(**data["overall"]),
            labels={k: OperatingPoint(**v) for k, v in data.get("labels", {}).items()},
            chosen_on=data.get("chosen_on", ""),
            images=int(data.get("images", 0)),
            test={k: OperatingPoint(**v) for k, v in test.items()} if test else None,
            test_images=int(data.get("test_images", 0)),
            confusion=dict(data.get("confusion") or {}),
        )
