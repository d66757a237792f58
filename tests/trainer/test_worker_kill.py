"""A worker killed with SIGKILL mid-run: another worker resumes its job from the last checkpoint.

Runs `fieldlens worker` as separate processes (its own module so that pytest-xdist can run it beside
test_worker.py, the longest module).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage.domain import JobState
from storage.services import open_services
from storage.settings import Settings
from storage.voc.synth import make_voc_zip
from testkit.tiny import TINY_JOB
from tests.trainer.jobwait import balanced, wait_final, wait_for

pytestmark = pytest.mark.slow


def _worker(home: Path, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "FIELDLENS_HOME": str(home),
        "FIELDLENS_HEARTBEAT_SECONDS": "0.5",
        "FIELDLENS_WORKER_TIMEOUT_SECONDS": "4",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "fieldlens", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "ab"),
    )


def test_a_worker_killed_mid_run_loses_at_most_one_checkpoint_interval(tmp_path: Path) -> None:
    home = tmp_path / "home"
    s = open_services(Settings(home=home))
    s.datasets.add("local", "shapes", make_voc_zip(images=40, seed=21))
    job = s.jobs.create("local", ["shapes"], steps=40, batch_size=16, max_minutes=5, config=TINY_JOB)
    log = tmp_path / "workers.log"
    first = _worker(home, log)
    try:
        wait_for(lambda: s.jobs.events(job.id, kinds=("checkpoint",)), 180, "the first checkpoint")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        time.sleep(1)  # the training child dies with its worker (PR_SET_PDEATHSIG): no events after this
        last = s.jobs.events(job.id)[-1].id
        time.sleep(2)
        assert s.jobs.events(job.id, after=last) == []
        assert s.jobs.get("local", job.id).state == JobState.RUNNING  # nobody has noticed yet
    finally:
        first.kill()
    second = _worker(home, log)
    try:
        final = wait_final(s, job.id)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(60)
    assert final.state == JobState.SUCCEEDED, f"{final.error}\n{log.read_text()[-5000:]}"
    assert final.steps_completed == 40 and final.attempts == 2
    requeued = [e for e in s.jobs.events(job.id, kinds=("state",)) if e.state == JobState.QUEUED][-1]
    assert "resumes from its checkpoint at step" in requeued.data["reason"]  # type: ignore[operator]
    restarts = [e.data["step"] for e in s.jobs.events(job.id, kinds=("log",))]
    assert restarts[0] == 0 and restarts[1] >= 20  # the second run resumed from the checkpoint
    assert balanced(s)
    s.close()
