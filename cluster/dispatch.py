"""The bot machine's side of sending work out: queued jobs become train tasks, stops become flags.

Every half second (`Dispatcher.tick`), reading SQLite, the one source of truth:
    a QUEUED job not yet sent for the time it was queued -> its images (and the model it continues)
        are published to the blob store, then one train task carries everything a worker needs:
        the job id, the dataset manifest (image hashes, sizes, splits, boxes), the labels
    a job with a stop asked for -> the flag its worker polls through the broker

Sending twice is harmless (a worker's claim is a compare-and-set on QUEUED), but a Redis key per
(job, queued event) keeps it to once. The bot itself never talks to the broker: it writes rows.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path

import redis
from celery import Celery

from cluster.app import DISPATCHED_KEY, STOP_KEY, TRAIN, TRAIN_QUEUE
from cluster.store import ObjectStore, put_folder
from storage.blobs import BlobStore
from storage.db import marks
from storage.domain import ACTIVE_STATES, Job
from storage.model_folder import MANIFEST
from storage.services import Services

log = logging.getLogger(__name__)
DISPATCHED_TTL_SECONDS = 30 * 24 * 3600


def image_key(digest: str) -> str:
    return f"images/{digest}"


def model_prefix(model_id: int) -> str:
    return f"models/{model_id}"


def publish_images(store: ObjectStore, blobs: BlobStore, digests: Iterable[str]) -> int:
    """Upload the images the store does not have yet; returns how many went up."""
    have = {k.removeprefix("images/") for k in store.keys("images/")}
    missing = sorted(set(digests) - have)
    for digest in missing:
        store.put_file(image_key(digest), blobs.path(digest))
    return len(missing)


def job_payload(services: Services, store: ObjectStore, job: Job, generation: int) -> dict[str, object]:
    """Everything a remote worker needs to train `job`, its files published to `store` first."""
    datasets = [services.datasets.get_by_id(job.team_id, i) for i in job.dataset_ids]
    images = [
        [
            image.sha256,
            image.width,
            image.height,
            str(image.split),
            [[b.label, b.xmin, b.ymin, b.xmax, b.ymax] for b in image.boxes],
        ]
        for dataset in datasets
        for image in services.datasets.images(dataset.id)
    ]
    publish_images(store, services.blobs, {i[0] for i in images})  # type: ignore[misc]
    parent = None
    if job.from_model_id is not None:
        parent = model_prefix(job.from_model_id)
        if f"{parent}/{MANIFEST}" not in store.keys(parent + "/"):
            put_folder(
                store, parent, Path(services.models.get(job.team_id, job.from_model_id).path), MANIFEST
            )
    return {
        "job_id": job.id,
        "generation": generation,
        "dataset_names": [d.name for d in datasets],
        "labels": list(job.config["labels"]),  # type: ignore[call-overload]
        "images": images,
        "parent_model": parent,
    }


class Dispatcher:
    """Sends queued jobs to the train queue and mirrors stop requests into Redis."""

    def __init__(self, services: Services, app: Celery, store: ObjectStore, r: redis.Redis) -> None:
        self.services, self.app, self.store, self.redis = services, app, store, r
        self._stops: set[int] = set()

    def tick(self) -> list[int]:
        """One pass; returns the ids of the jobs sent out."""
        sent = [job.id for job in self.services.jobs.queued() if self._send(job)]
        self._mirror_stops()
        return sent

    def _send(self, job: Job) -> bool:
        generation = self.services.jobs.queued_generation(job.id)
        key = DISPATCHED_KEY.format(job_id=job.id, generation=generation)
        if not self.redis.set(key, 1, nx=True, ex=DISPATCHED_TTL_SECONDS):
            return False  # already sent for this time in the queue
        try:
            payload = job_payload(self.services, self.store, job, generation)
            self.app.send_task(TRAIN, args=[payload], queue=TRAIN_QUEUE)
        except Exception:
            self.redis.delete(key)  # try again next tick
            raise
        log.info("job #%s sent to the train queue (%s images)", job.id, len(payload["images"]))  # type: ignore[arg-type]
        return True

    def _mirror_stops(self) -> None:
        rows = self.services.db.execute(
            f"SELECT id FROM jobs WHERE stop_requested = 1 AND state IN ({marks(ACTIVE_STATES)})",  # noqa: S608
            sorted(ACTIVE_STATES),
        ).fetchall()
        wanted = {r[0] for r in rows}
        for job_id in wanted - self._stops:
            self.redis.set(STOP_KEY.format(job_id=job_id), 1, ex=DISPATCHED_TTL_SECONDS)
        self._stops = wanted

    def run(self, stop: threading.Event, every: float = 0.5) -> None:
        while not stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("dispatching failed; trying again in %s s", every)
            stop.wait(every)
