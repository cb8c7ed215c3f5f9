"""The shipped redis.conf and ACL on a real redis-server, rendered the way compose renders them."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import redis
import yaml
from redis.backoff import NoBackoff
from redis.retry import Retry

from services.common.embedded import EmbeddedRedis, find_redis_server
from tests.deploy.deploy_files import DEPLOY, REPO

pytestmark = [pytest.mark.deploy, pytest.mark.integration]

PASSWORD = "t3st pass/with&sed|chars'\"$x"  # the render must survive any character
TEMPLATE_IN_CONTAINER = "/usr/local/etc/redis/users.acl.template"
ACL_IN_CONTAINER = "/run/redis/users.acl"
BOOTSTRAP_ACL = "user default on nopass ~* &* +@all\n"


def server_version() -> tuple[int, int]:
    banner = subprocess.run(
        [find_redis_server(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"v=(\d+)\.(\d+)", banner)
    assert match, banner
    return int(match[1]), int(match[2])


def render_acl(workdir: Path) -> str:
    """Run the compose entrypoint's own render lines (all but the final exec) with sh."""
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    script = compose["services"]["redis"]["entrypoint"][2].replace("$$", "$")
    lines = [line for line in script.splitlines() if not line.startswith("exec ")]
    rendered = workdir / "users.acl"
    shell = "\n".join(lines).replace(TEMPLATE_IN_CONTAINER, str(DEPLOY / "redis" / "users.acl"))
    shell = shell.replace(ACL_IN_CONTAINER, str(rendered))
    env = {"GUIDEPOST_REDIS_PASSWORD": PASSWORD, "PATH": "/usr/bin:/bin"}
    subprocess.run(["sh", "-ec", shell], env=env, check=True, timeout=10)
    text = rendered.read_text()
    if (7, 0) <= server_version() < (7, 2):  # CLIENT SETINFO is 7.2+; 7.0/7.1 reject its name
        text = text.replace(" +client|setinfo", "")
    return text


def local_conf(server: EmbeddedRedis, aclfile: Path) -> Path:
    """The shipped redis.conf with only its host paths and port moved to the test's."""
    local = {
        "port": str(server.port),
        "bind": "127.0.0.1",
        "dir": str(server.directory),
        "aclfile": str(aclfile),
    }
    lines = []
    for line in (DEPLOY / "redis" / "redis.conf").read_text().splitlines():
        name = line.split(maxsplit=1)[0] if line.strip() else ""
        lines.append(f"{name} {local[name]}" if name in local else line)
    path = server.directory / "guidepost-redis.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def acl_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    workdir = tmp_path_factory.mktemp("acl")
    rendered = render_acl(workdir)
    aclfile = workdir / "active.acl"
    aclfile.write_text(BOOTSTRAP_ACL)  # EmbeddedRedis pings as `default` until ACL LOAD
    server = EmbeddedRedis()
    server.extra_args = ("--include", str(local_conf(server, aclfile)))
    with server:
        aclfile.write_text(rendered)
        with redis.Redis(port=server.port) as bootstrap:
            assert bootstrap.acl_load() is True
        yield server


def as_guidepost(server: EmbeddedRedis, password: str = PASSWORD) -> redis.Redis:
    return connect(server, username="guidepost", password=password)


def connect(
    server: EmbeddedRedis, *, username: str | None = None, password: str | None = None
) -> redis.Redis:
    """No retries: a refused login should fail at once, not after redis-py's backoff."""
    return redis.Redis(
        port=server.port, username=username, password=password, retry=Retry(NoBackoff(), 0)
    )


@pytest.fixture
def client(acl_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    with as_guidepost(acl_server) as connection:
        yield connection


@pytest.fixture
def company() -> str:
    return f"{{TEST{uuid4().hex[:8].upper()}}}"


def test_guidepost_user_runs_a_stream_round_trip_on_its_keys(
    client: redis.Redis, company: str
) -> None:
    stream = f"guidepost:{company}:in"
    client.xgroup_create(stream, "ingest", id="0", mkstream=True)
    client.xadd(stream, {"__data__": "{}"}, maxlen=1000, approximate=True)

    delivered: Any = client.xreadgroup("ingest", "c1", {stream: ">"}, count=10)
    (entry_id, _), *_ = delivered[0][1]
    acked = client.xack(stream, "ingest", entry_id)

    assert acked == 1
    assert client.xinfo_groups(stream)[0]["pending"] == 0
    assert client.xautoclaim(stream, "ingest", "c2", min_idle_time=0)[1] == []


def test_guidepost_user_writes_state_in_a_transaction_and_in_lua(
    client: redis.Redis, company: str
) -> None:
    key = f"guidepost:{company}:facts"
    with client.pipeline(transaction=True) as pipe:
        pipe.hset(key, "revenue", "1")
        pipe.hincrby(key, "version", 1)
        pipe.expire(key, 60)
        pipe.execute()
    script = client.register_script("return redis.call('HGET', KEYS[1], ARGV[1])")

    assert script(keys=[key], args=["revenue"]) == b"1"
    assert client.hgetall(key) == {b"revenue": b"1", b"version": b"1"}


def test_a_key_outside_guidepost_is_refused(client: redis.Redis) -> None:
    with pytest.raises(redis.exceptions.NoPermissionError, match="no permissions to access"):
        client.set("elsewhere:key", "1")


def test_a_script_cannot_reach_outside_guidepost_either(client: redis.Redis) -> None:
    with pytest.raises(redis.exceptions.ResponseError, match=r"(?i)no permissions"):
        client.eval("return redis.call('GET', KEYS[1])", 1, "elsewhere:key")


@pytest.mark.parametrize(
    "command",
    [
        ("FLUSHALL",),
        ("CONFIG", "GET", "*"),
        ("KEYS", "*"),
        ("SELECT", "1"),
        ("ACL", "LIST"),
    ],
    ids=lambda command: command[0].lower(),
)
def test_dangerous_commands_are_refused(client: redis.Redis, command: tuple[str, ...]) -> None:
    with pytest.raises(redis.exceptions.NoPermissionError, match="has no permissions to run"):
        client.execute_command(*command)  # type: ignore[no-untyped-call]


def test_a_wrong_password_fails_with_a_clear_error(acl_server: EmbeddedRedis) -> None:
    with (
        as_guidepost(acl_server, password="wrong") as intruder,
        pytest.raises(redis.exceptions.AuthenticationError, match="invalid username-password"),
    ):
        intruder.ping()


def test_the_default_user_is_off(acl_server: EmbeddedRedis) -> None:
    with (
        connect(acl_server) as anonymous,
        pytest.raises(redis.exceptions.AuthenticationError, match=r"(?i)authenticat"),
    ):
        anonymous.ping()


def test_the_shipped_conf_is_in_force(client: redis.Redis) -> None:
    info: dict[str, Any] = client.info("persistence") | client.info("memory")

    assert info["aof_enabled"] == 1
    assert info["maxmemory_policy"] == "noeviction"
