"""A 3-master Redis Cluster on loopback ports, for tests that run the path on a cluster."""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import redis
from redis.cluster import RedisCluster

from services.common.embedded import EmbeddedRedis


@dataclass(frozen=True)
class LocalCluster:
    nodes: tuple[EmbeddedRedis, ...]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def node_of(self, key: str) -> int:
        """Which node (by port) serves a key's slot."""
        with RedisCluster.from_url(self.url) as client:
            node = client.get_node_from_key(key)
            return int(node.port)


@contextlib.contextmanager
def local_cluster(masters: int = 3) -> Iterator[LocalCluster]:
    redis_cli = shutil.which("redis-cli")
    if redis_cli is None:
        raise RuntimeError("redis-cli is needed to join a cluster (it ships with redis-server)")
    nodes = [EmbeddedRedis(port=port) for port in cluster_ports(masters)]
    for node in nodes:
        node.extra_args = ("--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{node.port}.conf",
                           "--cluster-node-timeout", "2000")  # fmt: skip
    with contextlib.ExitStack() as stack:
        for node in nodes:
            stack.enter_context(node)
        addresses = [f"127.0.0.1:{node.port}" for node in nodes]
        subprocess.run(
            [redis_cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        _wait_until_ok(nodes)
        yield LocalCluster(tuple(nodes))


def cluster_ports(count: int) -> list[int]:
    """Ports p with p and its cluster bus port p + 10000 both free (so p stays below 55536)."""
    ports: list[int] = []
    candidate = random.randrange(20000, 45000)
    while len(ports) < count:
        candidate += 1
        if _free(candidate) and _free(candidate + 10_000):
            ports.append(candidate)
    return ports


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_until_ok(nodes: list[EmbeddedRedis], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        states = []
        for node in nodes:
            with redis.Redis(port=node.port, decode_responses=True) as client:
                states.append(client.cluster("INFO").get("cluster_state") == "ok")
        if all(states):
            return
        time.sleep(0.1)
    raise TimeoutError("the cluster did not reach cluster_state:ok")
