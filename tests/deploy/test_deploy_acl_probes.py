"""Each role is refused what it must not do, on the machine's Redis (7.0) and on Valkey 9.

Refusals are checked against what the role may do (each probe's command is one the role has,
on a key it must not touch, or a command it lacks), so a refusal cannot pass for the wrong
reason. An operator ends a runaway script with SCRIPT KILL; nobody else can.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tests.deploy.acl_servers import FLAVOURS, AclServer, acl_server, connect
from tests.deploy.deploy_files import ROLES

pytestmark = [pytest.mark.deploy, pytest.mark.integration]

SCRIPT_ROLES = {"ingest", "forecast", "operator"}
KEY_REFUSED = "no permissions to access"
COMMAND_REFUSED = "has no permissions to run"
BUSY_LOOP = "local n = 0 for i = 1, tonumber(ARGV[1]) do n = n + 1 end return n"
BUSY_ITERATIONS = 3_000_000_000  # bounded: some tens of seconds at most if never killed

# For each role, a command it may run aimed at a key outside the namespace.
OUTSIDE_THE_NAMESPACE: dict[str, tuple[str, ...]] = {
    "ingest": ("HSET", "other:{ACME}:facts", "f", "1"),
    "forecast": ("HSET", "other:{ACME}:forecasts", "f", "1"),
    "guidance": ("HSET", "other:{ACME}:bands", "f", "1"),
    "alerts": ("SET", "other:webhook:lease:x", "1"),
    "api": ("HGETALL", "other:{ACME}:facts"),
    "publisher": ("XADD", "guidepost-evil:in:results", "*", "__data__", "{}"),
    "subscriber": ("XACK", "other:alerts", "group", "0-1"),
    "operator": ("XRANGE", "other:dlq", "-", "+"),
    "scaler": ("XLEN", "other:history"),
}

# (role, command, why it is refused: a command the role lacks, or a key it must not touch)
REFUSED: list[tuple[str, tuple[str, ...], str]] = [
    # the API reads; it never writes, runs scripts or changes a consumer group
    ("api", ("XADD", "guidepost:alerts", "*", "__data__", "{}"), COMMAND_REFUSED),
    ("api", ("HDEL", "guidepost:{forecast}:quarantine", "ACME"), COMMAND_REFUSED),
    ("api", ("ZADD", "guidepost:{webhook}:due", "0", "forged"), COMMAND_REFUSED),
    ("api", ("HSET", "guidepost:{alertmanager}:alerts", "fp", "{}"), COMMAND_REFUSED),
    ("api", ("XADD", "guidepost:in:results", "*", "__data__", "{}"), COMMAND_REFUSED),
    ("api", ("HSET", "guidepost:{ACME}:facts", "net_income|2024Q1", "{}"), COMMAND_REFUSED),
    ("api", ("XTRIM", "guidepost:alerts", "MAXLEN", "0"), COMMAND_REFUSED),
    ("api", ("XDEL", "guidepost:alerts", "0-1"), COMMAND_REFUSED),
    ("api", ("DEL", "guidepost:companies"), COMMAND_REFUSED),
    ("api", ("XGROUP", "CREATE", "guidepost:alerts", "api", "0"), COMMAND_REFUSED),
    (
        "api",
        ("XREADGROUP", "GROUP", "report", "api", "STREAMS", "guidepost:alerts", ">"),
        COMMAND_REFUSED,
    ),
    ("api", ("EVAL", "return 1", "0"), COMMAND_REFUSED),
    ("api", ("EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"), COMMAND_REFUSED),
    ("api", ("SCRIPT", "LOAD", "return 1"), COMMAND_REFUSED),
    ("api", ("FCALL", "anything", "0"), COMMAND_REFUSED),
    (
        "api",
        ("FUNCTION", "LOAD", "#!lua name=x\nredis.register_function('f', function() return 1 end)"),
        COMMAND_REFUSED,
    ),
    # the publisher appends to the input streams and does nothing else
    ("publisher", ("XADD", "guidepost:alerts", "*", "__data__", "{}"), KEY_REFUSED),
    ("publisher", ("XADD", "guidepost:history", "*", "__data__", "{}"), KEY_REFUSED),
    ("publisher", ("XADD", "guidepost:signals", "*", "__data__", "{}"), KEY_REFUSED),
    ("publisher", ("XADD", "guidepost:dlq", "*", "__data__", "{}"), KEY_REFUSED),
    ("publisher", ("XRANGE", "guidepost:in:metrics", "-", "+"), COMMAND_REFUSED),
    ("publisher", ("XTRIM", "guidepost:in:metrics", "MAXLEN", "0"), COMMAND_REFUSED),
    ("publisher", ("XDEL", "guidepost:in:metrics", "0-1"), COMMAND_REFUSED),
    ("publisher", ("DEL", "guidepost:in:metrics"), COMMAND_REFUSED),
    ("publisher", ("HSET", "guidepost:{ACME}:facts", "f", "1"), COMMAND_REFUSED),
    ("publisher", ("ZADD", "guidepost:{forecast}:dirty", "0", "ACME"), COMMAND_REFUSED),
    (
        "publisher",
        ("XREADGROUP", "GROUP", "ingest", "p", "STREAMS", "guidepost:in:metrics", ">"),
        COMMAND_REFUSED,
    ),
    # the subscriber reads and acknowledges the alerts stream and writes nothing
    ("subscriber", ("XADD", "guidepost:alerts", "*", "__data__", "{}"), COMMAND_REFUSED),
    ("subscriber", ("XDEL", "guidepost:alerts", "0-1"), COMMAND_REFUSED),
    ("subscriber", ("XTRIM", "guidepost:alerts", "MAXLEN", "0"), COMMAND_REFUSED),
    ("subscriber", ("DEL", "guidepost:alerts"), COMMAND_REFUSED),
    ("subscriber", ("XGROUP", "DESTROY", "guidepost:alerts", "webhook"), COMMAND_REFUSED),
    ("subscriber", ("XGROUP", "SETID", "guidepost:alerts", "webhook", "$"), COMMAND_REFUSED),
    (
        "subscriber",
        ("XREADGROUP", "GROUP", "g", "s", "STREAMS", "guidepost:history", ">"),
        KEY_REFUSED,
    ),
    ("subscriber", ("XGROUP", "CREATE", "guidepost:in:results", "g", "0"), KEY_REFUSED),
    # each worker writes only its own state: facts and guidance are ingest's, the refit
    # ledger and its quarantine the forecast worker's (and the operator's, who lifts it), the
    # sinks' redelivery schedules, delivered marks and what was posted to Alertmanager the
    # alerts worker's; the others may read the ledger's counts (the Redis gauges), not write it
    ("ingest", ("HSET", "guidepost:{ACME}:forecasts", "f", "1"), KEY_REFUSED),
    ("ingest", ("XADD", "guidepost:alerts", "*", "__data__", "{}"), KEY_REFUSED),
    ("ingest", ("HSET", "guidepost:{forecast}:quarantine", "ACME", "{}"), KEY_REFUSED),
    ("ingest", ("HSET", "guidepost:{webhook}:notices", "forged", "{}"), KEY_REFUSED),
    ("ingest", ("HSET", "guidepost:{alertmanager}:alerts", "fp", "{}"), KEY_REFUSED),
    ("ingest", ("HSET", "guidepost:{forecast}:errors", "ACME", "forged"), KEY_REFUSED),
    ("forecast", ("HSET", "guidepost:{ACME}:facts", "f", "1"), KEY_REFUSED),
    ("forecast", ("HSET", "guidepost:{ACME}:guidance", "f", "1"), KEY_REFUSED),
    ("forecast", ("XADD", "guidepost:in:results", "*", "__data__", "{}"), KEY_REFUSED),
    ("forecast", ("HSET", "guidepost:{webhook}:notices", "forged", "{}"), KEY_REFUSED),
    ("forecast", ("ZADD", "guidepost:{webhook}:due", "0", "forged"), KEY_REFUSED),
    ("forecast", ("ZADD", "guidepost:{alertmanager}:due", "0", "forged"), KEY_REFUSED),
    ("guidance", ("XADD", "guidepost:alerts", "*", "__data__", "{}"), KEY_REFUSED),
    ("guidance", ("HSET", "guidepost:{ACME}:forecasts", "f", "1"), KEY_REFUSED),
    ("guidance", ("HSET", "guidepost:{ACME}:guidance", "f", "1"), KEY_REFUSED),
    ("guidance", ("SET", "guidepost:{ACME}:guidance-seen:e1", "forged"), COMMAND_REFUSED),
    ("guidance", ("HSET", "guidepost:{forecast}:evidence", "ACME", "{}"), KEY_REFUSED),
    ("guidance", ("HDEL", "guidepost:{forecast}:quarantine", "ACME"), KEY_REFUSED),
    ("guidance", ("HSET", "guidepost:{alertmanager}:notices", "forged", "{}"), KEY_REFUSED),
    ("guidance", ("HLEN", "guidepost:{ACME}:alerts"), KEY_REFUSED),
    ("alerts", ("HSET", "guidepost:{ACME}:facts", "f", "1"), KEY_REFUSED),
    ("alerts", ("HSET", "guidepost:silences", "forged", "{}"), KEY_REFUSED),
    ("alerts", ("HDEL", "guidepost:{forecast}:quarantine", "ACME"), KEY_REFUSED),
    ("alerts", ("ZADD", "guidepost:{forecast}:dirty", "0", "ACME"), KEY_REFUSED),
    ("alerts", ("SET", "guidepost:{ACME}:guidance-seen:e1", "forged"), KEY_REFUSED),
    # the scaler reads group state and nothing else
    ("scaler", ("XRANGE", "guidepost:in:metrics", "-", "+"), COMMAND_REFUSED),
    ("scaler", ("XINFO", "GROUPS", "guidepost:alerts"), KEY_REFUSED),
    # the operator works inside the namespace, not on the server; it handles dead letters,
    # silences, facts and the refit and redelivery schedules, never a worker's results
    ("operator", ("EVAL", "return 1", "0"), COMMAND_REFUSED),
    ("operator", ("CONFIG", "SET", "maxmemory-policy", "allkeys-lru"), COMMAND_REFUSED),
    ("operator", ("HSET", "guidepost:{ACME}:forecasts", "f", "1"), KEY_REFUSED),
    ("operator", ("HSET", "guidepost:{ACME}:bands", "f", "1"), KEY_REFUSED),
    ("operator", ("HSET", "guidepost:{forecast}:evidence", "ACME", "{}"), KEY_REFUSED),
    ("operator", ("XADD", "guidepost:trends", "*", "__data__", "{}"), KEY_REFUSED),
    ("operator", ("SET", "guidepost:webhook:delivered:e1", "1"), COMMAND_REFUSED),
    ("operator", ("DEL", "guidepost:{forecast}:quarantine"), COMMAND_REFUSED),
    ("operator", ("HSET", "guidepost:{alertmanager}:alerts", "fp", "{}"), KEY_REFUSED),
    ("operator", ("SET", "guidepost:{alertmanager}:repost-lease", "1"), COMMAND_REFUSED),
]

# Server-wide commands no role may run.
SERVER_WIDE = [
    ("FLUSHALL",),
    ("CONFIG", "GET", "*"),
    ("KEYS", "*"),
    ("SCAN", "0"),
    ("SELECT", "1"),
    ("ACL", "LIST"),
    ("CLIENT", "KILL", "TYPE", "normal"),
    ("SCRIPT", "FLUSH"),
    ("EVAL", "return 1", "0"),
    ("FUNCTION", "FLUSH"),
    ("BGSAVE",),
    ("REPLICAOF", "NO", "ONE"),
    ("MONITOR",),
]


@pytest.fixture(scope="module", params=FLAVOURS)
def server(request: pytest.FixtureRequest) -> Iterator[AclServer]:
    with acl_server(request.param) as running:
        yield running


def refusal(server: AclServer, role: str, command: tuple[str, ...]) -> str:
    with (
        server.as_role(role) as client,
        pytest.raises(redis.exceptions.NoPermissionError) as refused,
    ):
        client.execute_command(*command)  # type: ignore[no-untyped-call]
    return str(refused.value)


@pytest.mark.parametrize("role", ROLES)
def test_every_role_logs_in_and_pings(server: AclServer, role: str) -> None:
    with server.as_role(role) as client:
        assert client.ping() is True


@pytest.mark.parametrize(
    ("role", "command", "reason"),
    REFUSED,
    ids=[
        f"{role}-{' '.join(command[:2]).lower()}-{command[2] if len(command) > 2 else ''}"
        for role, command, _ in REFUSED
    ],
)
def test_a_role_is_refused_what_it_must_not_do(
    server: AclServer, role: str, command: tuple[str, ...], reason: str
) -> None:
    assert reason in refusal(server, role, command).lower()


@pytest.mark.parametrize("role", ROLES)
def test_no_role_reaches_a_key_outside_the_namespace(server: AclServer, role: str) -> None:
    assert KEY_REFUSED in refusal(server, role, OUTSIDE_THE_NAMESPACE[role]).lower()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("command", SERVER_WIDE, ids=lambda command: "-".join(command[:2]).lower())
def test_no_role_runs_a_server_wide_command(
    server: AclServer, role: str, command: tuple[str, ...]
) -> None:
    assert COMMAND_REFUSED in refusal(server, role, command).lower()


@pytest.mark.parametrize("role", ROLES)
def test_scripts_only_for_the_roles_that_run_them(server: AclServer, role: str) -> None:
    with server.as_role(role) as client:
        if role in SCRIPT_ROLES:
            sha = client.script_load("return 1")
            assert client.evalsha(sha, 0) == 1
        else:
            with pytest.raises(redis.exceptions.NoPermissionError, match=COMMAND_REFUSED):
                client.script_load("return 1")


def test_the_api_user_is_granted_no_write_or_scripting_command(server: AclServer) -> None:
    """Read from the server itself: every command the `api` user may run is read-only."""
    with server.admin(decode_responses=True) as admin:
        rules: str = next(r for r in admin.acl_list() if r.startswith("user api "))
        granted = [word[1:] for word in rules.split() if word.startswith("+")]
        flags = {name: command_flags(admin, name) for name in granted}

    assert [name for name, f in flags.items() if "write" in f or "@scripting" in f] == []
    assert {"readonly", "@read"} <= flags["hgetall"]  # the flags were really read
    assert [word for word in rules.split() if word.startswith("~")] == []  # no write keys
    assert "%R~guidepost:*" in rules.split()


def command_flags(admin: redis.Redis, name: str) -> set[str]:
    """A command's flags and ACL categories (`client|setinfo` looks up CLIENT's subcommand)."""
    parent, _, sub = name.partition("|")
    info: Any = admin.execute_command("COMMAND", "INFO", parent)  # type: ignore[no-untyped-call]
    entry = info[parent]
    if sub:
        (found,) = [s for s in entry["subcommands"] if s[0] == name]
        return {str(flag) for flag in found[2]} | {str(category) for category in found[6]}
    return {str(flag) for flag in entry["flags"]} | {str(c) for c in entry["acl_categories"]}


def test_a_script_cannot_reach_outside_the_namespace(server: AclServer) -> None:
    with server.as_role("ingest") as ingest:
        declared = ingest.script_load("return redis.call('GET', KEYS[1])")
        undeclared = ingest.script_load("return redis.call('SET', 'elsewhere:key', '1')")
        with pytest.raises(redis.exceptions.ResponseError, match=r"(?i)no permissions"):
            ingest.evalsha(declared, 1, "elsewhere:key")
        with pytest.raises(
            redis.exceptions.ResponseError, match=r"(?i)can't access|no permissions"
        ):
            ingest.evalsha(undeclared, 0)
    with server.admin() as admin:
        assert admin.exists("elsewhere:key") == 0


def test_an_operator_kills_a_runaway_script_nobody_else_can(server: AclServer) -> None:
    """A role that may run scripts starts an endless-looking loop (bounded by its count);
    while Redis answers BUSY to everyone, only the operator's SCRIPT KILL is accepted."""
    with server.admin() as admin:
        admin.config_set("busy-reply-threshold", 100)  # the default 5 s, shortened for the test
    try:
        outcome = run_and_kill(server)
    finally:
        with server.admin() as admin:
            admin.config_set("busy-reply-threshold", 5000)

    assert outcome["others"] == {"ingest": COMMAND_REFUSED, "api": COMMAND_REFUSED}
    assert outcome["killed"] is True
    assert "killed" in outcome["error"].lower()
    assert outcome["seconds"] < 20


