"""Waiting for a condition, never for a fixed time: poll it until it holds or time runs out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

T = TypeVar("T")
POLL_S = 0.2


def wait_until(what: str, check: Callable[[], T], timeout: float = 60.0) -> T:
    """``check()``'s first true result; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(POLL_S)


async def eventually(
    what: str,
    check: Callable[[], Awaitable[T]],
    timeout: float = 60.0,  # noqa: ASYNC109
    describe: Callable[[], str] = lambda: "",
) -> T:
    """``await check()``'s first true result; fails the test after ``timeout`` seconds,
    with what ``describe()`` says about the state then."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}. {describe()}")
        await asyncio.sleep(POLL_S)
