"""A real Alertmanager (Debian's `prometheus-alertmanager`) on a free loopback port, and a
receiver for the notifications it sends.

`make test` installs the package where it runs as root; without it, tests that need the server
skip. The server runs with clustering off and its data in a temporary directory, and is stopped
when the block exits.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from services.common.embedded import free_port

BINARIES = ("prometheus-alertmanager", "alertmanager")
START_TIMEOUT_S = 30


def alertmanager_binary() -> str:
    for name in BINARIES:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Alertmanager: install Debian's prometheus-alertmanager (make test does)")


@dataclass
class NotificationReceiver:
    """Records the webhook notifications Alertmanager sends (its version-4 bodies)."""

    received: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def notifications(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.received)

    @contextlib.contextmanager
    def serving(self) -> Iterator[NotificationReceiver]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.received.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}/notify"
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


@dataclass
class RunningAlertmanager:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        """`GET /api/v2/alerts` (active, silenced and inhibited alerts by default)."""
        response = httpx.get(f"{self.url}/api/v2/alerts", params=filters, timeout=5)
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()
        return found

    def groups(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v2/alerts/groups", timeout=5)
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()
        return found

    def silence(self, matchers: Mapping[str, str], *, for_s: float = 3600) -> str:
        """Create a silence of alerts whose labels equal `matchers`; returns its id."""
        now = datetime.now(UTC)
        body = {
            "matchers": [
                {"name": name, "value": value, "isRegex": False, "isEqual": True}
                for name, value in matchers.items()
            ],
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(seconds=for_s)).isoformat(),
            "createdBy": "guidepost tests",
            "comment": "muting one company",
        }
        response = httpx.post(f"{self.url}/api/v2/silences", json=body, timeout=5)
        response.raise_for_status()
        return str(response.json()["silenceID"])

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def config(*, receiver_url: str, resolve_timeout_s: float, route_on: Mapping[str, str]) -> str:
    """Group by company and period; notify fast; alerts whose labels match `route_on` go to the
    receiver (send_resolved), the rest nowhere."""
    document = {
        "global": {"resolve_timeout": f"{int(resolve_timeout_s * 1000)}ms"},
        "route": {
            "receiver": "nowhere",
            "group_by": ["company", "period"],
            "group_wait": "300ms",
            "group_interval": "1s",
            "repeat_interval": "1h",
            "routes": [
                {
                    "receiver": "guidepost-test",
                    "matchers": [f'{name}="{value}"' for name, value in route_on.items()],
                }
            ],
        },
        "receivers": [
            {"name": "nowhere"},
            {
                "name": "guidepost-test",
                "webhook_configs": [{"url": receiver_url, "send_resolved": True}],
            },
        ],
    }
    return yaml.safe_dump(document, sort_keys=False)


@contextlib.contextmanager
def running_alertmanager(
    *, receiver_url: str, resolve_timeout_s: float, route_on: Mapping[str, str]
) -> Iterator[RunningAlertmanager]:
    binary = alertmanager_binary()
    directory = Path(tempfile.mkdtemp(prefix="guidepost-alertmanager-"))
    config_file = directory / "alertmanager.yml"
    config_file.write_text(
        config(receiver_url=receiver_url, resolve_timeout_s=resolve_timeout_s, route_on=route_on)
    )
    port = free_port()
    log = directory / "alertmanager.log"
    command = [
        binary,
        f"--config.file={config_file}",
        f"--storage.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # a single instance: no gossip port
        "--log.level=info",
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    server = RunningAlertmanager(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_ready(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


def _wait_ready(server: RunningAlertmanager) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"Alertmanager exited at start:\n{server.log_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.url}/-/ready", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"Alertmanager not ready within {START_TIMEOUT_S}s:\n{server.log_text()}")
