"""Wire the storage pieces together from the settings: one object per process."""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from storage.blobs import BlobStore
from storage.budget import Budget
from storage.datasets import DatasetStore
from storage.db import open_db
from storage.job_recovery import JobRecovery
from storage.jobs import JobStore
from storage.models import ModelStore
from storage.notices import NoticeStore
from storage.settings import Settings
from storage.teams import TeamStore
from storage.voc.archive import Limits


@dataclass
class Services:
    settings: Settings
    db: sqlite_utils.Database
    blobs: BlobStore
    datasets: DatasetStore
    models: ModelStore
    budget: Budget
    jobs: JobStore
    recovery: JobRecovery
    teams: TeamStore
    notices: NoticeStore

    def close(self) -> None:
        self.db.close()


def open_services(settings: Settings) -> Services:
    settings.home.mkdir(parents=True, exist_ok=True)
    db = open_db(settings.db_path)
    blobs = BlobStore(settings.blob_dir)
    limits = Limits(
        max_total_bytes=settings.max_upload_bytes,
        max_files=settings.max_upload_files,
        max_ratio=settings.max_compression_ratio,
    )
    datasets = DatasetStore(db, blobs, limits, settings.val_fraction, settings.split_seed)
    models = ModelStore(db)
    budget = Budget(db, settings.team_minutes)
    jobs = JobStore(
        db,
        datasets,
        models,
        budget,
        settings.home / "jobs",
        settings.max_queued_per_team,
        settings.max_queued_total,
        settings.max_job_minutes,
    )
    recovery = JobRecovery(jobs, settings.max_job_attempts)
    return Services(
        settings, db, blobs, datasets, models, budget, jobs, recovery, TeamStore(db), NoticeStore(db)
    )
