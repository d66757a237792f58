"""The pages' reads, off the bot's event loop: one thread with a storage of its own.

A page handler `await`s `reader.run(fn, *args)`; `fn(services, *args)` runs on the reader's thread,
one call at a time, with SQLite connections that belong to that thread (a connection belongs to the
thread that opened it). The event loop, which answers the slash commands, only checks the link,
waits, and writes the answer. One thread, not a pool: page work is rarely urgent, and every thread
doing Python work takes the interpreter's lock from the loop for a while.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from storage.services import Services, open_services
from storage.settings import Settings

T = TypeVar("T")


class PageReader:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="fieldlens-pages")
        self._services: Services | None = None  # opened on the reader's thread, at its first call

    def _call(self, fn: Callable[..., T], args: tuple[object, ...]) -> T:
        if self._services is None:
            self._services = open_services(self.settings)
        return fn(self._services, *args)

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """`fn(services, *args)` on the reader's thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._call, fn, args)

    def _close_storage(self) -> None:
        if self._services is not None:
            self._services.close()
            self._services = None

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close_storage)
        self._executor.shutdown(wait=False)
