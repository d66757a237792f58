"""Where a running job's reports go and where its files come from: the one seam between the embedded
worker and a remote one (cluster/remote.py). trainer/job_runner.py runs a job through a `JobLink`.

    LocalLink    the embedded worker: reads and writes SQLite and the data folder directly
    RemoteLink   a Celery worker on another machine: reports through the control queue, files
                 through the shared blob store (cluster/remote.py)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from storage.domain import Job, JobState, LabelMap
from storage.model_folder import ModelFolder
from storage.services import Services

if TYPE_CHECKING:  # trainer.train imports TensorFlow; only the training process loads it
    from trainer.train import TrainData


class JobLost(Exception):
    """This worker no longer owns the job (it was handed to another worker): end quietly."""


@dataclass
class JobInputs:
    dataset_names: list[str]
    labels: LabelMap
    data: TrainData
    init_weights: Path | None  # the parent model's weights when the job continues a model


class JobLink(Protocol):
    job: Job  # as it was when this worker took it
    workdir: Path  # checkpoints, samples and the log of this job on this machine
    out_dir: Path  # where the delivered model folder is written on this machine
    operators: str  # who to tell an error ref

    def inputs(self, cache_dir: Path) -> JobInputs:
        """The job's samples and starting weights (downloaded first when remote)."""

    def transition(self, to: JobState, data: dict[str, object] | None = None) -> None:
        """Move the job to `to` (RUNNING, STOPPING); raises IllegalTransition when it cannot."""

    def progress(self, kind: str, data: dict[str, object], **columns: object) -> None:
        """Record a progress or checkpoint event (and the job's latest figures)."""

    def stop_requested(self) -> bool:
        """True once a stop was asked for; raises JobLost when the job went to another worker."""

    def checkpointed(self) -> None:
        """A checkpoint was just committed in `workdir` (remote: upload it before reporting it)."""

    def finish(
        self, to: JobState, data: dict[str, object], model_name: str | None, **columns: object
    ) -> None:
        """End the job; with `model_name`, register the model folder in `out_dir` first."""


class LocalLink:
    """The embedded worker's link: the job's row in SQLite and the data folder on this machine."""

    def __init__(self, services: Services, job_id: int) -> None:
        self.services = services
        self.jobs = services.jobs
        self.job = self.jobs.get_any(job_id)
        home = services.settings.home
        self.workdir = Path(self.job.checkpoint_dir or home / "jobs" / str(job_id))
        self.out_dir = home / "models" / self.job.team_id / f"job-{job_id}"
        self.operators = services.settings.operators(mentions=False)

    def inputs(self, cache_dir: Path) -> JobInputs:
        from trainer.pipeline import load_data

        job, services = self.job, self.services
        names = [services.datasets.get_by_id(job.team_id, i).name for i in job.dataset_ids]
        labels, data = load_data(services, job.team_id, names, cache_dir)
        weights = None
        if job.from_model_id is not None:
            weights = ModelFolder(services.models.get(job.team_id, job.from_model_id).path).weights
        return JobInputs(names, labels, data, weights)

    def transition(self, to: JobState, data: dict[str, object] | None = None) -> None:
        self.jobs.transition(self.job.id, to, data)

    def progress(self, kind: str, data: dict[str, object], **columns: object) -> None:
        self.jobs.progress(self.job.id, kind, data, **columns)

    def stop_requested(self) -> bool:
        return self.jobs.state_of(self.job.id)[1]

    def checkpointed(self) -> None:
        pass  # the checkpoint is already where recovery looks for it

    def finish(
        self, to: JobState, data: dict[str, object], model_name: str | None, **columns: object
    ) -> None:
        if model_name is not None:
            model = self.services.models.register(
                self.job.team_id,
                self.out_dir,
                name=model_name,
                job_id=self.job.id,
                parent_model_id=self.job.from_model_id,
            )
            data, columns = {**data, "model_id": model.id}, {**columns, "model_id": model.id}
        self.jobs.finish(self.job.id, to, data, **columns)
