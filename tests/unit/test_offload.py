"""Offloader: bounded threads and queue, a deadline per call, 503 naming what the work waited on."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from pitstop.serving.errors import ApiError
from pitstop.serving.offload import Offloader, waiting_on


def _blocked(release: threading.Event) -> str:
    waiting_on("the online store redis://***@r:6379/0")
    release.wait(10)
    return "late"


def test_deadline_names_the_dependency_and_stuck_threads_refuse_at_once() -> None:
    async def scenario() -> None:
        release = threading.Event()
        off = Offloader(threads=1, timeout_ms=200)
        try:
            assert await off.run(lambda x: x + 1, 1) == 2
            t0 = time.monotonic()
            with pytest.raises(ApiError) as stuck:
                await off.run(_blocked, release)
            assert 0.19 < time.monotonic() - t0 < 0.4
            assert stuck.value.status == 503 and stuck.value.code == "store_unavailable"
            assert stuck.value.message.startswith("the online store redis://***@r:6379/0 did not answer within")
            assert off.in_flight == 1  # the thread is still blocked: it keeps counting

            # every thread has been blocked for longer than the deadline: new calls are refused at once
            await asyncio.sleep(0.02)
            t0 = time.monotonic()
            with pytest.raises(ApiError) as full:
                await off.run(lambda: "never")
            assert time.monotonic() - t0 < 0.05
            assert "all 1 threads of this worker are busy" in full.value.message
            assert "the online store redis://***@r:6379/0 is slow or unreachable" in full.value.message

            release.set()  # the dependency answers again: the thread frees up, new calls succeed
            for _ in range(100):
                if off.in_flight == 0:
                    break
                await asyncio.sleep(0.01)
            assert off.in_flight == 0
            assert await off.run(lambda: "ok") == "ok"
        finally:
            release.set()
            off.close()

    asyncio.run(scenario())


def test_the_wait_queue_is_bounded() -> None:
    async def scenario() -> None:
        release = threading.Event()
        off = Offloader(threads=1, timeout_ms=5000)
        off.limit = 3  # one running, two waiting
        try:
            calls = [asyncio.ensure_future(off.run(_blocked, release)) for _ in range(3)]
            await asyncio.sleep(0.05)
            assert off.in_flight == 3
            t0 = time.monotonic()
            with pytest.raises(ApiError) as full:
                await off.run(lambda: "never")
            assert time.monotonic() - t0 < 0.05 and "(2 requests wait for one)" in full.value.message
            release.set()
            assert await asyncio.gather(*calls) == ["late"] * 3
        finally:
            release.set()
            off.close()

    asyncio.run(scenario())


def test_calls_that_time_out_while_queued_never_run() -> None:
    async def scenario() -> None:
        release = threading.Event()
        ran: list[int] = []
        off = Offloader(threads=1, timeout_ms=100)
        try:
            first = asyncio.ensure_future(off.run(_blocked, release, timeout=5))
            await asyncio.sleep(0.02)
            with pytest.raises(ApiError) as queued:
                await off.run(ran.append, 1)
            assert "no thread of this worker became free" in queued.value.message
            assert off.in_flight == 1  # the cancelled call no longer counts
            release.set()
            assert await first == "late"
            await asyncio.sleep(0.05)
            assert ran == []
        finally:
            release.set()
            off.close()

    asyncio.run(scenario())


def test_zero_threads_runs_inline() -> None:
    async def scenario() -> None:
        off = Offloader(threads=0, timeout_ms=1)
        assert await off.run(threading.get_ident) == threading.get_ident()

    asyncio.run(scenario())
