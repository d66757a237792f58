"""The Celery application both sides share: its queues, task names and settings.

    train     training tasks, sent by the bot's machine, taken by `fieldlens worker --broker` (one
              task at a time per GPU)
    control   what workers report, taken by `fieldlens control` on the bot's machine, the only
              process that writes what they say into SQLite

Tasks are sent by name, so the bot's machine never imports the trainer and a worker never imports
the control side. The two calls a worker waits on (`claim`, a job's `heartbeat`) are answered on a
Redis list of their own (`call`), not through Celery's result backend, whose waiting side can hang in
a forked pool process.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import redis
from celery import Celery

from storage.errors import UserError

TRAIN_QUEUE = "train"
CONTROL_QUEUE = "control"
TRAIN = "fieldlens.train"
CLAIM = "fieldlens.control.claim"
REPORT = "fieldlens.control.report"
FINISH = "fieldlens.control.finish"
HEARTBEAT = "fieldlens.control.heartbeat"
RELEASE = "fieldlens.control.release"  # a worker shutting down gives its job back
LOG = "fieldlens.control.log"  # a job's log grew: the bot's machine copies it from the store
STOP_KEY = "fieldlens:stop:{job_id}"  # set while a stop of the job is asked for
DISPATCHED_KEY = "fieldlens:dispatched:{job_id}:{generation}"  # one train task per time it is queued
WORKERS_KEY = "fieldlens:workers"  # hash: worker name -> what its last heartbeat said
DRAINING_KEY = "fieldlens:draining"  # set of worker names told to take no new job
REPLY_KEY = "fieldlens:reply:{id}"  # the answer to one `call`
REPLY_TTL_SECONDS = 300


class BadBrokerURL(UserError):
    """FIELDLENS_BROKER_URL is not a Redis URL."""


def make_app(broker_url: str) -> Celery:
    if not broker_url.startswith(("redis://", "rediss://", "unix://")):
        raise BadBrokerURL(
            f"FIELDLENS_BROKER_URL={broker_url!r} is not a Redis URL. Give redis://host:6379/0 "
            "(FieldLens uses Redis as Celery's broker)."
        )
    app = Celery("fieldlens", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_routes={TRAIN: {"queue": TRAIN_QUEUE}, "fieldlens.control.*": {"queue": CONTROL_QUEUE}},
        task_default_queue=CONTROL_QUEUE,
        # Acknowledged when it starts, never late: with Redis a long unacknowledged task is handed
        # out again after the visibility timeout and would train twice (celery/celery#5935). The
        # reaper on the bot's machine owns recovery instead.
        task_acks_late=False,
        worker_prefetch_multiplier=1,
        worker_disable_prefetch=True,  # a busy worker holds no second job another could run
        worker_max_tasks_per_child=1,  # each job in a fresh process: GPU memory goes back after it
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,  # a job's process sends its output to the job's log file
        worker_send_task_events=True,  # for Flower
        task_send_sent_event=True,
    )
    return app


def redis_client(broker_url: str, socket_timeout: float = 10) -> redis.Redis:
    return redis.Redis.from_url(
        broker_url, socket_timeout=socket_timeout, health_check_interval=30, decode_responses=True
    )


class NoAnswer(TimeoutError):
    """The bot's machine did not answer a worker's call in time."""


def call(app: Celery, r: redis.Redis, name: str, args: list[Any], timeout: float) -> Any:
    """Send task `name` to the control queue and wait for its answer (see `answer`)."""
    key = REPLY_KEY.format(id=uuid.uuid4().hex)
    app.send_task(name, args=args, kwargs={"reply_to": key})
    got = r.blpop([key], timeout=max(1, round(timeout)))
    if got is None:
        raise NoAnswer(f"{name} got no answer from the bot's machine within {timeout:g} s")
    return json.loads(got[1])


def answer(r: redis.Redis, reply_to: str | None, value: Any) -> None:
    """The control side's answer to a `call` (kept a few minutes for a caller that is late)."""
    if reply_to:
        r.rpush(reply_to, json.dumps(value))
        r.expire(reply_to, REPLY_TTL_SECONDS)
