"""Early stopping counts evaluations without a gain in validation fitness."""

from __future__ import annotations

import pytest

from trainer.pacing import EarlyStopping


@pytest.mark.parametrize(
    ("patience", "maps", "stops_at"),
    [
        (None, [0.5, 0.4, 0.3, 0.2], None),  # off by default under a step budget
        (2, [0.1, 0.3, 0.2, 0.25, 0.4], 3),  # two evaluations without gain after 0.3
        (1, [0.1, 0.2, 0.3, 0.3], 3),  # equal is not a gain
        (3, [0.5, 0.4, 0.6, 0.5, 0.55, 0.58], 5),
    ],
)
def test_stops_after_patience_evaluations_without_gain(patience, maps, stops_at) -> None:
    early = EarlyStopping(patience)
    decisions = [early.update(m) for m in maps]
    assert (decisions.index(True) if True in decisions else None) == stops_at


def test_resumed_run_remembers_the_best_map() -> None:
    early = EarlyStopping(1, best=0.6)
    assert early.update(0.5) is True
