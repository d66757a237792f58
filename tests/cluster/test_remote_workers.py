"""Remote workers end to end: a real redis-server, real `fieldlens control` and `fieldlens worker
--broker` processes (each worker with its own data folder: they share nothing but Redis and the blob
store), real tiny training, and the bot machine's SQLite as the only record.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from storage.domain import Job, JobState
from storage.model_folder import ModelFolder
from storage.services import Services, open_services
from storage.settings import Settings
from storage.voc.synth import make_voc_zip
from testkit.tiny import TINY_JOB
from tests.cluster.servers import Process, redis_server
from tests.trainer.test_worker import balanced, states, wait_for

pytestmark = pytest.mark.slow

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

    def started_steps(self, job_id: int) -> list[int]:
        """The step each attempt's training started at."""
        return [e.data["step"] for e in self.services.jobs.events(job_id, kinds=("log",)) if "step" in e.data]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """The bot machine (its SQLite, `fieldlens control`), a redis-server and a file:// blob store.

    The s3:// store is exercised by the store tests (tests/cluster/test_store.py) and by the bot's
    end-to-end training test through the broker (tests/bot/test_training_e2e.py).
    """
    from contextlib import ExitStack

    with ExitStack() as stack:
        broker = stack.enter_context(redis_server(tmp_path / "redis"))
        store_env = {"FIELDLENS_STORE": (tmp_path / "shared-store").as_uri()}
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


def test_jobs_run_on_remote_workers_through_stop_kill_and_freeze(cluster: Cluster) -> None:
    c = cluster
    w1, w2 = c.start_worker(), c.start_worker()
    a, b, third = c.queue(300), c.queue(60), c.queue(20)

    # Two workers, three jobs: one each, the third waits in the queue.
    a = c.wait_state(a.id, {JobState.RUNNING})
    b = c.wait_state(b.id, {JobState.RUNNING})
    assert {a.worker_id, b.worker_id} == {c.name_of(w) for w in (w1, w2)}
    assert c.job(third.id).state == JobState.QUEUED

    # SIGKILL of the worker running b (its training process dies with it): after the timeout
    # another worker resumes b from the checkpoint it uploaded.
    reached = c.wait_checkpoint(b.id)
    killed = c.worker_of(c.job(b.id))
    killed.proc.send_signal(signal.SIGKILL)
    c.start_worker()

    # A stop ends a job STOPPED with a model, delivered to the bot machine's data folder.
    c.wait_checkpoint(a.id)
    c.services.jobs.request_stop("local", a.id)

    # The waiting job goes to the first free worker; stopped there before its first checkpoint, it
    # ends CANCELED (and frees the worker for b's hand-over below).
    c.wait_state(third.id, {JobState.PREPARING, JobState.RUNNING})
    c.services.jobs.request_stop("local", third.id)

    wait_for(
        lambda: c.job(b.id).attempts == 2 and c.job(b.id).state == JobState.RUNNING, 240, "b to run again"
    )
    assert c.worker_of(c.job(b.id)) is not killed
    wait_for(lambda: len(c.started_steps(b.id)) == 2, 60, "b's second start")
    assert c.started_steps(b.id)[1] >= reached > 0  # resumed, not restarted from step 0

    # SIGSTOP of the worker running b: b is handed to another worker; after SIGCONT the frozen
    # worker's late reports are dropped and it stops training b.
    reached = c.wait_checkpoint(b.id, after_step=reached)
    frozen = c.worker_of(c.job(b.id))
    frozen.signal_group(signal.SIGSTOP)
    wait_for(lambda: c.job(b.id).attempts == 3, 120, "b to be handed to another worker")
    frozen.signal_group(signal.SIGCONT)
    wait_for(lambda: "which no longer owns it" in c.control.text(), 60, "the frozen worker's reports dropped")

    a = c.wait_state(a.id, {JobState.STOPPED, JobState.FAILED})
    assert a.state == JobState.STOPPED, a.error
    assert a.model_id is not None
    model = c.services.models.get("local", a.model_id)
    assert ModelFolder(model.path).int8_model.is_file() and model.path.startswith(str(c.root / "bot"))

    b = c.wait_state(b.id, {JobState.SUCCEEDED, JobState.FAILED}, timeout=300)
    assert b.state == JobState.SUCCEEDED, b.error
    assert c.worker_of(b) is not frozen
    assert c.started_steps(b.id)[-1] >= reached
    assert states(c.services, b.id).count(JobState.SUCCEEDED) == 1
    assert (
        b.model_id is not None
        and ModelFolder(c.services.models.get("local", b.model_id).path).int8_model.is_file()
    )
    third_job = c.job(third.id)
    assert third_job.state == JobState.CANCELED and third_job.attempts == 1, third_job.error

    # `worker list` shows the living workers idle; drained, they take no new job.
    alive = [w for w in c.workers if w is not killed]
    listed = {w["name"]: w for w in json.loads(c.cli("worker", "list", "--json")) if w["alive"]}
    assert set(listed) == {c.name_of(w) for w in alive}
    assert all(w["job"] is None and not w["draining"] for w in listed.values())
    for w in alive:
        c.cli("worker", "drain", c.name_of(w))
    assert all(w["draining"] for w in json.loads(c.cli("worker", "list", "--json")) if w["alive"])
    waiting = c.queue(20)
    time.sleep(4)
    assert c.job(waiting.id).state == JobState.QUEUED
    c.services.jobs.request_stop("local", waiting.id)
    assert balanced(c.services)
