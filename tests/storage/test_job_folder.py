"""A job's log file: warnings found among its lines, read from its end when it is long."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.job_folder import JobFolder, warnings_in


@pytest.mark.parametrize(
    ("line", "warning"),
    [
        ("2026-01-01 10:00:00,000 WARNING job-3 trainer.data: 2 images could not be decoded", True),
        ("2026-01-01 10:00:00,000 ERROR job-3 trainer: out of memory", True),
        ("W0000 00:00:1795385070.875998    7677 cuda_executor.cc:1] no GPU", True),
        ("/usr/lib/python3/keras.py:12: UserWarning: the layer was built twice", True),
        ("2026-01-01 10:00:00,000 INFO job-3 trainer: training on CPU", False),
        ("I0000 00:00:1795385070.875998    7677 port.cc:153] oneDNN custom operations are on.", False),
        ("step 10 loss 0.3 (WARNINGS are in the log above)", False),
    ],
)
def test_warning_lines_are_told_from_the_rest(line: str, warning: bool) -> None:
    assert bool(warnings_in([line])) is warning


def test_a_traceback_is_one_warning_and_repeats_are_counted() -> None:
    lines = [
        "2026-01-01 10:00:00,000 WARNING job-3 x: slow disk",
        "2026-01-01 10:05:00,000 WARNING job-3 x: slow disk",
        "Traceback (most recent call last):",
        '  File "trainer/train.py", line 3, in run',
        "    raise FloatingPointError('diverged')",
        "FloatingPointError: diverged",
        "after the crash",
    ]
    assert warnings_in(lines) == [
        "WARNING job-3 x: slow disk (2 times)",
        "\n".join(lines[2:6]),
    ]


def test_a_long_log_is_read_from_its_end_on_a_whole_line(tmp_path: Path) -> None:
    folder = JobFolder(tmp_path)
    folder.log.write_text("".join(f"line {i}\n" for i in range(10_000)))
    log = folder.read_log(tail_bytes=1000)
    assert log.truncated and log.lines[-1] == "line 9999" and log.lines[0].startswith("line ")
    assert len(log.lines) < 120 and folder.read_log(None).lines[0] == "line 0"


def test_no_log_and_pictures_by_step(tmp_path: Path) -> None:
    folder = JobFolder(tmp_path / "job")
    assert folder.read_log().empty and folder.sample_steps() == []
    folder.samples.mkdir(parents=True)
    for step in (200, 20, 100):
        folder.sample(step).write_bytes(b"jpeg")
    (folder.samples / "step-0000300.jpg.tmp").write_bytes(b"half")
    assert folder.sample_steps() == [20, 100, 200]
