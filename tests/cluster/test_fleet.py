"""`fieldlens worker --broker URL --gpus 0,1`: one Celery worker process per GPU, each seeing only its
GPU, all visible in `fieldlens worker list` (no training: this machine has no GPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cluster.servers import Process, redis_server


def children_of(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def gpu_of(pid: int) -> str:
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return next((v.split(b"=", 1)[1].decode() for v in environ if v.startswith(b"CUDA_VISIBLE_DEVICES=")), "")


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_one_worker_process_per_gpu_each_pinned_to_its_gpu(tmp_path: Path) -> None:
    with redis_server(tmp_path / "redis") as broker:
        env = {
            **os.environ,
            "FIELDLENS_HOME": str(tmp_path / "bot"),
            "FIELDLENS_BROKER_URL": broker,
            "FIELDLENS_STORE": (tmp_path / "store").as_uri(),
            "FIELDLENS_HEARTBEAT_SECONDS": "0.5",
        }
        control = Process(["control"], env, tmp_path / "control.log")
        launcher = Process(
            ["worker", "--broker", broker, "--gpus", "0,1"],
            {**env, "FIELDLENS_HOME": str(tmp_path / "gpu-box")},
            tmp_path / "worker.log",
        )
        try:
            deadline = time.monotonic() + 60
            listed: list[dict] = []
            while time.monotonic() < deadline and len(listed) < 2:
                done = subprocess.run(
                    [sys.executable, "-m", "fieldlens", "worker", "list", "--json"],
                    env=env, capture_output=True, text=True, timeout=60, check=True,
                )  # fmt: skip
                listed = json.loads(done.stdout)
                time.sleep(0.5)
            assert sorted(w["gpu"] for w in listed) == ["0", "1"], launcher.text()[-3000:]
            assert all(w["alive"] and w["job"] is None for w in listed)
            children = children_of(launcher.pid)
            assert sorted(gpu_of(c) for c in children) == ["0", "1"]  # each process sees its GPU only
            assert {f"fieldlens-gpu{gpu_of(c)}-{c}" for c in children} == {
                w["name"].split("@")[0] for w in listed
            }
            launcher.proc.send_signal(signal.SIGTERM)  # forwarded to each GPU's process
            assert launcher.proc.wait(60) == 0
            assert not any(alive(c) for c in children)
        finally:
            launcher.stop()
            control.stop()


pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc through psutil")
