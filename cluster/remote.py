"""A job on a remote worker: the train task and the `JobLink` it runs the job through.

The task runs in a Celery pool process (a fresh one per job) on a machine that shares nothing with
the bot's but Redis and the blob store:

    claim      ask the control queue for the job (an answer is awaited: None -> another worker or a
               stop got it first, and this task ends)
    inputs     checkpoints of an earlier attempt, the images and the continued model's weights, from
               the blob store into this worker's data folder
    train      trainer/job_runner.run_linked, as on the embedded worker; reports go to the control
               queue, each checkpoint is uploaded before it is reported, the model folder before
               the end is
    beats      a thread heartbeats the job; the answer says when the job went to another worker,
               and the training stops quietly at its next step (its later reports would be dropped)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from celery import Celery

from cluster.app import CLAIM, FINISH, HEARTBEAT, LOG, REPORT, STOP_KEY, call, redis_client
from cluster.dispatch import image_key
from cluster.store import ObjectStore, get_folder, put_folder
from storage.blobs import BlobStore
from storage.checkpoints import STATE, Checkpoints
from storage.domain import Box, ImageRecord, Job, JobState, LabelMap, Split
from storage.job_folder import JobFolder
from storage.model_folder import MANIFEST, ModelFolder
from storage.planning import require_training_images
from trainer.job_link import JobInputs, JobLost

log = logging.getLogger(__name__)
CLAIM_TIMEOUT_SECONDS = 60
REMOTE_POINTER = "remote.json"  # jobs/<id>/checkpoints/remote.json: the newest complete upload
LOG_SECONDS = 10.0  # a growing job log is copied to the bot's machine this often (the job page's live log)


def job_from_claim(row: dict[str, Any]) -> Job:
    now = datetime.now(UTC)
    return Job(
        id=row["id"],
        team_id=row["team_id"],
        state=JobState.PREPARING,
        model=row["model"],
        steps=row["steps"],
        batch_size=row["batch_size"],
        max_minutes=row["max_minutes"],
        dataset_ids=[],
        created_at=now,
        updated_at=now,
        description=row["description"],
        training_seconds=row["training_seconds"],
        from_model_id=row["from_model_id"],
        config=row["config"],
        attempts=row["attempts"],
    )


class RemoteLink:
    """The job as a remote worker sees it: reports to the control queue, files in the blob store."""

    def __init__(
        self,
        app: Celery,
        store: ObjectStore,
        broker_url: str,
        home: Path,
        payload: dict[str, Any],
        claimed: dict[str, Any],
        worker_id: str,
        operators: str,
    ) -> None:
        self.app, self.store, self.broker_url = app, store, broker_url
        self.redis = redis_client(broker_url)
        self.payload, self.worker_id, self.operators = payload, worker_id, operators
        self.job = job_from_claim(claimed)
        self.home = home
        self.workdir = home / "jobs" / str(self.job.id)
        self.out_dir = home / "out" / f"job-{self.job.id}"
        self.prefix = f"jobs/{self.job.id}"
        self.lost = False
        self._uploaded: set[str] = set()
        self._log_size = -1
        self._log_lock = threading.Lock()  # the heartbeat thread shares the log too

    # -- files -----------------------------------------------------------------------------------

    def inputs(self, cache_dir: Path) -> JobInputs:
        from trainer.samples import to_sample

        self._restore_checkpoints()
        blobs = BlobStore(self.home / "blobs")
        images = [self._image(row) for row in self.payload["images"]]
        self._fetch_images(blobs, {i.sha256 for i in images})
        labels = LabelMap(tuple(self.payload["labels"]))
        by_split = {s: [to_sample(i, labels, blobs) for i in images if i.split == s] for s in Split}
        require_training_images(len(by_split[Split.TRAIN]))
        from trainer.train import TrainData

        data = TrainData(by_split[Split.TRAIN], by_split[Split.VAL], cache_dir, by_split[Split.TEST])
        weights = None
        if self.payload["parent_model"]:
            folder = self.home / "parents" / self.payload["parent_model"].replace("/", "-")
            if not folder.is_dir() and not get_folder(
                self.store, self.payload["parent_model"], folder, MANIFEST
            ):
                raise FileNotFoundError(f"{self.payload['parent_model']} is missing from {self.store.url}")
            weights = ModelFolder(folder).weights
        return JobInputs(list(self.payload["dataset_names"]), labels, data, weights)

    @staticmethod
    def _image(row: list[Any]) -> ImageRecord:
        sha, width, height, split, boxes = row
        return ImageRecord(
            filename=sha,
            sha256=sha,
            format="",
            width=width,
            height=height,
            split=Split(split),
            boxes=tuple(Box(label, x0, y0, x1, y1) for label, x0, y0, x1, y1 in boxes),
        )

    def _fetch_images(self, blobs: BlobStore, digests: set[str]) -> None:
        """Download the images this worker has not cached yet, checking each against its name."""

        def fetch(digest: str) -> None:
            data = self.store.get(image_key(digest))
            if data is None or hashlib.sha256(data).hexdigest() != digest:
                raise FileNotFoundError(f"image {digest} is missing or damaged in {self.store.url}")
            blobs.put(data, digest, durable=False)

        missing = [d for d in sorted(digests) if not blobs.has(d)]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(fetch, missing))
        log.info(
            "job #%s: %s images, %s fetched from %s", self.job.id, len(digests), len(missing), self.store.url
        )

    def _restore_checkpoints(self) -> None:
        """Take the newest checkpoint an earlier attempt (on any machine) uploaded."""
        raw = self.store.get(f"{self.prefix}/checkpoints/{REMOTE_POINTER}")
        if raw is None:
            return
        pointer = json.loads(raw)
        checkpoints = Checkpoints(self.workdir)
        if (checkpoints.latest_step() or 0) >= pointer["step"]:
            return  # this machine ran the job last and has it already
        base = f"{self.prefix}/checkpoints"
        if pointer.get("best"):
            get_folder(self.store, f"{base}/{pointer['best']}", checkpoints.best, STATE)
        staging = checkpoints.staging(pointer["step"])
        if not get_folder(self.store, f"{base}/{pointer['latest']}", staging, STATE):
            raise FileNotFoundError(f"{base}/{pointer['latest']} is not complete in {self.store.url}")
        checkpoints.commit(staging, pointer["step"])
        log.info("job #%s resumes from the checkpoint at step %s in %s", self.job.id, pointer["step"], base)

    def checkpointed(self) -> None:
        """Upload the newest checkpoint (and the best, when it changed), then the pointer to them."""
        checkpoints = Checkpoints(self.workdir)
        latest = checkpoints.latest()
        step = checkpoints.latest_step()
        if latest is None or step is None:
            return
        base = f"{self.prefix}/checkpoints"
        put_folder(self.store, f"{base}/{latest.name}", latest, STATE)
        best = None
        if checkpoints.best.is_dir():
            best_step = json.loads((checkpoints.best / STATE).read_text())["step"]
            best = f"best-{best_step:07d}"
            if best not in self._uploaded:
                put_folder(self.store, f"{base}/{best}", checkpoints.best, STATE)
                self._uploaded.add(best)
        pointer = {"latest": latest.name, "step": step, "best": best}
        self.store.put(f"{base}/{REMOTE_POINTER}", json.dumps(pointer).encode())
        folder = JobFolder(self.workdir)
        if folder.sample(step).is_file():
            self.store.put_file(f"{self.prefix}/samples/{folder.sample(step).name}", folder.sample(step))
        self._upload_log()

    def _upload_log(self) -> bool:
        """Upload the job's log if it grew since the last upload; whether it did."""
        log_file = JobFolder(self.workdir).log
        with self._log_lock, contextlib.suppress(OSError):
            size = log_file.stat().st_size
            if size != self._log_size:
                self.store.put_file(f"{self.prefix}/job.log", log_file)
                self._log_size = size
                return True
        return False

    def share_log(self) -> None:
        """Between checkpoints: upload the log if it grew, and have the bot's machine copy it."""
        if self._upload_log():
            self._send(LOG)

    # -- reports ---------------------------------------------------------------------------------

    def _send(self, name: str, *args: Any) -> None:
        self.app.send_task(name, args=[self.job.id, self.worker_id, *args])

    def transition(self, to: JobState, data: dict[str, object] | None = None) -> None:
        self._send(REPORT, "state", {**(data or {}), "to": str(to)}, {})

    def progress(self, kind: str, data: dict[str, object], **columns: object) -> None:
        self._send(REPORT, kind, data, columns)

    def stop_requested(self) -> bool:
        if self.lost:
            raise JobLost
        return bool(self.redis.exists(STOP_KEY.format(job_id=self.job.id)))

    def finish(
        self, to: JobState, data: dict[str, object], model_name: str | None, **columns: object
    ) -> None:
        prefix = None
        if model_name is not None:
            prefix = f"{self.prefix}/model-{self.job.attempts}"
            put_folder(self.store, prefix, self.out_dir, MANIFEST)
        self._upload_log()
        self._send(FINISH, str(to), data, model_name, prefix, columns)

    # -- liveness --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def heartbeats(self, every: float, info: dict[str, Any]) -> Iterator[None]:
        """Heartbeat the job every `every` seconds while the block runs; note when it is lost."""
        done = threading.Event()
        r = redis_client(self.broker_url, socket_timeout=every * 2 + 10)  # its own, for its thread

        def beat() -> None:
            while not done.wait(every):
                with contextlib.suppress(Exception):  # the control side down: the reaper decides
                    lost = call(self.app, r, HEARTBEAT, [self.worker_id, [self.job.id], info], every * 2)
                    if self.job.id in lost:
                        log.warning("job #%s now belongs to another worker; stopping here", self.job.id)
                        self.lost = True

        def share() -> None:  # on a thread of its own: a slow store never delays a heartbeat
            while not done.wait(LOG_SECONDS) and not self.lost:
                with contextlib.suppress(Exception):  # a store or broker hiccup: next time
                    self.share_log()

        for target, name in ((beat, "fieldlens-job-heartbeat"), (share, "fieldlens-job-log")):
            threading.Thread(target=target, name=name, daemon=True).start()
        try:
            yield
        finally:
            done.set()


def claim(app: Celery, r: redis.Redis, job_id: int, worker_id: str) -> dict[str, Any] | None:
    """Ask the control queue for the job; its answer, or None when the job is not to be run here."""
    return call(app, r, CLAIM, [job_id, worker_id], CLAIM_TIMEOUT_SECONDS)
