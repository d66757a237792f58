"""The terminal side of the conversation: logging through rich, one progress bar per training run.

Log lines print above the bar, never through it. Commands a person watches (`demo`, `train run`,
`train wait`) call `quiet()`: then only warnings from FieldLens reach the terminal, and library
chatter (TensorFlow's C++ log, absl, the TFLite converter, Python warnings) none at all, unless
`fieldlens --verbose` asked for everything.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from storage.wording import duration

console = Console(stderr=True)
_handler: logging.Handler | None = None
# Loggers of libraries that talk a lot at INFO and WARNING while training and exporting.
CHATTY = ("absl", "tensorflow", "h5py", "matplotlib", "PIL", "py.warnings", "apscheduler")


class _LineHandler(logging.Handler):
    """One plain line per record, on the console's stream (which `quiet` may move)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            console.file.write(self.format(record) + "\n")
            console.file.flush()
        except Exception:
            self.handleError(record)


def setup_logging(level: str) -> None:
    """One handler on stderr for the whole process (called once per entry point).

    A terminal gets rich's handler; a file or a service manager's journal gets one plain, unwrapped
    line per record, which grep can find.
    """
    global _handler
    if console.is_terminal:
        _handler = RichHandler(console=console, show_path=False, rich_tracebacks=False, markup=False)
    else:
        _handler = _LineHandler()
        _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=[_handler], force=True)
    logging.captureWarnings(True)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def quiet(verbose: bool, chatter_log: Path | None = None) -> Callable[[], None]:
    """For commands a person watches: FieldLens warnings only and no library chatter, unless verbose.

    With `chatter_log`, whatever writes to the process's stderr file directly
    (TensorFlow's and LiteRT's C++ logs, the TFLite converter's "fully_quantize: 0, ..." lines, and
    every job process a worker starts from here, which inherit it) goes to that file; Python's own
    stderr, this module's console and click's messages keep the terminal. Returns what undoes that.
    """
    if verbose:
        return lambda: None
    if _handler is not None:
        _handler.setLevel(logging.WARNING)
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.ERROR)
    # Read by TensorFlow when it loads, here and in the job processes a worker starts from here.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Only the process's own stderr: not one a test runner or click's CliRunner put in its place.
    if chatter_log is not None and sys.stderr is sys.__stderr__:
        return _divert_stderr(chatter_log)
    return lambda: None


def _divert_stderr(path: Path) -> Callable[[], None]:
    """Point file descriptor 2 at `path`, keeping a copy of the terminal for Python's sys.stderr."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    terminal = os.fdopen(os.dup(2), "w", buffering=1, encoding=sys.stderr.encoding, errors="replace")
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 2)
    os.close(log)
    saved = sys.stderr
    sys.stderr = terminal
    console.file = terminal

    def restore() -> None:
        terminal.flush()
        os.dup2(terminal.fileno(), 2)
        sys.stderr = saved
        console.file = saved
        terminal.close()

    console.print(
        f"TensorFlow's own messages go to {path} (`fieldlens --verbose` shows them here).",
        style="dim",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    return restore


class StepBar:
    """One progress bar of training steps with images/s, loss and ETA; notes print above it."""

    def __init__(self, enabled: bool = True, title: str = "Training") -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("steps · {task.fields[speed]} · loss {task.fields[loss]} · ETA {task.fields[eta]}"),
            TimeElapsedColumn(),
            console=console,
            disable=not enabled,
            transient=False,
        )
        self.task = self.progress.add_task(title, total=None, speed="-- img/s", loss="--", eta="--")

    def __enter__(self) -> StepBar:
        self.progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.progress.stop()

    def step(
        self, done: int, total: int, images_per_second: float, loss: float, eta_seconds: Any = None
    ) -> None:
        self.progress.update(
            self.task,
            completed=done,
            total=total,
            speed=f"{images_per_second:.1f} img/s",
            loss=f"{loss:.3f}",
            eta=duration(eta_seconds),
        )

    def state(self, text: str) -> None:
        """What the job is doing now (QUEUED, PREPARING, ...), shown as the bar's title."""
        self.progress.update(self.task, description=text)

    def note(self, text: str) -> None:
        """A line above the bar (a checkpoint's mAP, a state change)."""
        if not self.progress.disable:
            self.progress.console.print(text, markup=False, highlight=False, soft_wrap=True)


def _as_dict(event: Any) -> dict[str, Any]:
    """Trainer events as dicts (what the job's progress records store)."""
    if isinstance(event, dict):
        return event
    from trainer.events import to_json

    return to_json(event)


class TrainingBar:
    """The trainer's `on_event` for a run in this process: steps on the bar, checkpoints above it."""

    def __init__(self, bar: StepBar) -> None:
        self.bar = bar

    def __call__(self, event: Any) -> None:
        e = _as_dict(event)
        if e["kind"] == "started":
            self.bar.state(f"Training on {e.get('device', 'CPU')}")
        elif e["kind"] == "step":
            self.bar.step(e["step"], e["steps"], e["images_per_second"], e["loss"]["total"], e["eta_seconds"])
        elif e["kind"] == "checkpoint" and "map50" in e["metrics"]:
            m = e["metrics"]
            self.bar.note(
                f"checkpoint at step {e['step']}: val mAP@0.5 {m['map50']:.3f}, "
                f"mAP@0.5:0.95 {m.get('map50_95', 0):.3f}"
            )
