"""Open-loop HTTP load at a fixed request rate, for bench/serve.py's mode (b).

Request ``i`` is due at ``t0 + i / rate``. A dispatcher thread sleeps until each due time
(``time.sleep``: sub-millisecond precision, unlike asyncio timers, which round up to whole
milliseconds) and hands the request to an asyncio loop, where the first free one of
``connections`` keep-alive HTTP/1.1 connections sends it. Latency runs from the due time to the
last byte of the answer, so time spent waiting for a free connection or for a slow server counts
(no coordinated omission). Two lags are reported apart: ``dispatch_lag``, how late the generator's
own timer handed a request over (its precision, independent of the server), and ``send_lag``, due
time -> write on a connection (includes waiting for a free connection when the server falls behind).

Bounded: exactly ``round(rate * duration)`` requests; whatever has not finished
``drain`` seconds after the last due time is counted as unfinished (an error). Any answer outside
2xx, and any connection failure, is an error too; ``completed_ok`` counts only 2xx answers.

    python bench/serve_load.py URL BODIES_FILE [--rate 500] [--duration 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (nan when empty)."""
    if not sorted_values:
        return math.nan
    return sorted_values[max(0, math.ceil(fraction * len(sorted_values)) - 1)]


def build_requests(url: str, bodies: list[bytes], authorization: str | None = None) -> list[bytes]:
    """Pre-serialize one complete POST request per body (with an ``Authorization`` header if given)."""
    parts = urlsplit(url)
    host = f"{parts.hostname}:{parts.port}"
    path = parts.path or "/"
    auth = f"Authorization: {authorization}\r\n" if authorization else ""
    return [
        (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{auth}"
         f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        for body in bodies
    ]


class _Closed(Exception):
    """The server closed the connection before answering."""


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one HTTP/1.1 response; return (status, server wants the connection closed)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise _Closed from exc
        raise
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip().lower()
    if headers.get("transfer-encoding", "") == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers.get("connection") == "close"


async def _run(url: str, requests: list[bytes], rate: float, duration: float, connections: int,
               drain: float) -> dict:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    count = round(rate * duration)
    latency: list[float | None] = [None] * count
    lag: list[float] = [0.0] * count
    dispatch_lag: list[float] = [0.0] * count
    statuses: dict[str, int] = {}
    failures = {"connection": 0, "unfinished": 0}
    reconnects = 0
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    stop = threading.Event()

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(host, port)

    conns = [await connect() for _ in range(connections)]

    async def worker(slot: int) -> None:
        nonlocal reconnects
        reader, writer = conns[slot]
        while True:
            item = await queue.get()
            if item is None:
                break
            i, due = item
            payload = requests[i % len(requests)]
            for attempt in (0, 1):
                try:
                    lag[i] = time.perf_counter() - due
                    writer.write(payload)
                    status, close = await _read_response(reader)
                except (_Closed, ConnectionError, asyncio.IncompleteReadError, OSError) as exc:
                    writer.close()
                    reader, writer = await connect()
                    conns[slot] = (reader, writer)
                    reconnects += 1
                    # A keep-alive connection the server closed while idle: resend once on a new one.
                    if attempt == 0 and isinstance(exc, _Closed):
                        continue
                    failures["connection"] += 1
                    break
                latency[i] = time.perf_counter() - due
                key = str(status)
                statuses[key] = statuses.get(key, 0) + 1
                if close:
                    writer.close()
                    reader, writer = await connect()
                    conns[slot] = (reader, writer)
                    reconnects += 1
                break

    t0 = time.perf_counter() + 0.05

    def dispatch() -> None:
        for i in range(count):
            due = t0 + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            if stop.is_set():
                return
            dispatch_lag[i] = time.perf_counter() - due
            loop.call_soon_threadsafe(queue.put_nowait, (i, due))
        for _ in range(connections):
            loop.call_soon_threadsafe(queue.put_nowait, None)

    cpu0 = time.process_time()
    workers = [asyncio.create_task(worker(s)) for s in range(connections)]
    thread = threading.Thread(target=dispatch, daemon=True)
    thread.start()
    done, pending = await asyncio.wait(workers, timeout=duration + drain + 0.05)
    stop.set()
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        if task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
    thread.join(timeout=5)
    end = time.perf_counter()
    cpu = time.process_time() - cpu0
    for _, writer in conns:
        writer.close()

    finished = [x for x in latency if x is not None]
    ok = sum(n for s, n in statuses.items() if s.startswith("2"))
    failures["unfinished"] = count - len(finished) - failures["connection"]
    non_2xx = sum(n for s, n in statuses.items() if not s.startswith("2"))
    errors = non_2xx + failures["connection"] + failures["unfinished"]
    finished_ms = sorted(x * 1000 for x in finished)
    dispatch_ms = sorted(x * 1000 for x in dispatch_lag)
    lag_ms = sorted(x * 1000 for x, lat in zip(lag, latency, strict=True) if lat is not None)
    last_done = max((t0 + i / rate + x for i, x in enumerate(latency) if x is not None), default=end)
    span = last_done - t0
    return {
        "mode": "open_loop", "rate": rate, "duration_s": duration, "connections": connections,
        "requests": count, "completed_ok": ok, "errors": errors, "non_2xx": non_2xx, "statuses": statuses,
        "connection_errors": failures["connection"], "unfinished": failures["unfinished"],
        "reconnects": reconnects,
        "achieved_rps": ok / span if span > 0 else 0.0,
        "p50_ms": percentile(finished_ms, 0.50), "p90_ms": percentile(finished_ms, 0.90),
        "p99_ms": percentile(finished_ms, 0.99), "p999_ms": percentile(finished_ms, 0.999),
        "max_ms": finished_ms[-1] if finished_ms else math.nan,
        "mean_ms": sum(finished_ms) / len(finished_ms) if finished_ms else math.nan,
        "dispatch_lag_p50_ms": percentile(dispatch_ms, 0.50), "dispatch_lag_p99_ms": percentile(dispatch_ms, 0.99),
        "send_lag_p50_ms": percentile(lag_ms, 0.50), "send_lag_p99_ms": percentile(lag_ms, 0.99),
        "send_lag_max_ms": lag_ms[-1] if lag_ms else math.nan,
        "loadgen_cpu_s": cpu, "loadgen_cpu_share": cpu / (end - t0) if end > t0 else 0.0,
    }


def open_loop(url: str, bodies: list[bytes], *, rate: float, duration: float, connections: int = 16,
              drain: float = 10.0, authorization: str | None = None) -> dict:
    """Send ``round(rate * duration)`` POSTs of ``bodies`` (rotated) to ``url`` on schedule; return the figures.

    Runs on uvloop when it is installed (less client overhead per response than asyncio's loop).
    """
    main = _run(url, build_requests(url, bodies, authorization), rate, duration, connections, drain)
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(main)
        result["event_loop"] = "asyncio"
        return result
    result = uvloop.run(main)
    result["event_loop"] = "uvloop"
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("bodies", type=Path, help="file with one JSON body per line")
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    bodies = [line.encode() for line in args.bodies.read_text().splitlines() if line]
    print(json.dumps(open_loop(args.url, bodies, rate=args.rate, duration=args.duration,
                               connections=args.connections)))


if __name__ == "__main__":
    main()
