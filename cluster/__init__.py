"""Training on other machines: Celery with a Redis broker, the bot's SQLite the one source of truth.

    app.py       the Celery app, queues and task names both sides share
    store.py     the blob store both sides share (FIELDLENS_STORE: file:// or s3://)
    dispatch.py  bot machine: queued jobs -> train tasks, stop requests -> flags in Redis
    control.py   bot machine: `fieldlens control`, what workers report -> SQLite, fenced by worker id
    remote.py    worker: the train task's JobLink (trainer/job_link.py)
    workers.py   worker: `fieldlens worker --broker`, `worker list`, `worker drain`

Unset FIELDLENS_BROKER_URL and none of this runs: the embedded worker reads SQLite directly.
"""
