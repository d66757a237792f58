"""bench/bot.py's page viewers: N job pages in a child process, each holding the event stream the
page's script opens and reloading the page every 2 s, opened and closed between bursts."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
import urllib.request
from typing import Any


def _stream_of(url: str) -> str:
    """The event stream a job page opens, from where the page is (as its script does)."""
    with urllib.request.urlopen(url, timeout=60) as page:
        html = page.read().decode()
    data = json.loads(html.split('id="page-data">')[1].split("</script>")[0])
    stream = url.split("/jobs/")[0] + data["stream"]
    if "after" in data:  # the stream's link carries `after` itself in older pages
        stream += f"&after={data['after']}&log={data.get('log_at', 0)}"
    return stream


def watch_pages(url: str, n: int, watching: Any, done: Any, counts: Any) -> None:
    """In a child process: while `watching` is set, `n` viewers of a job page, each holding the event
    stream the page opens and reloading the page every 2 s; until `done`. counts: [streamed events,
    page loads, seconds loading them, streams open]."""

    def add(index: int, value: float) -> None:
        with counts.get_lock():
            counts[index] += value

    def listen() -> None:
        while not done.is_set():
            if not watching.wait(0.2):
                continue
            with urllib.request.urlopen(_stream_of(url), timeout=60) as events:
                add(3, 1)
                try:
                    for line in events:  # a progress event comes every 2 s or so
                        if line.startswith(b"data: "):
                            add(0, 1)
                        if not watching.is_set() or done.is_set():
                            break
                finally:
                    add(3, -1)

    def reload() -> None:
        while not done.is_set():
            if not watching.wait(0.2):
                continue
            started = time.perf_counter()
            with urllib.request.urlopen(url, timeout=60) as page:
                page.read()
            add(1, 1)
            add(2, time.perf_counter() - started)
            done.wait(2.0)

    threads = [threading.Thread(target=f, daemon=True) for _ in range(n) for f in (listen, reload)]
    for t in threads:
        t.start()
    done.wait()


class Viewers:
    """N job pages in a child process, opened and closed between bursts."""

    def __init__(self, url: str, n: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.n = n
        self.watching, self.done = context.Event(), context.Event()
        self.counts = context.Array("d", 4)
        self.process = context.Process(
            target=watch_pages, args=(url, n, self.watching, self.done, self.counts)
        )
        self.process.start()

    def _until(self, check: Any, what: str) -> None:
        deadline = time.monotonic() + 60
        while not check():
            if time.monotonic() > deadline:
                raise RuntimeError(f"page viewers: timed out waiting for {what}")
            time.sleep(0.1)

    def open(self) -> None:
        loads = self.counts[1]
        self.watching.set()
        self._until(lambda: self.counts[3] >= self.n and self.counts[1] >= loads + self.n, "pages to open")

    def close(self) -> None:
        self.watching.clear()
        self._until(lambda: self.counts[3] == 0, "streams to close")
        time.sleep(1.0)  # the server notices a closed stream at its next poll

    def stop(self) -> None:
        self.watching.clear()
        self.done.set()
        self.process.join(30)
