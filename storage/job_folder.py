"""The files of a job's work folder that people read; the training process writes them.

    <workdir>/job.log                     what the training process printed: its log lines, Python and
                                          TensorFlow warnings, and the traceback when it crashed
    <workdir>/samples/step-0000200.jpg    predictions next to the ground truth on a few fixed validation
                                          images, one picture per checkpoint (the job page's slider)

Checkpoints are storage/checkpoints.py's. The job page and `fieldlens train logs` read these through
`JobFolder`, never by file name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

LOG = "job.log"
SAMPLES = "samples"
_SAMPLE = re.compile(r"^step-(\d{7})\.jpg$")
# Lines worth reading first: log records at WARNING and above, TensorFlow's C++ warnings and errors
# ("W0000 00:00:..."), Python warnings ("UserWarning: ...") and the start of a traceback.
_WARNING = re.compile(
    r" (WARNING|ERROR|CRITICAL) |^[WEF]\d{4} |\w+Warning: |^Traceback |^\w+(Error|Exception): "
)
LOG_TAIL_BYTES = 256_000


@dataclass(frozen=True)
class JobLog:
    """A job's log: every line (or the last `LOG_TAIL_BYTES` of them), and the warnings among them."""

    lines: list[str]
    warnings: list[str]  # each once, in order, with "(3 times)" when it was repeated
    truncated: bool  # the file was longer; only its end was read

    @property
    def empty(self) -> bool:
        return not self.lines


def warnings_in(lines: list[str]) -> list[str]:
    """The warning lines and tracebacks of a log, each distinct one once (first seen first)."""
    found: dict[str, int] = {}
    block: list[str] | None = None
    for line in lines:
        if block is not None:  # a traceback runs until its first line that is not indented
            block.append(line)
            if line and not line.startswith((" ", "\t")):
                found["\n".join(block)] = found.get("\n".join(block), 0) + 1
                block = None
            continue
        if line.startswith("Traceback "):
            block = [line]
        elif _WARNING.search(line):
            key = _without_time(line)
            found[key] = found.get(key, 0) + 1
    if block is not None:
        found["\n".join(block)] = 1
    return [text if n == 1 else f"{text} ({n} times)" for text, n in found.items()]


def _without_time(line: str) -> str:
    """The same warning at another moment is the same warning: drop a leading date and time."""
    return re.sub(r"^\d{4}-\d\d-\d\d[ T][\d:,.]+ ", "", line)


class JobFolder:
    """Paths of a job's log and checkpoint pictures (the folder is the job's `checkpoint_dir`)."""

    def __init__(self, workdir: str | Path) -> None:
        self.path = Path(workdir)

    @property
    def log(self) -> Path:
        return self.path / LOG

    @property
    def samples(self) -> Path:
        return self.path / SAMPLES

    def sample(self, step: int) -> Path:
        """The predictions picture of the checkpoint at `step`."""
        return self.samples / f"step-{step:07d}.jpg"

    def sample_steps(self) -> list[int]:
        """Steps that have a predictions picture, in order."""
        if not self.samples.is_dir():
            return []
        found = (_SAMPLE.match(p.name) for p in self.samples.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def read_log(self, tail_bytes: int | None = LOG_TAIL_BYTES) -> JobLog:
        """The log (its last `tail_bytes`, from a whole line on); empty when the job never started."""
        try:
            size = self.log.stat().st_size
        except FileNotFoundError:
            return JobLog([], [], False)
        with open(self.log, "rb") as f:
            truncated = tail_bytes is not None and size > tail_bytes
            if truncated:
                f.seek(size - tail_bytes)  # type: ignore[operator]
                f.readline()  # the rest of a cut line
            text = f.read().decode("utf-8", errors="replace")
        lines = text.splitlines()
        return JobLog(lines, warnings_in(lines), truncated)