def run_and_kill(server: AclServer) -> dict[str, Any]:
    outcome: dict[str, Any] = {"error": ""}
    with server.as_role("ingest") as ingest:
        sha = ingest.script_load(BUSY_LOOP)

    def runaway() -> None:
        with server.as_role("ingest", socket_timeout=60) as runner:
            try:
                runner.evalsha(sha, 0, BUSY_ITERATIONS)
            except redis.exceptions.ResponseError as error:
                outcome["error"] = str(error)

    started = time.monotonic()
    thread = threading.Thread(target=runaway, daemon=True)
    thread.start()
    with server.as_role("operator") as operator:
        wait_until_busy(operator)
        outcome["others"] = {role: script_kill_refusal(server, role) for role in ("ingest", "api")}
        outcome["killed"] = operator.script_kill()
    thread.join(timeout=30)
    outcome["seconds"] = time.monotonic() - started
    return outcome


def wait_until_busy(client: redis.Redis, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            client.ping()
        except redis.exceptions.ResponseError as error:
            if "BUSY" in str(error):
                return
            raise
    pytest.fail("the script never made Redis busy")


def script_kill_refusal(server: AclServer, role: str) -> str:
    with server.as_role(role) as client:
        try:
            client.script_kill()
        except redis.exceptions.NoPermissionError as error:
            return COMMAND_REFUSED if COMMAND_REFUSED in str(error).lower() else str(error)
    return "accepted"


def test_the_default_user_is_off(server: AclServer) -> None:
    with (
        connect(server.port, None, None) as anonymous,
        pytest.raises(redis.exceptions.AuthenticationError, match=r"(?i)authenticat"),
    ):
        anonymous.ping()


@pytest.mark.parametrize("role", ["ingest", "api", "publisher"])
def test_a_wrong_password_fails_with_a_clear_error(server: AclServer, role: str) -> None:
    with (
        connect(server.port, role, "wrong") as intruder,
        pytest.raises(redis.exceptions.AuthenticationError, match="invalid username-password"),
    ):
        intruder.ping()


def test_the_shipped_conf_is_in_force(server: AclServer) -> None:
    with server.admin() as admin:
        info: dict[str, Any] = admin.info("persistence") | admin.info("memory")

    assert info["aof_enabled"] == 1
    assert info["maxmemory_policy"] == "noeviction"


@pytest.mark.timeout(60)
def test_a_worker_with_a_wrong_password_fails_fast_naming_the_user_not_the_secret(
    server: AclServer,
) -> None:
    secret = "wrong-but-secret-7f3a"
    env = {**os.environ, **server.role_env("ingest"), "GUIDEPOST_REDIS_PASSWORD": secret}
    command = [sys.executable, "-m", "services.cli", "run", "--services", "ingest"]

    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=50, check=False
    )

    output = result.stdout + result.stderr
    assert result.returncode == 1  # Redis unreachable or refusing
    assert "Redis refused the credentials of user 'ingest'" in output
    assert secret not in output
