"""The plain-language reading of training curves, and the plots rendered from run files."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from trainer.report import diagnose, plot_curves, read_jsonl


def _losses(values):
    return [{"step": (i + 1) * 10, "total": v} for i, v in enumerate(values)]


def _evals(maps, val_losses=None):
    val_losses = val_losses or [1.0] * len(maps)
    return [
        {"step": (i + 1) * 100, "map50": m, "map50_95": m / 2, "val_loss": v}
        for i, (m, v) in enumerate(zip(maps, val_losses, strict=True))
    ]


@pytest.mark.parametrize(
    ("losses", "evals", "expected"),
    [
        (_losses([5, 5.1, 4.9, 5, 5, 4.95, 5, 5]), _evals([0.01, 0.01]), "Not learning"),
        (_losses([5, 3, 2, 1, 1.5, 3, 6, 9]), _evals([0.2, 0.1]), "Diverging"),
        (_losses([5, 4, 3, 2, 1.5, 1, 0.7, 0.5]), _evals([0.3, 0.4, 0.35], [1.0, 0.8, 1.2]), "Overfitting"),
        (
            _losses([5, 4, 3, 2, 1.5, 1, 0.7, 0.5]),
            _evals([0.3, 0.5, 0.6], [1.0, 0.8, 0.7]),
            "Still improving",
        ),
        (_losses([5, 4, 3, 2, 1.5, 1, 0.9, 0.9]), _evals([0.6, 0.61, 0.61], [1.0, 0.8, 0.8]), "Levelled off"),
    ],
    ids=["flat", "diverging", "overfitting", "improving", "plateau"],
)
def test_curves_are_read_in_plain_language(losses, evals, expected) -> None:
    advice = diagnose(losses, evals)
    assert any(a.startswith(expected) for a in advice), advice


def test_too_little_history_says_nothing() -> None:
    assert diagnose(_losses([3]), _evals([0.1])) == []


def test_plot_is_a_png_and_cut_lines_are_skipped(tmp_path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 100, "map50": 0.5, "map50_95": 0.2, "val_loss": 1.0}\n{"step": 200, "map')
    evals = read_jsonl(path)
    assert len(evals) == 1
    png = plot_curves(_losses([3, 2, 1]), evals)
    assert Image.open(io.BytesIO(png)).size == (1000, 380)


def test_a_noisy_loss_is_not_called_diverging_while_map_still_climbs() -> None:
    """The demo's case: one lucky low batch early, the loss wandering above it, mAP rising to the end."""
    losses = _losses([5, 2, 0.4, 1.2, 1.1, 1.3, 1.0, 1.2, 1.1, 1.0])
    advice = diagnose(losses, _evals([0.2, 0.5, 0.8]))
    assert not any(a.startswith(("Diverging", "Not learning")) for a in advice), advice
    assert any(a.startswith("Still improving") for a in advice), advice


def test_a_loss_that_goes_back_up_while_map_falls_is_diverging() -> None:
    advice = diagnose(_losses([5, 3, 2, 1, 1, 2, 3, 4, 6, 8]), _evals([0.2, 0.5, 0.3]))
    assert [a.split(":")[0] for a in advice] == ["Diverging"]


def test_a_nan_loss_is_diverging_whatever_map_says() -> None:
    advice = diagnose(_losses([5, 3, 2, 1, 1, float("nan")]), _evals([0.2, 0.5]))
    assert any(a.startswith("Diverging: the training loss became infinite") for a in advice), advice


def test_a_nan_earlier_in_the_run_is_still_diverging() -> None:
    advice = diagnose(_losses([5, float("nan"), 2, 1, 1, 1, 1, 1, 1, 1]), _evals([0.2, 0.5]))
    assert any(a.startswith("Diverging: the training loss became infinite") for a in advice), advice
