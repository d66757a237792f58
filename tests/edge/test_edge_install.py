"""`pip install 'fieldlens[edge]'` alone, in a fresh virtual environment, runs a model:
TensorFlow and discord.py are not needed on the robot."""

from __future__ import annotations

import json
import subprocess
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_edge_extra_alone_runs_the_model(int8_model, frames_dir, tmp_path) -> None:
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    bin_dir = env / "bin"
    install = subprocess.run(
        [str(bin_dir / "pip"), "install", "-q", f"{ROOT}[edge]"], capture_output=True, text=True, timeout=900
    )
    assert install.returncode == 0, install.stderr[-3000:]
    listed = subprocess.run(
        [str(bin_dir / "pip"), "list", "--format=json"], capture_output=True, text=True, check=True
    )
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert not names & {"tensorflow", "tensorflow-cpu", "keras", "discord.py", "sqlite-utils"}, names
    image = sorted(frames_dir.glob("*.jpg"))[0]
    run = subprocess.run(
        [
            str(bin_dir / "fieldlens-edge"),
            "run",
            "--model",
            str(int8_model),
            "--source",
            str(image),
            "--json",
            "--threshold",
            "0.3",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    record = json.loads(run.stdout.strip().splitlines()[-1])
    assert record["detections"], record
