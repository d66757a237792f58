"""`fieldlens worker --broker URL [--gpus 0,1]`: stateless training machines, and how to watch them.

    launch        one Celery worker process per GPU (CUDA_VISIBLE_DEVICES set before TensorFlow
                  loads; one task at a time, none reserved ahead), or one on the CPU
    run_worker    one such process: the train task, and the worker's heartbeat on its timer; on
                  Ctrl-C or SIGTERM it gives its job back and ends it (hand_back_on_shutdown)
    list_workers  what `fieldlens worker list` shows: each worker, its GPU, its job, its last beat
    drain         `fieldlens worker drain NAME`: it finishes its job and takes no new one

A worker reads its settings from its own environment (FIELDLENS_HOME is its cache; it never opens a
database) and shares nothing with the bot's machine but the broker and FIELDLENS_STORE.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from celery import Celery, Task

from cluster.app import (
    DRAINING_KEY,
    HEARTBEAT,
    RELEASE,
    TRAIN,
    TRAIN_QUEUE,
    WORKERS_KEY,
    NoAnswer,
    make_app,
    redis_client,
)
from cluster.remote import CLAIM_TIMEOUT_SECONDS, RemoteLink, claim
from cluster.store import open_store
from storage.settings import Settings

log = logging.getLogger(__name__)
FORGET_WORKERS_AFTER_SECONDS = 24 * 3600


def worker_name(gpu: str | None) -> str:
    """Unique per process: a restarted worker is a new worker (its old reports are fenced off)."""
    return f"fieldlens-{'gpu' + gpu if gpu is not None else 'cpu'}-{os.getpid()}@{socket.gethostname()}"


def run_train_task(
    task: Task, app: Celery, settings: Settings, payload: dict[str, Any], gpu: str | None
) -> str:
    """The body of the train task, in a fresh pool process of the worker."""
    from trainer.job_log import capture_output
    from trainer.job_runner import prepare_process, run_linked

    worker_id = task.request.hostname
    job_id = payload["job_id"]
    assert settings.broker_url
    try:
        claimed = claim(
            app,
            redis_client(settings.broker_url, socket_timeout=CLAIM_TIMEOUT_SECONDS + 10),
            job_id,
            worker_id,
        )
    except NoAnswer as e:  # the bot's machine does not answer: ask again later
        raise task.retry(countdown=5, max_retries=None) from e
    if claimed is None:
        return f"job {job_id} was not for this worker"
    parent = os.getppid()  # the Celery worker: this process dies with it
    prepare_process(settings, f"job-{job_id}", parent, None)
    store = open_store(settings.store_url, settings.s3_endpoint_url)
    link = RemoteLink(
        app,
        store,
        settings.broker_url,
        settings.home,
        payload,
        claimed,
        worker_id,
        settings.operators(mentions=False),
    )
    capture_output(link.workdir, job_id, link.job.attempts)
    info = {"host": socket.gethostname(), "gpu": gpu, "pid": os.getpid()}
    with link.heartbeats(settings.heartbeat_seconds, info):
        run_linked(link, parent, settings.home / "cache")
    return f"job {job_id} ran"


def make_worker_app(settings: Settings, gpu: str | None) -> Celery:
    assert settings.broker_url
    app = make_app(settings.broker_url)

    @app.task(name=TRAIN, bind=True)
    def train(task: Task, payload: dict[str, Any]) -> str:
        return run_train_task(task, app, settings, payload, gpu)

    return app


def add_presence(app: Celery, name: str, info: dict[str, Any], every: float) -> None:
    """The worker process's own heartbeat (`fieldlens worker list` sees idle workers too), sent from
    Celery's event loop by its timer, as Celery's own heartbeat is. Not from a thread: this process
    forks the pool's processes, and a fork while a thread holds a lock (a broker connection's, say)
    leaves the new process waiting forever on a copy of it. With the beat on a thread, a pool
    process hung at the start of a job in 2 of 6 test runs; that this was the cause is likely, not
    proven (no stack of a hung process was caught)."""
    from celery import bootsteps

    def beat() -> None:
        with contextlib.suppress(Exception):  # the control side down: beats resume when it is back
            app.send_task(HEARTBEAT, args=[name, [], info])

    class Presence(bootsteps.StartStopStep):
        requires = ("celery.worker.consumer.heart:Heart",)  # the consumer's timer runs by then

        def __init__(self, parent: Any, **kwargs: Any) -> None:
            super().__init__(parent, **kwargs)
            self.tref: Any = None

        def start(self, parent: Any) -> None:
            beat()
            self.tref = parent.timer.call_repeatedly(every, beat)

        def stop(self, parent: Any) -> None:
            if self.tref is not None:
                self.tref.cancel()
                self.tref = None

    app.steps["consumer"].add(Presence)


def _pool_children() -> set[int]:
    """The pids of this process's children (Celery's pool process, which runs the job)."""
    try:
        threads = [t.name for t in os.scandir("/proc/self/task")]
    except OSError:
        return set()
    pids: set[int] = set()
    for tid in threads:
        try:
            with open(f"/proc/self/task/{tid}/children") as f:
                pids.update(int(pid) for pid in f.read().split())
        except OSError:
            continue  # a thread that ended meanwhile
    return pids


def hand_back_on_shutdown(app: Celery, name: str) -> None:
    """On Ctrl-C or SIGTERM, give the running job back instead of finishing it first.

    Celery's warm shutdown waits for the running task: a job of hours. As the embedded worker does,
    the worker ends the job's process (so the shutdown takes seconds) and tells the bot's machine that
    it gives the job back: `control` requeues it to resume from its last complete checkpoint, without
    counting an attempt, and only if this worker still owns it (so a job id that is stale here is
    harmless). The job ids are noted as tasks arrive: a cold shutdown cancels the running requests
    before the signal below is sent. The message goes out on a thread (Celery calls this from its
    signal handler, where the broker connection may be mid-use), which the exit waits for, briefly.
    """
    from billiard.common import TERM_SIGNAL
    from celery.signals import task_received, worker_shutting_down
    from celery.worker import state

    recent: collections.deque[int] = collections.deque(maxlen=1)  # one task at a time

    def job_of(request: Any) -> int | None:
        try:
            return int(request.args[0]["job_id"])
        except (AttributeError, IndexError, KeyError, TypeError, ValueError):
            return None

    def on_received(request: Any = None, **_: object) -> None:
        job_id = job_of(request)
        if job_id is not None:
            recent.append(job_id)

    def give_back(job_ids: list[int]) -> None:
        for job_id in job_ids:
            try:
                app.send_task(RELEASE, args=[job_id, name], retry_policy={"max_retries": 3})
                log.info("job #%s given back to the queue (this worker is shutting down)", job_id)
            except Exception:
                log.exception("could not give job #%s back; the bot's machine requeues it once this "
                              "worker's heartbeats stop", job_id)  # fmt: skip

    def on_shutdown(sender: str = "", how: str = "Warm", **_: object) -> None:
        running = list(state.active_requests)
        pids = {r.worker_pid for r in running if r.worker_pid} | _pool_children()
        for pid in pids:  # the job ends at once; its checkpoints are complete or not counted
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, TERM_SIGNAL)
        job_ids = [j for j in map(job_of, running) if j is not None]
        if how == "Cold" and not job_ids:  # a cold shutdown cancelled the running request already
            job_ids = list(recent)
        if not job_ids:
            return
        thread = threading.Thread(target=give_back, args=(job_ids,), name="fieldlens-give-back", daemon=True)
        thread.start()
        atexit.register(thread.join, 15)

    task_received.connect(on_received, weak=False)
    worker_shutting_down.connect(on_shutdown, weak=False)


def run_worker(settings: Settings, gpu: str | None = None, loglevel: str = "INFO") -> None:
    """One Celery worker process taking train tasks one at a time, until interrupted."""
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu  # before any TensorFlow loads, in this process's children
    app = make_worker_app(settings, gpu)
    name = worker_name(gpu)
    info = {"host": socket.gethostname(), "gpu": gpu, "pid": os.getpid(), "started": time.time()}
    add_presence(app, name, info, settings.heartbeat_seconds)
    hand_back_on_shutdown(app, name)
    app.worker_main(
        ["worker", "-Q", TRAIN_QUEUE, "-c", "1", "-P", "prefork", "-n", name, "-E",
         "--without-gossip", "--without-mingle", f"--loglevel={loglevel}"]
    )  # fmt: skip


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def launch(settings: Settings, gpus: list[str], argv_base: list[str]) -> int:
    """One worker process per GPU (`argv_base + ['--gpus', g]`), or this process alone for 0-1 GPU."""
    if len(gpus) <= 1:
        run_worker(settings, gpus[0] if gpus else None)
        return 0
    children = [
        subprocess.Popen(  # noqa: S603 - our own argv
            [*argv_base, "--gpus", g],
            env={**os.environ, "CUDA_VISIBLE_DEVICES": g},
            preexec_fn=_die_with_parent,
        )
        for g in gpus
    ]

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return max(child.wait() for child in children)


def list_workers(settings: Settings, jobs_by_worker: dict[str, int]) -> list[dict[str, Any]]:
    """Workers that beat within a day, newest first; `jobs_by_worker` comes from SQLite."""
    assert settings.broker_url
    r = redis_client(settings.broker_url)
    draining = {str(d) for d in r.smembers(DRAINING_KEY)}
    now = time.time()
    out = []
    for key, raw in r.hgetall(WORKERS_KEY).items():
        name = str(key)
        info = json.loads(raw)
        age = now - info["last_seen"]
        if age > FORGET_WORKERS_AFTER_SECONDS:
            r.hdel(WORKERS_KEY, name)
            continue
        out.append(
            {
                "name": name,
                "host": info.get("host"),
                "gpu": info.get("gpu"),
                "job": jobs_by_worker.get(name),
                "last_heartbeat_seconds_ago": round(age, 1),
                "alive": age < settings.worker_timeout_seconds,
                "draining": name in draining,
            }
        )
    return sorted(out, key=lambda w: w["last_heartbeat_seconds_ago"])


def drain(settings: Settings, name: str) -> bool:
    """Tell worker `name` to take no new job (its current one finishes); False if it did not answer."""
    assert settings.broker_url
    app = make_app(settings.broker_url)
    replies = app.control.cancel_consumer(TRAIN_QUEUE, destination=[name], reply=True, timeout=5)
    if replies:
        redis_client(settings.broker_url).sadd(DRAINING_KEY, name)
    return bool(replies)
