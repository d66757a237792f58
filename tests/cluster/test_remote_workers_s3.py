"""Remote workers end to end with an s3:// store (moto's S3 server on loopback): checkpoints and the
model travel through S3 while one job outlives a frozen worker and a shutdown."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.domain import JobState
from storage.model_folder import ModelFolder
from tests.cluster.rig import Cluster, cluster_rig
from tests.cluster.servers import s3_server
from tests.trainer.jobwait import balanced, states, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def s3_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """An s3:// blob store: moto's S3 server on loopback."""
    pytest.importorskip("moto", reason="moto (the dev extra) serves the s3:// store")
    with s3_server("fieldlens-store") as store_env, cluster_rig(tmp_path, store_env) as c:
        yield c


def test_with_an_s3_store_a_job_survives_freeze_and_shutdown(s3_cluster: Cluster) -> None:
    """One job's life through the ways a worker leaves it without dying, checkpoints and the model in
    S3: SIGSTOP (handed on at attempt 2, late reports dropped) and a shutdown (SIGTERM: the worker
    gives the job back at once, and no attempt is counted). SIGKILL is in the file:// scenario: the
    hand-on after silence is the same code whichever way the worker fell silent."""
    c = s3_cluster
    c.start_worker(), c.start_worker()
    job = c.queue(100)

    reached = c.wait_checkpoint(job.id)
    frozen = c.freeze_until_handed_on(job.id, attempts=2)
    wait_for(lambda: len(c.started_steps(job.id)) == 2, 60, "the second start")
    assert c.started_steps(job.id)[1] >= reached > 0  # from the checkpoint in S3, not from step 0

    reached = c.wait_checkpoint(job.id, after_step=reached)
    leaving = c.worker_of(c.job(job.id))
    asked = time.monotonic()
    leaving.proc.send_signal(signal.SIGTERM)
    leaving.proc.wait(60)  # a warm shutdown that waited for the job would take the rest of the job
    took = time.monotonic() - asked
    assert took < 30, f"the worker took {took:.0f} s to shut down"
    assert "given back to the queue" in leaving.text()
    wait_for(
        lambda: len(c.started_steps(job.id)) == 3, 120, "the third start, on the frozen-then-resumed worker"
    )
    assert c.worker_of(c.job(job.id)) is frozen
    assert c.job(job.id).attempts == 2  # a hand-back is not a failed attempt
    assert c.started_steps(job.id)[2] >= reached
    assert "Requeued: its worker shut down" in " ".join(str(e.data) for e in c.services.jobs.events(job.id))

    done = c.wait_state(job.id, {JobState.SUCCEEDED, JobState.FAILED}, timeout=300)
    assert done.state == JobState.SUCCEEDED, done.error
    assert states(c.services, job.id).count(JobState.SUCCEEDED) == 1
    assert done.model_id is not None
    assert ModelFolder(c.services.models.get("local", done.model_id).path).int8_model.is_file()
    assert balanced(c.services)
