"""deploy/redis/render-acl.sh, the script the compose entrypoint runs: hashes each role's password,
leaves a role without one off, refuses placeholders, follows the namespace and the server."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
import redis
import yaml

from tests.deploy.acl_servers import (
    FLAVOURS,
    RENDER,
    TEMPLATE,
    acl_server,
    render,
    role_passwords,
    server_binary,
    server_version,
)
from tests.deploy.deploy_files import (
    OUTSIDE_ROLES,
    REPO,
    ROLES,
    SERVICE_ROLES,
    role_password_variable,
)

pytestmark = pytest.mark.deploy


def users(text: str) -> dict[str, list[str]]:
    return {words[1]: words[2:] for words in (line.split() for line in text.splitlines())}


@pytest.fixture(scope="module")
def binary() -> str:
    return server_binary("redis")


def test_each_role_gets_the_sha256_of_its_own_password(binary: str) -> None:
    passwords = role_passwords()  # spaces, quotes, &, |, $ and / included

    result = render(binary, passwords)

    assert result.returncode == 0, result.stderr
    rendered = users(result.stdout)
    for role in ROLES:
        digest = hashlib.sha256(passwords[role].encode()).hexdigest()
        assert rendered[role][:3] == ["on", "resetpass", f"#{digest}"], role
    assert all(password not in result.stdout for password in passwords.values())
    assert "#@" not in result.stdout


def test_a_role_without_a_password_is_rendered_off_and_the_log_says_so(binary: str) -> None:
    passwords = {role: pw for role, pw in role_passwords().items() if role != "subscriber"}

    result = render(binary, passwords)

    assert result.returncode == 0, result.stderr
    subscriber = users(result.stdout)["subscriber"]
    assert subscriber[:2] == ["off", "resetpass"]
    assert [rule for rule in subscriber if rule.startswith(("#", ">"))] == []
    assert f"{role_password_variable('subscriber')} is not set: its user is off" in result.stderr


def test_a_placeholder_password_from_the_example_env_is_refused(binary: str) -> None:
    passwords = role_passwords() | {"api": "replace-with-a-long-random-password"}

    result = render(binary, passwords)

    assert result.returncode == 1
    assert role_password_variable("api") in result.stderr
    assert result.stdout == ""


def test_key_patterns_follow_the_namespace(binary: str) -> None:
    result = render(binary, role_passwords(), namespace="acme-prod")

    assert result.returncode == 0, result.stderr
    assert "guidepost:" not in result.stdout
    assert "%R~acme-prod:*" in users(result.stdout)["api"]
    assert "~acme-prod:in:*" in users(result.stdout)["publisher"]


def test_a_namespace_that_is_not_a_plain_name_is_refused(binary: str) -> None:
    result = render(binary, role_passwords(), namespace="a/b*")

    assert result.returncode == 1
    assert "GUIDEPOST_NAMESPACE" in result.stderr


@pytest.mark.parametrize(
    ("version", "has_setinfo"), [("7.0", False), ("7.1", False), ("7.2", True), ("8.0", True)]
)
def test_client_setinfo_is_granted_only_where_the_server_knows_it(
    binary: str, version: str, has_setinfo: bool
) -> None:
    result = render(binary, role_passwords(), version=version)

    assert result.returncode == 0, result.stderr
    assert ("+client|setinfo" in result.stdout) is has_setinfo


@pytest.mark.parametrize("version", ["6.2", "banana"])
def test_a_server_without_the_acl_it_needs_is_refused(binary: str, version: str) -> None:
    result = render(binary, role_passwords(), version=version)

    assert result.returncode == 1
    assert result.stdout == ""
    assert "render-acl:" in result.stderr


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_the_version_is_read_from_the_server_binary(flavour: str) -> None:
    binary = server_binary(flavour)
    result = render(binary, role_passwords())

    assert result.returncode == 0, result.stderr
    assert ("+client|setinfo" in result.stdout) is (server_version(binary) >= (7, 2))


def test_the_rendered_file_is_readable_by_its_owner_only(binary: str, tmp_path: Path) -> None:
    out = tmp_path / "users.acl"
    result = render(binary, role_passwords(), out=out)

    assert result.returncode == 0, result.stderr
    assert out.stat().st_mode & 0o777 == 0o600


def compose_entrypoint_render(binary: str, passwords: dict[str, str], workdir: Path) -> str:
    """Run the compose redis entrypoint's own lines (all but the final exec) with sh, its
    container paths moved to the repository's files, its environment as compose sets it."""
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    script = compose["services"]["redis"]["entrypoint"][2].replace("$$", "$")
    lines = [line for line in script.splitlines() if not line.startswith("exec ")]
    rendered = workdir / "users.acl"
    shell = "\n".join(lines)
    for container_path, local in (
        ("/usr/local/etc/redis/users.acl.template", TEMPLATE),
        ("/usr/local/etc/redis/render-acl.sh", RENDER),
        ("/run/redis/users.acl", rendered),
    ):
        shell = shell.replace(container_path, str(local))
    env = {"PATH": "/usr/bin:/bin", "REDIS_SERVER": binary}
    env |= {role_password_variable(role): pw for role, pw in passwords.items()}
    subprocess.run(["sh", "-ec", shell], env=env, check=True, timeout=30, capture_output=True)
    return rendered.read_text()


@pytest.mark.integration
def test_the_compose_entrypoint_renders_an_acl_the_server_loads(tmp_path: Path) -> None:
    """As shipped in compose: the service users log in; the outside users, left without a
    password in .env, stay off."""

    def as_compose_renders(passwords: dict[str, str]) -> str:
        given = {role: pw for role, pw in passwords.items() if role in SERVICE_ROLES}
        return compose_entrypoint_render(server_binary("redis"), given, tmp_path)

    with acl_server("redis", as_compose_renders) as server:
        for role in SERVICE_ROLES:
            with server.as_role(role) as client:
                assert client.ping() is True
        for role in OUTSIDE_ROLES:
            with (
                server.as_role(role) as client,
                pytest.raises(redis.exceptions.AuthenticationError),
            ):
                client.ping()
