"""Real workers, real child processes, real (tiny) training: the job life cycle end to end.

Two workers serve one database for the whole module, so every job here is also a check that two
workers never share a job. The SIGKILL test is in test_worker_kill.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from storage.domain import Job, JobState
from storage.services import Services, open_services
from storage.settings import Settings
from storage.voc.synth import make_voc_zip
from testkit.tiny import TINY_JOB
from tests.trainer.jobwait import balanced, states, wait_final, wait_for

pytestmark = pytest.mark.slow


@dataclass
class Farm:
    services: Services
    settings: Settings


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    from trainer.worker import Worker

    settings = Settings(home=tmp_path_factory.mktemp("farm") / "home", heartbeat_seconds=0.5)
    services = open_services(settings)
    services.datasets.add("local", "shapes", make_voc_zip(images=40, seed=21))
    workers = [Worker(settings, worker_id=f"w{i}", poll_seconds=0.2) for i in range(2)]
    threads = [threading.Thread(target=w.run, daemon=True) for w in workers]
    for t in threads:
        t.start()
    yield Farm(services, settings)
    for w in workers:
        w.stop()
    for t in threads:
        t.join(60)
    services.close()


@pytest.fixture(scope="module")
def first_jobs(farm: Farm) -> tuple[Job, Job]:
    """Two jobs queued together: the two workers take one each and train them side by side."""
    s = farm.services
    a = s.jobs.create("local", ["shapes"], steps=40, batch_size=16, max_minutes=5, config=TINY_JOB)
    b = s.jobs.create("local", ["shapes"], steps=20, batch_size=16, max_minutes=5, config=TINY_JOB)
    return wait_final(s, a.id), wait_final(s, b.id)


def test_a_job_goes_through_its_states_to_a_verified_model(farm: Farm, first_jobs: tuple[Job, Job]) -> None:
    s = farm.services
    job = first_jobs[0]
    assert job.state == JobState.SUCCEEDED, job.error
    assert states(s, job.id) == [JobState.QUEUED, JobState.PREPARING, JobState.RUNNING, JobState.SUCCEEDED]
    assert job.steps_completed == 40 and job.training_seconds > 0
    progress = s.jobs.events(job.id, kinds=("progress",))
    assert progress and {"step", "steps", "loss", "images_per_second", "eta_seconds"} <= set(
        progress[-1].data
    )
    assert progress[-1].data["step"] == 40
    assert [e.data["step"] for e in s.jobs.events(job.id, kinds=("checkpoint",))] == [20, 40]
    assert job.model_id is not None
    model = s.models.get("local", job.model_id)
    assert model.job_id == job.id and model.labels == ["circle", "square", "triangle"]
    for name in ("model_int8.tflite", "labels.txt", "model.weights.h5", "manifest.json"):
        assert (Path(model.path) / name).is_file()
    assert {"map50_float", "map50_int8", "per_class_ap50", "images_per_second"} <= set(job.metrics)
    assert balanced(s)


def test_two_workers_share_the_queue_but_never_a_job(farm: Farm, first_jobs: tuple[Job, Job]) -> None:
    s = farm.services
    a, b = first_jobs
    assert b.state == JobState.SUCCEEDED, b.error
    assert {a.worker_id, b.worker_id} == {"w0", "w1"}
    for job in (a, b):
        claims = [e for e in s.jobs.events(job.id) if e.state == JobState.PREPARING]
        assert len(claims) == job.attempts == 1


def test_stop_before_the_first_checkpoint_cancels_and_refunds_everything(farm: Farm) -> None:
    s = farm.services
    job = s.jobs.create(
        "local",
        ["shapes"],
        steps=300,
        batch_size=16,
        max_minutes=5,
        config={**TINY_JOB, "checkpoint_every": 100},
    )
    wait_for(lambda: s.jobs.get("local", job.id).state == JobState.RUNNING, 120, "RUNNING")
    s.jobs.request_stop("local", job.id)
    final = wait_final(s, job.id)
    assert final.state == JobState.CANCELED
    assert final.model_id is None and final.steps_completed < 100
    assert states(s, job.id)[-2:] == [JobState.STOP_REQUESTED, JobState.CANCELED]
    assert sum(e.minutes for e in s.budget.entries("local") if e.job_id == job.id) == 0
    assert balanced(s)


def test_stop_after_a_checkpoint_keeps_a_model_that_can_be_trained_more(farm: Farm) -> None:
    s = farm.services
    job = s.jobs.create("local", ["shapes"], steps=2000, batch_size=16, max_minutes=5, config=TINY_JOB)
    wait_for(lambda: s.jobs.events(job.id, kinds=("checkpoint",)), 180, "the first checkpoint")
    s.jobs.request_stop("local", job.id)
    final = wait_final(s, job.id)
    assert final.state == JobState.STOPPED, final.error
    assert states(s, job.id)[-3:] == [JobState.STOP_REQUESTED, JobState.STOPPING, JobState.STOPPED]
    assert 20 <= final.steps_completed < 2000
    assert final.model_id is not None
    assert (Path(s.models.get("local", final.model_id).path) / "model_int8.tflite").is_file()
    assert balanced(s)


def test_continue_from_a_model_starts_from_its_weights_and_is_a_new_version(
    farm: Farm, first_jobs: tuple[Job, Job]
) -> None:
    s = farm.services
    parent = first_jobs[0]
    job = s.jobs.create(
        "local",
        ["shapes"],
        steps=20,
        batch_size=16,
        max_minutes=5,
        from_model_id=parent.model_id,
        config=TINY_JOB,
    )
    final = wait_final(s, job.id)
    assert final.state == JobState.SUCCEEDED, final.error
    model = s.models.get("local", final.model_id)  # type: ignore[arg-type]
    assert model.id != parent.model_id and model.parent_model_id == parent.model_id

    def first_loss(job_id: int) -> float:
        return float(s.jobs.events(job_id, kinds=("progress",))[0].data["loss"])  # type: ignore[arg-type]

    # Training resumes where the parent ended, not from random weights.
    assert first_loss(job.id) < first_loss(parent.id)
    assert balanced(s)
