"""The cost of taking blocking work off the event loop (issue 10), measured in one process.

    .venv/bin/python bench/serve_offload.py

On uvloop, against a private redis-server, in interleaved rounds (4 x 3000 calls each):
  * one pipelined read of 3 hashes (the shape of a 1-entity /features over 3 views) with the sync
    redis client inline on the loop, the same on a thread through ``Offloader`` (what the service
    does), and with ``redis.asyncio`` on the loop (the alternative);
  * an empty call through ``Offloader`` vs ``loop.run_in_executor`` (the bare thread hop).
Prints the median wall and CPU microseconds per call (CPU of the whole process, all threads).
Then, in the same process with a served app started (tests/serving/conftest.py repo, its models
loaded), the time of a full garbage collection before and after ``gc.freeze()`` (issue 10: the
worker freezes its start-up objects).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis
import redis.asyncio as aredis
import uvloop

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT))
from pitstop.serving.offload import Offloader  # noqa: E402
from tests.integration.redis_server import RedisServer  # noqa: E402

KEYS = [f"bench:{i}" for i in range(3)]
ROUNDS, CALLS, WARMUP = 4, 3000, 200


def sync_read(client: redis.Redis) -> list:
    pipe = client.pipeline(transaction=False)
    for key in KEYS:
        pipe.hmget(key, ["a", "b"])
    return pipe.execute()


async def async_read(client: aredis.Redis) -> list:
    pipe = client.pipeline(transaction=False)
    for key in KEYS:
        pipe.hmget(key, ["a", "b"])
    return await pipe.execute()


async def timed(call: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    for _ in range(WARMUP):
        await call()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(CALLS):
        await call()
    return 1e6 * (time.perf_counter() - wall0) / CALLS, 1e6 * (time.process_time() - cpu0) / CALLS


async def main(url: str) -> None:
    sync_client, async_client = redis.Redis.from_url(url), aredis.Redis.from_url(url)
    for key in KEYS:
        sync_client.hset(key, mapping={"a": b"x" * 200, "b": b"y" * 200})
    offloader = Offloader(threads=4, timeout_ms=1000)
    pool = ThreadPoolExecutor(4)
    loop = asyncio.get_running_loop()

    async def inline() -> object:
        return sync_read(sync_client)

    variants: dict[str, Callable[[], Awaitable[object]]] = {
        "read: sync client inline on the loop": inline,
        "read: sync client on a thread (Offloader)": lambda: offloader.run(sync_read, sync_client),
        "read: redis.asyncio on the loop": lambda: async_read(async_client),
        "empty call: Offloader": lambda: offloader.run(int),
        "empty call: loop.run_in_executor": lambda: loop.run_in_executor(pool, int),
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for _ in range(ROUNDS):
        for name, call in variants.items():
            results[name].append(await timed(call))
    for name, runs in results.items():
        walls, cpus = sorted(w for w, _ in runs), sorted(c for _, c in runs)
        print(f"{name:45s} wall {walls[len(walls) // 2]:6.0f} us  CPU {cpus[len(cpus) // 2]:6.0f} us  (median of {ROUNDS})")
    offloader.close()
    pool.shutdown()
    await async_client.aclose()
    sync_client.close()


def full_collections(tmp: Path) -> None:
    import gc

    from fastapi.testclient import TestClient

    from pitstop.serving import create_app
    from tests.serving.conftest import build_served_repo

    store = build_served_repo(tmp / "repo")
    app = create_app(store=store)
    with TestClient(app) as client:
        cache = client.app.state.service.cache  # type: ignore[attr-defined]
        cache.ready.wait(30)
        gc.unfreeze()  # the worker froze its objects: measure the collection it would otherwise run
        objects = len(gc.get_objects())
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            gc.collect()
            times.append(1000 * (time.perf_counter() - t0))
        gc.freeze()
        frozen = []
        for _ in range(3):
            t0 = time.perf_counter()
            gc.collect()
            frozen.append(1000 * (time.perf_counter() - t0))
    store.close()
    print(f"full gc.collect() with the app and models loaded ({objects:,} tracked objects): "
          f"{min(times):.1f} ms unfrozen, {min(frozen):.1f} ms after gc.freeze() (best of 3)")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp, RedisServer(Path(tmp)) as server:
        uvloop.install()
        asyncio.run(main(server.url))
        full_collections(Path(tmp))
