"""deploy/redis: a least-privilege ACL template holding no password; a durable, no-eviction conf."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.deploy_files import DEPLOY

pytestmark = pytest.mark.deploy

ACL = DEPLOY / "redis" / "users.acl"
CONF = DEPLOY / "redis" / "redis.conf"
PLACEHOLDER = "#@GUIDEPOST_REDIS_PASSWORD_SHA256@"

# The Redis commands Guidepost's workers and API send (the deployment brief's list).
ALLOWED = {
    "client|setinfo",
    "client|setname",
    "cluster|nodes",
    "cluster|shards",
    "cluster|slots",
    "eval",
    "evalsha",
    "exec",
    "exists",
    "expire",
    "get",
    "mget",
    "del",
    "hdel",
    "hello",
    "hget",
    "hmget",
    "hgetall",
    "hkeys",
    "hincrby",
    "incr",
    "hset",
    "info",
    "multi",
    "ping",
    "sadd",
    "script|load",
    "script|exists",
    "discard",
    "xread",
    "set",
    "smembers",
    "unwatch",
    "watch",
    "xack",
    "xadd",
    "xautoclaim",
    "xdel",
    "xgroup|create",
    "xinfo|groups",
    "xinfo|stream",
    "xlen",
    "xpending",
    "xrange",
    "xreadgroup",
    "xrevrange",
    "xtrim",
    "zadd",
    "zcard",
    "zrangebyscore",
    "zrange",
    "zrem",
}
DANGEROUS = {"flushall", "flushdb", "config", "keys", "debug", "shutdown", "acl", "module", "scan"}


def users() -> dict[str, list[str]]:
    lines = [line.split() for line in ACL.read_text().splitlines() if line.strip()]
    assert all(words[0] == "user" for words in lines), "an ACL file holds only `user` lines"
    return {words[1]: words[2:] for words in lines}


def conf() -> dict[str, str]:
    lines = [line.split(maxsplit=1) for line in CONF.read_text().splitlines()]
    return {words[0]: words[1] for words in lines if words and not words[0].startswith("#")}


def granted(rules: list[str]) -> set[str]:
    return {rule[1:] for rule in rules if rule.startswith("+")}


def test_default_user_is_disabled_with_nothing_granted() -> None:
    rules = users()["default"]

    assert "off" in rules
    assert "on" not in rules
    assert "-@all" in rules
    assert granted(rules) == set()
    assert [rule for rule in rules if rule.startswith(("~", "%", "&", ">", "#"))] == []


def test_guidepost_user_may_run_exactly_the_commands_guidepost_sends() -> None:
    rules = users()["guidepost"]

    assert rules[0] == "on"
    assert rules.index("-@all") < min(rules.index(f"+{c}") for c in granted(rules))
    assert granted(rules) == ALLOWED


def test_guidepost_user_gets_no_blanket_grants_or_dangerous_commands() -> None:
    rules = users()["guidepost"]
    blanket = {"+@all", "allcommands", "allkeys", "~*", "allchannels", "&*", "nopass"}

    assert blanket & set(rules) == set()
    assert [rule for rule in rules if rule.startswith("+@")] == []
    assert {command.split("|")[0] for command in granted(rules)} & DANGEROUS == set()


def test_guidepost_user_reaches_only_guidepost_keys_and_no_channels() -> None:
    rules = users()["guidepost"]

    assert [rule for rule in rules if rule.startswith(("~", "%"))] == ["~guidepost:*"]
    assert "resetkeys" in rules
    assert "resetchannels" in rules


def test_acl_template_holds_a_placeholder_and_never_a_password(compose: dict[str, Any]) -> None:
    rules = users()["guidepost"]
    render = compose["services"]["redis"]["entrypoint"][2]

    assert [rule for rule in rules if rule.startswith((">", "#"))] == [PLACEHOLDER]
    assert f"s/{PLACEHOLDER[1:]}/" in render
    assert "sha256sum" in render


def test_redis_conf_is_durable_acl_only_and_never_evicts(compose: dict[str, Any]) -> None:
    settings = conf()
    render = compose["services"]["redis"]["entrypoint"][2]

    assert settings["appendonly"] == "yes"
    assert settings["appendfsync"] == "everysec"
    assert settings["maxmemory-policy"] == "noeviction"
    assert settings["protected-mode"] == "yes"
    assert settings["dir"] == "/data"
    assert f"> {settings['aclfile']}" in render
    assert "requirepass" not in settings
