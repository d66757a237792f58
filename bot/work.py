"""Slow work off the event loop: each call runs in a worker thread with its own database connection."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from storage.services import open_services
from storage.settings import Settings

T = TypeVar("T")


def _call(settings: Settings, fn: Callable[..., T], args: tuple[object, ...]) -> T:
    services = open_services(settings)  # SQLite connections belong to the thread that opened them
    try:
        return fn(services, *args)
    finally:
        services.close()


async def in_thread(settings: Settings, fn: Callable[..., T], *args: object) -> T:
    """Run `fn(services, *args)` in a thread; the event loop keeps answering meanwhile."""
    return await asyncio.to_thread(_call, settings, fn, args)
