"""Blocking work off the event loop, under a deadline, on a bounded pool of threads.

Online reads, registry reads, model loads and model calls block (sockets, files, CPU). A worker's
event loop must never wait on them, or one hung Redis freezes every request of the worker,
``/health`` included. ``Offloader.run`` hands such work to a small thread pool and waits for it at
most until the request's deadline; past it the request answers 503 ``store_unavailable`` naming
what the work was waiting on when time ran out.

Invariants:
  * At most ``threads`` calls run at once. When every thread has been blocked for longer than the
    deadline (a hung dependency), new calls answer 503 at once instead of queueing; otherwise at
    most ``MAX_WAITING`` calls wait for a thread (a burst or a slow CPU), each no longer than its
    deadline, and calls beyond that answer 503 at once too. Neither a queue nor memory can grow.
  * A call that missed its deadline cannot be interrupted: its thread stays busy until the
    blocking call returns (bounded by the Redis read timeout). It keeps counting against the limit
    until then, so stuck threads can never exceed ``threads``.
  * Waiting calls whose request already timed out are cancelled before they start.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from pitstop.serving.errors import ApiError

__all__ = ["MAX_WAITING", "Offloader", "waiting_on"]

MAX_WAITING = 256

T = TypeVar("T")

_current = threading.local()


class _DeadlineError(Exception):
    """The deadline of an offloaded call passed (internal; becomes a 503)."""


def _resolve(waiter: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if waiter.done():  # already timed out or cancelled
        return
    if error is not None:
        waiter.set_exception(error)
    else:
        waiter.set_result(result)


class _Call:
    """What one offloaded call is blocked on right now (read by the loop when the deadline passes)."""

    __slots__ = ("dependency", "started", "started_at")

    def __init__(self, dependency: str) -> None:
        self.dependency = dependency
        self.started = False
        self.started_at = 0.0


def waiting_on(dependency: str) -> None:
    """Record, from inside offloaded work, which dependency it is about to wait on (for the 503 message)."""
    call = getattr(_current, "call", None)
    if call is not None:
        call.dependency = dependency


class Offloader:
    """A bounded thread pool with a per-call deadline, one per serving worker.

    Args:
        threads: threads running blocking work; 0 runs it inline on the caller (no deadline).
        timeout_ms: default deadline of one call, in milliseconds.
    """

    def __init__(self, threads: int, timeout_ms: int) -> None:
        self.threads = threads
        self.timeout = timeout_ms / 1000
        self.limit = threads + MAX_WAITING
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="pitstop-io") if threads else None
        self._in_flight = 0  # submitted and not finished (running or waiting)
        self._lock = threading.Lock()  # guards _in_flight: the loop adds, threads (or a cancel) subtract
        self._running: set[_Call] = set()

    @property
    def in_flight(self) -> int:
        """Calls submitted and not yet finished (including ones whose request already timed out)."""
        return self._in_flight

    async def run(self, fn: Callable[..., T], *args: Any, dependency: str = "the scoring service",
                  timeout: float | None = None) -> T:
        """Run ``fn(*args)`` on the pool and return its result, or raise 503 past the deadline.

        Args:
            fn: the blocking function; it may call ``waiting_on`` to name what it waits on.
            args: its positional arguments.
            dependency: what the call waits on until ``fn`` says otherwise.
            timeout: deadline in seconds; default ``serving.request_timeout_ms``.

        Raises:
            ApiError: 503 ``store_unavailable`` at once when every thread has been stuck past the
                deadline or ``MAX_WAITING`` calls already wait, or when this call's deadline passed;
                whatever ``fn`` raises otherwise.
        """
        if self._pool is None:
            return fn(*args)
        limit = self.timeout if timeout is None else timeout
        if self._in_flight >= self.limit or self._all_stuck():
            raise ApiError(503, "store_unavailable", f"all {self.threads} threads of this worker are busy "
                           f"({self._in_flight - self.threads} requests wait for one): {self._blocking(dependency)} "
                           "slow or unreachable; retry later")
        call = _Call(dependency)
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        # A bare loop future resolved from the thread, and a timer: cheaper than wait_for(wrap_future(...)).
        waiter: asyncio.Future[T] = loop.create_future()
        with self._lock:
            self._in_flight += 1
        future = self._pool.submit(self._in_call, call, fn, args, loop, waiter)
        timer = loop.call_later(limit, _resolve, waiter, None, _DeadlineError())
        try:
            return await waiter
        except (_DeadlineError, asyncio.CancelledError) as exc:
            if future.cancel():  # it was still waiting for a thread: it will never run
                self._finished()
            if isinstance(exc, asyncio.CancelledError):  # the client went away
                raise
            waited = round(1000 * (time.monotonic() - started))
            if not call.started:
                raise ApiError(503, "store_unavailable", f"no thread of this worker became free within {waited} ms "
                               f"(serving.request_timeout_ms): {self._blocking(dependency)} slow or unreachable; "
                               "retry later") from None
            raise ApiError(503, "store_unavailable", f"{call.dependency} did not answer within {waited} ms "
                           "(serving.request_timeout_ms); retry later") from None
        finally:
            timer.cancel()

    def _all_stuck(self) -> bool:
        """Every thread runs a call that started longer than the default deadline ago."""
        running = list(self._running)
        if len(running) < self.threads:
            return False
        oldest_ok = time.monotonic() - self.timeout
        return all(c.started_at < oldest_ok for c in running)

    def _blocking(self, default: str) -> str:
        """What the busy threads wait on, as text ("X is" / "X and Y are")."""
        names = sorted({c.dependency for c in list(self._running)}) or [default]
        return f"{' and '.join(names)} {'is' if len(names) == 1 else 'are'}"

    def _in_call(self, call: _Call, fn: Callable[..., Any], args: tuple[Any, ...], loop: asyncio.AbstractEventLoop,
                 waiter: asyncio.Future[Any]) -> None:
        call.started_at = time.monotonic()
        call.started = True
        _current.call = call
        self._running.add(call)
        result: Any = None
        error: BaseException | None = None
        try:
            result = fn(*args)
        except BaseException as exc:  # handed to the awaiting request, which raises it
            error = exc
        finally:
            self._running.discard(call)
            _current.call = None
            self._finished()
        try:
            loop.call_soon_threadsafe(_resolve, waiter, result, error)
        except RuntimeError:  # the loop closed (worker shutting down) while the call was stuck
            pass

    def _finished(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def close(self) -> None:
        """Stop accepting work; threads stuck on a socket are not waited for."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
