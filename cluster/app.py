"""The Celery application both sides share: its queues, task names and settings.

    train     training tasks, sent by the bot's machine, taken by `fieldlens worker --broker` (one
              task at a time per GPU)
    control   what workers report, taken by `fieldlens control` on the bot's machine, the only
              process that writes what they say into SQLite

Tasks are sent by name, so the bot's machine never imports the trainer and a worker never imports
the control side. Broker and result backend are the same Redis; only `claim` and `heartbeat` keep
a result (the worker waits for the answer).
"""

from __future__ import annotations

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
STOP_KEY = "fieldlens:stop:{job_id}"  # set while a stop of the job is asked for
DISPATCHED_KEY = "fieldlens:dispatched:{job_id}:{generation}"  # one train task per time it is queued
WORKERS_KEY = "fieldlens:workers"  # hash: worker name -> what its last heartbeat said
DRAINING_KEY = "fieldlens:draining"  # set of worker names told to take no new job


class BadBrokerURL(UserError):
    """FIELDLENS_BROKER_URL is not a Redis URL."""


def make_app(broker_url: str) -> Celery:
    if not broker_url.startswith(("redis://", "rediss://", "unix://")):
        raise BadBrokerURL(
            f"FIELDLENS_BROKER_URL={broker_url!r} is not a Redis URL. Give redis://host:6379/0 "
            "(FieldLens uses Redis as Celery's broker)."
        )
    app = Celery("fieldlens", broker=broker_url, backend=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
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
        result_expires=3600,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,  # a job's process sends its output to the job's log file
        worker_send_task_events=True,  # for Flower
        task_send_sent_event=True,
    )
    return app


def redis_client(broker_url: str) -> redis.Redis:
    return redis.Redis.from_url(
        broker_url, socket_timeout=10, health_check_interval=30, decode_responses=True
    )
