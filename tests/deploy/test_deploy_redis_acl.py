"""deploy/redis: a user per role with no blanket grant and no password in the template; a durable,
no-eviction conf. (What each role may and may not do on a live server: test_deploy_acl_probes.)"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.deploy.deploy_files import DEPLOY, ROLES, role_password_variable

pytestmark = pytest.mark.deploy

ACL = DEPLOY / "redis" / "users.acl"
README = DEPLOY / "README.md"
CONF = DEPLOY / "redis" / "redis.conf"
NAMESPACE = "guidepost"
SCRIPT_ROLES = {"ingest", "forecast", "operator"}
SCRIPTING = {"evalsha", "script|load"}
DANGEROUS = {"flushall", "flushdb", "config", "keys", "debug", "shutdown", "acl", "module", "scan"}
BLANKET = {"+@all", "allcommands", "allkeys", "~*", "%R~*", "%W~*", "allchannels", "&*", "nopass"}


def users() -> dict[str, list[str]]:
    lines = [line.split() for line in ACL.read_text().splitlines() if line.strip()]
    assert all(words[0] == "user" for words in lines), "an ACL file holds only `user` lines"
    return {words[1]: words[2:] for words in lines}


def conf() -> dict[str, str]:
    lines = [line.split(maxsplit=1) for line in CONF.read_text().splitlines()]
    return {words[0]: words[1] for words in lines if words and not words[0].startswith("#")}


def granted(rules: list[str]) -> set[str]:
    return {rule[1:] for rule in rules if rule.startswith("+")}


def key_patterns(rules: list[str]) -> list[str]:
    return [rule for rule in rules if "~" in rule]


def test_the_acl_has_the_default_user_and_one_user_per_role() -> None:
    assert sorted(users()) == sorted(["default", *ROLES])


def test_default_user_is_disabled_with_nothing_granted() -> None:
    rules = users()["default"]

    assert "off" in rules
    assert "on" not in rules
    assert "-@all" in rules
    assert granted(rules) == set()
    assert [rule for rule in rules if rule.startswith(("~", "%", "&", ">", "#"))] == []


@pytest.mark.parametrize("role", ROLES)
def test_each_role_starts_from_nothing_and_holds_only_its_password_placeholder(role: str) -> None:
    rules = users()[role]
    first_grant = min(i for i, rule in enumerate(rules) if rule.startswith("+"))

    assert rules[:3] == ["on", "resetpass", f"#@{role_password_variable(role)}_SHA256@"]
    assert {"resetkeys", "resetchannels"} <= set(rules[:first_grant])
    assert rules.index("-@all") < first_grant
    assert [rule for rule in rules if rule.startswith((">", "<", "&"))] == []


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_no_blanket_category_or_dangerous_command(role: str) -> None:
    rules = users()[role]

    assert BLANKET & set(rules) == set()
    assert [rule for rule in rules if rule.startswith("+@")] == []
    assert {command.split("|")[0] for command in granted(rules)} & DANGEROUS == set()
    assert {"eval", "eval_ro", "fcall", "function"} & granted(rules) == set()


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reaches_only_keys_of_the_namespace(role: str) -> None:
    patterns = key_patterns(users()[role])

    assert patterns != []
    assert [p for p in patterns if p.split("~", 1)[1].split(":")[0] != NAMESPACE] == []
    assert [p for p in patterns if p.split("~", 1)[0] not in {"", "%R"}] == []


@pytest.mark.parametrize("role", ROLES)
def test_scripts_only_where_a_role_runs_them_and_only_the_operator_kills_them(role: str) -> None:
    commands = granted(users()[role])

    assert (commands >= SCRIPTING) is (role in SCRIPT_ROLES)
    assert (SCRIPTING & commands == set()) is (role not in SCRIPT_ROLES)
    assert ("script|kill" in commands) is (role == "operator")


def test_the_api_reads_every_key_and_writes_none() -> None:
    assert key_patterns(users()["api"]) == [f"%R~{NAMESPACE}:*"]


def test_the_publisher_appends_to_the_input_streams_and_nothing_else() -> None:
    rules = users()["publisher"]

    assert granted(rules) == {"ping", "hello", "client|setinfo", "xadd"}
    assert key_patterns(rules) == [f"~{NAMESPACE}:in:*"]


def test_the_subscriber_reads_and_acknowledges_only_the_alerts_stream() -> None:
    rules = users()["subscriber"]

    assert granted(rules) - {"ping", "hello", "client|setinfo"} == {
        "xgroup|create",
        "xreadgroup",
        "xack",
        "xpending",
        "xautoclaim",
    }
    assert key_patterns(rules) == [f"~{NAMESPACE}:alerts"]


def test_the_scaler_reads_group_state_of_the_consumed_streams() -> None:
    rules = users()["scaler"]

    assert granted(rules) - {"ping", "hello", "client|setinfo"} == {
        "xinfo|groups",
        "xpending",
        "xlen",
    }
    assert all(pattern.startswith("%R~") for pattern in key_patterns(rules))


CONNECTION = {"ping", "hello", "client|setinfo", "cluster|slots", "cluster|shards", "cluster|nodes"}


def readme_commands() -> dict[str, set[str]]:
    """The commands column of deploy/README.md's table of Redis users, per user (`consume`
    stands for the consumer commands the ingest row lists in parentheses)."""
    rows = {}
    for line in README.read_text().splitlines():
        if match := re.match(r"\| `(\w+)` \| [^|]+ \| ([^|]+) \|", line):
            rows[match[1]] = match[2]
    consume = _named(re.search(r"consume \(([^)]*)\)", rows["ingest"])[1])  # type: ignore[index]
    return {
        user: _named(text) | (consume if text.startswith("consume") else set())
        for user, text in rows.items()
    }


def _named(text: str) -> set[str]:
    """`HGET`/`HSET`, `XGROUP CREATE` -> hget, hset, xgroup|create"""
    quoted = re.findall(r"`([^`]+)`", text)
    return {name.lower().replace(" ", "|") for word in quoted for name in word.split("/")}


@pytest.mark.parametrize("role", ROLES)
def test_the_readme_lists_exactly_the_commands_each_role_is_granted(role: str) -> None:
    assert readme_commands()[role] == granted(users()[role]) - CONNECTION


def test_compose_renders_the_template_with_the_shipped_script(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    entrypoint = redis["entrypoint"][2]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in redis["volumes"]}

    assert mounts["/usr/local/etc/redis/users.acl.template"] == "./deploy/redis/users.acl"
    assert mounts["/usr/local/etc/redis/render-acl.sh"] == "./deploy/redis/render-acl.sh"
    assert (
        "sh /usr/local/etc/redis/render-acl.sh /usr/local/etc/redis/users.acl.template "
        f"{conf()['aclfile']}" in entrypoint
    )


def test_redis_conf_is_durable_acl_only_and_never_evicts() -> None:
    settings = conf()

    assert settings["appendonly"] == "yes"
    assert settings["appendfsync"] == "everysec"
    assert settings["maxmemory-policy"] == "noeviction"
    assert settings["protected-mode"] == "yes"
    assert settings["dir"] == "/data"
    assert settings["aclfile"] == "/run/redis/users.acl"
    assert "requirepass" not in settings
