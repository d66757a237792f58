"""A training run's checkpoints, in one place: the trainer writes them, recovery and cleanup read them.

    <workdir>/checkpoints/
        step-0000200/   weights and config (named as in a model folder), optimizer.npz, state.json,
                        and training.weights.h5 when the weights are a moving average (the raw
                        weights that training resumes from)
        best/           a copy of the step folder with the best validation fitness
        latest.json     {"path": "step-0000200", "step": 200}: the newest complete checkpoint

A step folder is written under a temporary name and renamed when complete, then `latest.json` is
replaced atomically, so a reader never sees half a checkpoint. The weights and config files have
the names they have in a model folder (storage/model_folder.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from storage.blobs import atomic_write
from storage.model_folder import CONFIG, WEIGHTS

__all__ = ["CONFIG", "OPTIMIZER", "STATE", "TRAINING_WEIGHTS", "WEIGHTS", "Checkpoints"]

OPTIMIZER = "optimizer.npz"
TRAINING_WEIGHTS = "training.weights.h5"
STATE = "state.json"
_LATEST = "latest.json"
_BEST = "best"


class Checkpoints:
    """The checkpoints folder of one training run (`workdir`)."""

    def __init__(self, workdir: str | Path) -> None:
        self.folder = Path(workdir) / "checkpoints"

    @property
    def best(self) -> Path:
        return self.folder / _BEST

    def step_folder(self, step: int) -> Path:
        return self.folder / f"step-{step:07d}"

    def staging(self, step: int) -> Path:
        """An empty folder to write a checkpoint into before `commit` renames it."""
        tmp = self.step_folder(step).with_name(self.step_folder(step).name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        return tmp

    def commit(self, staging: Path, step: int) -> Path:
        """Rename a written checkpoint into place and point `latest.json` at it."""
        final = self.step_folder(step)
        shutil.rmtree(final, ignore_errors=True)
        staging.rename(final)
        atomic_write(self.folder / _LATEST, json.dumps({"path": final.name, "step": step}).encode())
        return final

    def _pointer(self) -> dict | None:
        try:
            return json.loads((self.folder / _LATEST).read_text())
        except (OSError, ValueError):
            return None

    def latest(self) -> Path | None:
        """The newest complete checkpoint, or None."""
        pointer = self._pointer()
        if pointer is None:
            return None
        path = self.folder / pointer["path"]
        return path if path.exists() else None

    def latest_step(self) -> int | None:
        """The step of the newest complete checkpoint, or None."""
        pointer = self._pointer()
        if pointer is None or not (self.folder / pointer["path"]).exists():
            return None
        return int(pointer["step"])

    def keep_best(self, checkpoint: Path) -> None:
        """Make `checkpoint` the best one (a copy, so pruning step folders keeps it)."""
        shutil.rmtree(self.best, ignore_errors=True)
        shutil.copytree(checkpoint, self.best)

    def prune(self) -> int:
        """Delete every folder but the latest and the best checkpoints; returns how many went."""
        latest = self.latest()
        if latest is None:
            return 0
        removed = 0
        for path in self.folder.iterdir():
            if path.is_dir() and path.name not in (latest.name, _BEST):
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
        return removed


def latest_step(workdir: str | None) -> int | None:
    """The step of a job's newest checkpoint (None: no folder or no checkpoint yet)."""
    return Checkpoints(workdir).latest_step() if workdir else None
