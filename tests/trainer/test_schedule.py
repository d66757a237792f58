"""The learning-rate schedule follows steps and time, whichever is further along."""

from __future__ import annotations

import pytest

from trainer.pacing import Schedule


def test_warm_up_then_cosine_to_zero_by_steps() -> None:
    s = Schedule(peak=0.01, steps=1000, warmup_steps=100)
    assert s(0) == 0.0
    assert s(50) == pytest.approx(0.005)
    assert s(100) == pytest.approx(0.01)
    assert s(550) == pytest.approx(0.005)
    assert s(1000) == pytest.approx(0.0, abs=1e-12)


def test_a_time_limited_job_decays_with_the_clock_and_ends_annealed() -> None:
    """5,000 steps in 20 minutes: it stops near step 280, so the rate must be near zero by then."""
    s = Schedule(peak=0.01, steps=5000, warmup_steps=100, max_seconds=1200)
    assert s.progress(280, 1190) == pytest.approx(1190 / 1200)
    assert s(140, 600) == pytest.approx(s(2500))  # half the time is half the run
    assert s(280, 1200) == pytest.approx(0.0, abs=1e-12)
    assert s(280, 1190) < 0.0001 * 1.5
    assert Schedule(0.01, 5000, 100)(280) > 0.0099  # the old, step-only schedule: still at the peak


def test_steps_still_end_the_run_when_they_come_first() -> None:
    s = Schedule(peak=0.01, steps=100, warmup_steps=10, max_seconds=3600)
    assert s.progress(50, 60) == pytest.approx(0.5)
    assert s(100, 120) == pytest.approx(0.0, abs=1e-12)
