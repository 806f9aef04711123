"""A local Valkey Cluster of three primaries, from the embedded ``valkey-server``.

For tests, benchmarks and trying a cluster deployment on one machine: each
primary is an ``EmbeddedValkey`` (same binary, same data-directory lock, same
AOF) started with cluster mode on, in ``<data dir>/node-<i>`` on a loopback
port. On the first start the slots are split evenly and the nodes are
introduced to each other (what ``valkey-cli --cluster create`` does, done
here with CLUSTER ADDSLOTSRANGE and CLUSTER MEET); later starts reuse the
ports recorded in ``cluster.json``, and the nodes find each other again from
their own ``nodes.conf``. No replicas: it is not a failover test bed.

``python -m server.ops.embedded_cluster run --data-dir DIR`` keeps one running
until SIGTERM or Ctrl-C (``scripts/cluster`` wraps it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from redis.asyncio import Redis

from server.ops.embedded import HOST, EmbeddedValkey, EmbeddedValkeyError, free_port

SLOTS = 16384
STATE_NAME = "cluster.json"
READY_LINE = "giftstream-cluster: ready"


class ClusterStartError(EmbeddedValkeyError):
    """The nodes started but did not form a healthy cluster in time."""


def slot_ranges(primaries: int) -> list[tuple[int, int]]:
    """Slots 0..16383 split into ``primaries`` contiguous, near-equal ranges."""
    bounds = [SLOTS * i // primaries for i in range(primaries + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(primaries)]


class _ClusterNode(EmbeddedValkey):
    """One primary: the embedded Valkey with cluster mode on."""

    def __init__(
        self, data_dir: Path, ports: tuple[int, int], appendfsync: str, node_timeout_ms: int
    ) -> None:
        super().__init__(data_dir, port=ports[0], appendfsync=appendfsync)
        # No password: every node, the cluster bus and a cluster client would
        # all need it. This cluster is a local trial of scale-out, on loopback.
        self.password = ""
        # The cluster bus port is given, not left at port + 10000: a free port
        # above 55535 would put it out of range.
        self.bus_port = ports[1]
        self.node_timeout_ms = node_timeout_ms

    def _arguments(self) -> list[str]:
        return [
            *super()._arguments(),
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-port", str(self.bus_port),
            "--cluster-node-timeout", str(self.node_timeout_ms),
        ]  # fmt: skip

    def client(self) -> Redis:
        return Redis(host=HOST, port=self.port, socket_timeout=5.0, decode_responses=True)


class EmbeddedCluster:
    """``primaries`` cluster-mode Valkeys on loopback, forming one cluster.

    ``async with EmbeddedCluster(path) as cluster:``; ``cluster.url`` is a seed
    node for ``redis.asyncio.cluster.RedisCluster.from_url`` (or
    ``REDIS_URL`` with ``GIFTSTREAM_REDIS_CLUSTER=1``).
    """

    def __init__(
        self,
        data_dir: Path | str,
        *,
        primaries: int = 3,
        ports: Sequence[tuple[int, int]] | None = None,
        appendfsync: str = "always",
        node_timeout_ms: int = 5000,
        form_timeout: float = 30.0,
    ) -> None:
        if primaries < 1:
            raise ValueError("a cluster needs at least one primary")
        if ports is not None and len(ports) != primaries:
            raise ValueError(f"give {primaries} (port, bus port) pairs, one per primary")
        self.data_dir = Path(data_dir).resolve()
        self.primaries = primaries
        self.appendfsync = appendfsync
        self.node_timeout_ms = node_timeout_ms
        self.form_timeout = form_timeout
        self._requested_ports = list(ports) if ports is not None else None
        self.nodes: list[_ClusterNode] = []

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        if not self.nodes:
            raise EmbeddedValkeyError("the embedded cluster has not been started")
        return self.nodes[0].url

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ports = self._ports()
        try:
            for index, port in enumerate(ports):
                node = _ClusterNode(
                    self.data_dir / f"node-{index}", port, self.appendfsync, self.node_timeout_ms
                )
                self.nodes.append(node)
                await node.start()
            self._record(ports)
            await self._form()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        nodes, self.nodes = self.nodes, []
        await asyncio.gather(*(node.stop() for node in nodes), return_exceptions=True)

    async def __aenter__(self) -> EmbeddedCluster:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------ ports

    def _ports(self) -> list[tuple[int, int]]:
        """The recorded ports (nodes.conf names its peers by port), else new ones."""
        state = self.data_dir / STATE_NAME
        if state.exists():
            recorded = [
                (int(port), int(bus))
                for port, bus in json.loads(state.read_text(encoding="utf-8"))["ports"]
            ]
            if len(recorded) != self.primaries:
                raise EmbeddedValkeyError(
                    f"{state} records {len(recorded)} nodes, not {self.primaries}"
                )
            return recorded
        if self._requested_ports is not None:
            return self._requested_ports
        chosen: set[int] = set()
        while len(chosen) < 2 * self.primaries:
            chosen.add(free_port())
        flat = sorted(chosen)
        return [(flat[i], flat[i + self.primaries]) for i in range(self.primaries)]

    def _record(self, ports: list[tuple[int, int]]) -> None:
        state = {"ports": ports, "urls": self.urls}
        (self.data_dir / STATE_NAME).write_text(json.dumps(state) + "\n", encoding="utf-8")

    # ------------------------------------------------------------ forming

    async def _form(self) -> None:
        clients = [node.client() for node in self.nodes]
        try:
            if await self._fresh(clients):
                await self._assign_slots(clients)
            await self._wait_healthy(clients)
        finally:
            for client in clients:
                await client.aclose()

    async def _fresh(self, clients: list[Redis]) -> bool:
        infos = [await _cluster_info(client) for client in clients]
        return all(info["cluster_slots_assigned"] == "0" for info in infos)

    async def _assign_slots(self, clients: list[Redis]) -> None:
        for epoch, (client, (low, high)) in enumerate(
            zip(clients, slot_ranges(self.primaries), strict=True), start=1
        ):
            # Distinct epochs up front, as valkey-cli does: no collision to resolve.
            await _cluster(client, "SET-CONFIG-EPOCH", epoch)
            await _cluster(client, "ADDSLOTSRANGE", low, high)
        for node in self.nodes[1:]:
            await _cluster(clients[0], "MEET", HOST, node.port, node.bus_port)

    async def _wait_healthy(self, clients: list[Redis]) -> None:
        """Until every node sees every node and all slots served ("cluster_state:ok")."""
        deadline = time.monotonic() + self.form_timeout
        while True:
            infos = [await _cluster_info(client) for client in clients]
            if all(_healthy(info, self.primaries) for info in infos):
                return
            if time.monotonic() > deadline:
                raise ClusterStartError(
                    f"the cluster in {self.data_dir} did not become healthy within "
                    f"{self.form_timeout:g} s: {infos}"
                )
            await asyncio.sleep(0.1)


async def _cluster(client: Redis, *args: str | int) -> Any:
    """``CLUSTER <args>`` on one node."""
    return await client.execute_command("CLUSTER", *args)  # type: ignore[no-untyped-call]


async def _cluster_info(client: Redis) -> dict[str, str]:
    text: str = await _cluster(client, "INFO")
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {key: value.strip() for key, value in pairs}


def _healthy(info: dict[str, str], primaries: int) -> bool:
    return (
        info.get("cluster_state") == "ok"
        and info.get("cluster_known_nodes") == str(primaries)
        and info.get("cluster_slots_ok") == str(SLOTS)
    )


# ---------------------------------------------------------------- command line


async def _run(data_dir: Path, base_port: int | None, appendfsync: str) -> int:
    ports = [(base_port + i, base_port + 100 + i) for i in range(3)] if base_port else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    async with EmbeddedCluster(data_dir, ports=ports, appendfsync=appendfsync) as cluster:
        print(f"{READY_LINE} {' '.join(cluster.urls)}", flush=True)
        await stop.wait()
    print("giftstream-cluster: stopped", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m server.ops.embedded_cluster",
        description="Run a local 3-primary Valkey Cluster until SIGTERM or Ctrl-C.",
    )
    parser.add_argument("command", choices=["run"])
    parser.add_argument("--data-dir", type=Path, default=Path(".giftstream/cluster"))
    parser.add_argument(
        "--base-port",
        type=int,
        help="first of 3 consecutive ports; cluster bus on base+100.. (default: free ports)",
    )
    parser.add_argument("--appendfsync", default="always", choices=["always", "everysec", "no"])
    args = parser.parse_args(argv)
    try:
        return asyncio.run(_run(args.data_dir, args.base_port, args.appendfsync))
    except EmbeddedValkeyError as exc:
        print(f"giftstream-cluster: error: {exc}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
