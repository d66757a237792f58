"""The training process yields the CPU: the idle class on the bot's machine, nice 10 elsewhere."""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading

import pytest

from trainer.job_runner import yield_cpu


def _policies(idle_class: bool, out: multiprocessing.Queue) -> None:
    nice_before = os.getpriority(os.PRIO_PROCESS, 0)
    yield_cpu(idle_class)
    seen: list[tuple[int, int]] = []

    def record() -> None:  # a thread started afterwards, as TensorFlow's are
        seen.append((os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0) - nice_before))

    thread = threading.Thread(target=record)
    thread.start()
    thread.join()
    out.put((os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0) - nice_before, seen[0]))


def _run(idle_class: bool) -> tuple[int, int, tuple[int, int]]:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    process = context.Process(target=_policies, args=(idle_class, out))
    process.start()
    result = out.get(timeout=60)
    process.join(60)
    return result  # type: ignore[no-any-return]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="scheduling classes are Linux's")
def test_the_embedded_worker_trains_in_the_idle_class_and_its_threads_inherit_it() -> None:
    policy, _, (thread_policy, _) = _run(True)
    assert policy == os.SCHED_IDLE
    assert thread_policy == os.SCHED_IDLE


def test_a_remote_worker_trains_at_a_lower_priority_not_idle() -> None:
    policy, niceness, (thread_policy, thread_niceness) = _run(False)
    assert policy == os.SCHED_OTHER
    assert thread_policy == os.SCHED_OTHER
    assert niceness == thread_niceness == 10
