"""A cluster for the remote-worker tests: the bot machine's SQLite and `fieldlens control`, a real
redis-server, a blob store, and `fieldlens worker --broker` processes started on demand (each with its
own data folder: they share nothing but Redis and the blob store).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from storage.domain import Job, JobState
from storage.services import Services, open_services
from storage.settings import Settings
from storage.voc.synth import make_voc_zip
from testkit.tiny import TINY_JOB
from tests.cluster.servers import Process, redis_server
from tests.trainer.jobwait import wait_for

TIMEOUT = 6.0  # FIELDLENS_WORKER_TIMEOUT_SECONDS: silence after which a worker's job is handed on


@dataclass
class Cluster:
    root: Path
    env: dict[str, str]
    services: Services
    control: Process
    workers: list[Process] = field(default_factory=list)

    def start_worker(self) -> Process:
        n = len(self.workers)
        env = {**self.env, "FIELDLENS_HOME": str(self.root / f"worker{n}")}
        worker = Process(
            ["worker", "--broker", self.env["FIELDLENS_BROKER_URL"]], env, self.root / f"w{n}.log"
        )
        self.workers.append(worker)
        return worker

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "fieldlens", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    @staticmethod
    def name_of(worker: Process) -> str:
        return f"fieldlens-cpu-{worker.pid}@{os.uname().nodename}"

    def worker_of(self, job: Job) -> Process:
        assert job.worker_id is not None
        pid = int(job.worker_id.split("@")[0].rsplit("-", 1)[1])
        return next(w for w in self.workers if w.pid == pid)

    def job(self, job_id: int) -> Job:
        return self.services.jobs.get("local", job_id)

    def queue(self, steps: int) -> Job:
        return self.services.jobs.create(
            "local", ["shapes"], steps=steps, batch_size=16, max_minutes=5, config=TINY_JOB
        )

    def wait_state(self, job_id: int, wanted: set[JobState], timeout: float = 240) -> Job:
        wait_for(lambda: self.job(job_id).state in wanted, timeout, f"job {job_id} to be {wanted}")
        return self.job(job_id)

    def wait_checkpoint(self, job_id: int, after_step: int = 0, timeout: float = 240) -> int:
        def step() -> int | None:
            found = self.services.jobs.last_checkpoint_step(job_id)
            return found if found and found > after_step else None

        return int(wait_for(step, timeout, f"a checkpoint of job {job_id} past step {after_step}"))  # type: ignore[arg-type]

    def freeze_until_handed_on(self, job_id: int, attempts: int) -> Process:
        """SIGSTOP the worker running the job until another worker runs it at `attempts`, then SIGCONT:
        the frozen worker's late reports are dropped. Returns the frozen worker."""
        frozen = self.worker_of(self.job(job_id))
        frozen.signal_group(signal.SIGSTOP)
        wait_for(lambda: self.job(job_id).attempts == attempts, 120, f"job {job_id} to go to another worker")
        frozen.signal_group(signal.SIGCONT)
        wait_for(
            lambda: "which no longer owns it" in self.control.text(),
            60,
            "the frozen worker's reports dropped",
        )
        return frozen

    def started_steps(self, job_id: int) -> list[int]:
        """The step each attempt's training started at."""
        return [e.data["step"] for e in self.services.jobs.events(job_id, kinds=("log",)) if "step" in e.data]


@contextmanager
def cluster_rig(tmp_path: Path, store_env: dict[str, str]) -> Iterator[Cluster]:
    """The bot machine (its SQLite, `fieldlens control`), a redis-server and the blob store."""
    with ExitStack() as stack:
        broker = stack.enter_context(redis_server(tmp_path / "redis"))
        home = tmp_path / "bot"
        env = {
            **os.environ,
            **store_env,
            "FIELDLENS_HOME": str(home),
            "FIELDLENS_BROKER_URL": broker,
            "FIELDLENS_HEARTBEAT_SECONDS": "0.5",
            "FIELDLENS_WORKER_TIMEOUT_SECONDS": str(TIMEOUT),
            "FIELDLENS_MAX_JOB_ATTEMPTS": "5",
        }
        settings = Settings(
            home=home, broker_url=broker, heartbeat_seconds=0.5, worker_timeout_seconds=TIMEOUT
        )
        services = open_services(settings)
        stack.callback(services.close)
        services.datasets.add("local", "shapes", make_voc_zip(images=40, seed=21))
        control = Process(["control"], env, tmp_path / "control.log")
        c = Cluster(tmp_path, env, services, control)
        try:
            yield c
        finally:
            for w in c.workers:
                w.stop()
            control.stop()
            for proc in (control, *c.workers):
                print(f"--- {proc.log.name} ---\n{proc.text()[-4000:]}")
