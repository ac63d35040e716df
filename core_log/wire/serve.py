"""``python -m core_log serve``: a standalone cluster with Kafka listeners, for people who want a local broker.

The cluster keeps its data in real segment files under ``data_dir``; its clock
follows the wall clock. Ctrl-C (SIGINT) or SIGTERM closes the listeners and
shuts the brokers down cleanly (their logs are flushed).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import TextIO

from core_log.cluster import Cluster
from core_log.wire.gateway import AUTO_CREATE_PARTITIONS, AUTO_CREATE_REPLICATION
from core_log.wire.server import WireServer



async def serve(brokers: int, port: int, data_dir: str, seed: int = 0, topics: list[str] | None = None,
                out: TextIO = sys.stdout, ready: asyncio.Event | None = None,
                stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set (or SIGINT/SIGTERM); print the bootstrap address once listening."""
    cluster = Cluster(brokers=brokers, seed=seed, storage="file", data_dir=data_dir)
    for name in topics or ():
        cluster.create_topic(name, AUTO_CREATE_PARTITIONS, min(AUTO_CREATE_REPLICATION, brokers),
                             {"min.insync.replicas": min(2, brokers)})
    cluster.run_for(500)  # elect the controller's first leaders before clients arrive
    server = WireServer(cluster, base_port=port)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread (tests): stop comes from the caller
            pass
    await server.start()
    print(f"serving {brokers} broker(s) on {server.bootstrap()} (data in {data_dir}); Ctrl-C stops",
          file=out, flush=True)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        await server.close()
        for broker in cluster.brokers.values():
            if broker.alive:
                broker.shutdown()
        print("stopped; logs flushed", file=out, flush=True)


def run_serve(brokers: int, port: int, data_dir: str, seed: int = 0, topics: list[str] | None = None) -> None:
    """:func:`serve` on a fresh event loop, until Ctrl-C (what ``python -m core_log serve`` calls)."""
    asyncio.run(serve(brokers, port, data_dir, seed=seed, topics=topics))
