"""Remote workers end to end with a file:// store: a real redis-server, real `fieldlens control` and
`fieldlens worker --broker` processes, real tiny training, and the bot machine's SQLite as the only
record. The s3:// store, with a frozen worker and a shutdown: test_remote_workers_s3.py.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.domain import JobState
from storage.model_folder import ModelFolder
from tests.cluster.rig import Cluster, cluster_rig
from tests.trainer.jobwait import balanced, states, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A file:// blob store (a folder, as on NFS)."""
    with cluster_rig(tmp_path, {"FIELDLENS_STORE": (tmp_path / "shared-store").as_uri()}) as c:
        yield c


def test_jobs_run_on_remote_workers_through_stop_kill_and_drain(cluster: Cluster) -> None:
    """Three jobs on two workers: a kill (resumed elsewhere from its checkpoint), a stop with a model, a
    stop before the first checkpoint, then draining. A frozen worker and a shutdown are in the s3://
    scenario, which runs beside this one (the hand-on does not depend on the store)."""
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

    a = c.wait_state(a.id, {JobState.STOPPED, JobState.FAILED})
    assert a.state == JobState.STOPPED, a.error
    assert a.model_id is not None
    model = c.services.models.get("local", a.model_id)
    assert ModelFolder(model.path).int8_model.is_file() and model.path.startswith(str(c.root / "bot"))

    b = c.wait_state(b.id, {JobState.SUCCEEDED, JobState.FAILED}, timeout=300)
    assert b.state == JobState.SUCCEEDED, b.error
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
