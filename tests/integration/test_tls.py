"""Workers reach Redis over TLS (`rediss://` with a CA file) and run the whole path."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from schemas.alerts import AlertKind
from services.common.embedded import find_redis_server, free_port
from services.common.settings import WorkerSettings
from tests.support.pipeline import (
    all_alerts,
    client_under_test,
    pipeline,
    publish_and_settle,
    synthetic_company,
)

pytestmark = pytest.mark.integration


def make_certificates(directory: Path) -> None:
    """A throwaway CA and a server certificate for 127.0.0.1."""

    def openssl(*args: str) -> None:
        subprocess.run(
            ["openssl", *args], cwd=directory, check=True, capture_output=True, timeout=60
        )

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
            "-days", "1", "-subj", "/CN=guidepost-test-ca")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1")  # fmt: skip
    (directory / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.crt", "-days", "1", "-extfile", "san.cnf")  # fmt: skip


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the test certificates")
    make_certificates(tmp_path)
    port = free_port()
    server = subprocess.Popen(
        [find_redis_server(), "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", "server.crt", "--tls-key-file", "server.key", "--tls-ca-cert-file", "ca.crt",
         "--tls-auth-clients", "no", "--save", "", "--dir", str(tmp_path)],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for_tls(port, tmp_path / "ca.crt")
        yield f"rediss://127.0.0.1:{port}/0", tmp_path / "ca.crt"
    finally:
        server.terminate()
        server.wait(timeout=10)


def _wait_for_tls(port: int, ca: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with redis.Redis(port=port, ssl=True, ssl_ca_certs=str(ca)) as client:
                if client.ping():
                    return
        except redis.ConnectionError:
            time.sleep(0.05)
    pytest.fail("the TLS Redis did not answer")


@pytest.mark.timeout(120)
async def test_the_whole_path_runs_over_tls_with_a_ca_file(
    tls_redis: tuple[str, Path], namespace: str
) -> None:
    url, ca = tls_redis
    settings = WorkerSettings.model_validate(
        {**client_under_test(), "redis_url": url, "redis_tls_ca_file": str(ca),
         "namespace": namespace, "claim_idle_ms": 500, "coalesce_ms": 20, "block_ms": 50}
    )  # fmt: skip
    events = synthetic_company(
        "ACME", first="2021Q1", values=[10, 11, 12, 12, 13, 14, 15, 15], guided=(15, 17)
    )
    async with pipeline(settings) as workers:
        await publish_and_settle(workers, events)
        alerts = await all_alerts(workers)
    assert [a.kind for a in alerts].count(AlertKind.BAND_CHECK) == 1
