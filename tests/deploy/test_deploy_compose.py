"""docker-compose.yml and .env.example: schema-valid, every variable real, documented and safe."""

from __future__ import annotations

import importlib.resources
import json
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from services.common.settings import ApiSettings, Service, WorkerSettings
from tests.deploy.deploy_files import (
    INTERPOLATION,
    OUTSIDE_ROLES,
    REPO,
    ROLES,
    SERVICE_ROLES,
    is_secret,
    role_password_variable,
    settings_fields,
)

pytestmark = pytest.mark.deploy

GUIDEPOST_IMAGE_BUILD = "deploy/Dockerfile"
ROLE_PASSWORDS = {role_password_variable(role) for role in ROLES}


def known_variable(name: str) -> bool:
    """A settings field, or a Redis user's password (read by compose and the ACL render)."""
    return name in settings_fields() or name in ROLE_PASSWORDS


def secret_variable(name: str) -> bool:
    return name in ROLE_PASSWORDS or is_secret(settings_fields()[name])


def role_of(service: dict[str, Any]) -> str:
    """The Redis user a compose service should log in as: its worker kind, or `api`."""
    return worker_service(service) or "api"


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def interpolations(compose: dict[str, Any]) -> list[tuple[str, str | None, str]]:
    return [
        (match["name"], match["op"], match["arg"])
        for text in strings(compose)
        for match in INTERPOLATION.finditer(text)
    ]


def guidepost_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("build", {}).get("dockerfile") == GUIDEPOST_IMAGE_BUILD
    }


def worker_service(service: dict[str, Any]) -> str | None:
    command = service.get("command", [])
    if command[:2] == ["run", "--services"]:
        return str(command[2])
    return None


def resolve(text: str, values: dict[str, str]) -> str:
    """Compose's interpolation for the forms this file uses (`:-` and `:?`)."""

    def substitute(match: Any) -> str:
        value = values.get(match["name"], "")
        if value:
            return value
        if match["op"] == ":?":
            raise ValueError(f"{match['name']} is required: {match['arg']}")
        return str(match["arg"]) if match["op"] == ":-" else ""

    return INTERPOLATION.sub(substitute, text).replace("$$", "$")


def container_env(service: dict[str, Any], values: dict[str, str]) -> dict[str, str]:
    """The environment a container gets: pass-through (null) entries only when set."""
    environment: dict[str, str | None] = service.get("environment", {})
    resolved = {key: resolve(value, values) for key, value in environment.items() if value}
    passed = {key: values[key] for key, value in environment.items() if not value and key in values}
    return resolved | passed


def test_compose_file_validates_against_the_compose_spec_schema(compose: dict[str, Any]) -> None:
    pytest.importorskip("check_jsonschema", reason="check-jsonschema ships the compose-spec schema")
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads(vendor.joinpath("compose-spec.json").read_text())

    errors = [error.message for error in Draft202012Validator(schema).iter_errors(compose)]

    assert errors == []


def test_every_variable_compose_reads_is_a_settings_field_or_a_role_password(
    compose: dict[str, Any],
) -> None:
    fields = settings_fields()
    interpolated = {name for name, _, _ in interpolations(compose)}
    environment_keys = {
        key for service in guidepost_services(compose).values() for key in service["environment"]
    }

    assert {name for name in interpolated if not known_variable(name)} == set()
    assert environment_keys - fields.keys() == set()


def passed_through(compose: dict[str, Any]) -> set[str]:
    """Variables a service takes from .env or the shell as they are (null entries)."""
    return {
        key
        for service in compose["services"].values()
        for key, value in service.get("environment", {}).items()
        if value is None
    }


def test_env_example_lists_every_variable_compose_reads(
    compose: dict[str, Any], env_example: tuple[dict[str, str], dict[str, str]]
) -> None:
    active, commented = env_example
    read = {name for name, _, _ in interpolations(compose)} | passed_through(compose)

    assert read - (active.keys() | commented.keys()) == set()
    assert {name for name in active.keys() | commented.keys() if not known_variable(name)} == set()


def test_env_example_holds_placeholders_not_secrets(
    env_example: tuple[dict[str, str], dict[str, str]],
) -> None:
    active, commented = env_example
    secrets = {name: value for name, value in (active | commented).items() if secret_variable(name)}

    assert secrets.keys() >= ROLE_PASSWORDS
    assert {name: value.startswith("replace-with-") for name, value in secrets.items()} == {
        name: True for name in secrets
    }
    assert [name for name, value in active.items() if value == ""] == []


def test_every_role_has_its_own_placeholder_so_none_is_shared_by_mistake(
    env_example: tuple[dict[str, str], dict[str, str]],
) -> None:
    active, commented = env_example
    placeholders = [(active | commented)[variable] for variable in ROLE_PASSWORDS]

    assert len(set(placeholders)) == len(ROLE_PASSWORDS)
    assert {role_password_variable(role) for role in SERVICE_ROLES} <= active.keys()
    assert {role_password_variable(role) for role in OUTSIDE_ROLES} <= commented.keys()


def test_secrets_are_required_and_never_defaulted(compose: dict[str, Any]) -> None:
    secret_uses = [
        (name, op, arg) for name, op, arg in interpolations(compose) if secret_variable(name)
    ]

    assert {role_password_variable(role) for role in SERVICE_ROLES} == {
        name for name, op, _ in secret_uses if op == ":?"
    }
    assert [(name, op) for name, op, arg in secret_uses if op != ":?" or not arg.strip()] == []


def test_each_service_logs_in_as_its_own_redis_user(compose: dict[str, Any]) -> None:
    logins = {
        name: (
            service["environment"]["GUIDEPOST_REDIS_USERNAME"],
            service["environment"]["GUIDEPOST_REDIS_PASSWORD"],
        )
        for name, service in guidepost_services(compose).items()
    }

    assert {name: user for name, (user, _) in logins.items()} == {
        name: role_of(service) for name, service in guidepost_services(compose).items()
    }
    assert {name: password.split(":?")[0] for name, (_, password) in logins.items()} == {
        name: "${" + role_password_variable(user) for name, (user, _) in logins.items()
    }
    assert sorted(user for user, _ in logins.values()) == sorted(SERVICE_ROLES)


def test_redis_gets_every_password_and_the_outside_users_stay_optional(
    compose: dict[str, Any],
) -> None:
    environment = compose["services"]["redis"]["environment"]

    assert set(environment) == ROLE_PASSWORDS
    assert {variable for variable, value in environment.items() if value and ":?" in value} == {
        role_password_variable(role) for role in SERVICE_ROLES
    }
    assert {variable for variable, value in environment.items() if value is None} == {
        role_password_variable(role) for role in OUTSIDE_ROLES
    }


@pytest.mark.parametrize("uncomment_optional", [False, True], ids=["as-shipped", "all-set"])
def test_env_example_and_compose_give_every_container_valid_settings(
    compose: dict[str, Any],
    env_example: tuple[dict[str, str], dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    uncomment_optional: bool,
) -> None:
    active, commented = env_example
    values = active | commented if uncomment_optional else active
    for name, service in guidepost_services(compose).items():
        for key in settings_fields():
            monkeypatch.delenv(key, raising=False)
        for key, value in container_env(service, values).items():
            monkeypatch.setenv(key, value)
        kind = worker_service(service)

        settings = WorkerSettings() if kind else ApiSettings()

        assert settings.redis_password is not None, name
        assert settings.redis_username == (kind or "api"), name
        if isinstance(settings, ApiSettings):
            assert settings.exposure_problem() is None


def test_each_worker_kind_has_one_compose_service_running_a_real_service(
    compose: dict[str, Any],
) -> None:
    kinds = {
        name: worker_service(service)
        for name, service in guidepost_services(compose).items()
        if worker_service(service)
    }

    assert sorted(str(kind) for kind in kinds.values()) == sorted(
        service.value for service in Service
    )
    assert {name: kind for name, kind in kinds.items() if name != kind} == {}


def test_workers_scale_with_no_container_name_or_host_port(compose: dict[str, Any]) -> None:
    workers = {
        name: service
        for name, service in guidepost_services(compose).items()
        if worker_service(service)
    }

    assert {
        name: sorted({"container_name", "ports"} & service.keys())
        for name, service in workers.items()
    } == {name: [] for name in workers}
    assert all("container_name" not in service for service in compose["services"].values())


def test_api_serves_and_publishes_its_port_on_loopback(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]

    assert api["command"] == ["serve"]
    assert [port.split(":")[0] for port in api["ports"]] == ["127.0.0.1"]


def test_no_service_runs_as_root(compose: dict[str, Any]) -> None:
    users = {name: str(service.get("user", "")) for name, service in compose["services"].items()}
    guidepost = guidepost_services(compose)

    assert {
        name: user for name, user in users.items() if user in {"root", "0"} or user.startswith("0:")
    } == {}
    assert users["redis"] == "redis"
    assert {name: users[name] for name in guidepost} == {name: "" for name in guidepost}, (
        "guidepost services run as the image's non-root USER (checked in test_deploy_dockerfile)"
    )


def test_every_service_waits_for_a_healthy_redis(compose: dict[str, Any]) -> None:
    others = {name: s for name, s in compose["services"].items() if name != "redis"}

    assert {name: s["depends_on"]["redis"]["condition"] for name, s in others.items()} == {
        name: "service_healthy" for name in others
    }


def test_redis_is_pinned_persistent_authenticated_and_health_checked(
    compose: dict[str, Any],
) -> None:
    redis = compose["services"]["redis"]
    image, _, tag = redis["image"].partition(":")
    healthcheck = " ".join(redis["healthcheck"]["test"])

    assert image == "redis"
    assert tag.startswith("7."), tag
    assert tag.split("-")[0].count(".") == 2, f"pin an exact redis version, not {tag}"
    assert "redis-data:/data" in redis["volumes"]
    assert "redis-data" in compose["volumes"]
    assert healthcheck.startswith("CMD-SHELL REDISCLI_AUTH=")
    assert "redis-cli --no-auth-warning --user api ping" in healthcheck
    assert 'REDISCLI_AUTH="$$GUIDEPOST_API_REDIS_PASSWORD"' in healthcheck
    assert "exec redis-server /usr/local/etc/redis/redis.conf" in redis["entrypoint"][2]


def test_compose_mounts_the_deploy_redis_files(compose: dict[str, Any]) -> None:
    sources = [volume.split(":")[0] for volume in compose["services"]["redis"]["volumes"]]
    files = [source for source in sources if source.startswith("./")]

    assert sorted(files) == [
        "./deploy/redis/redis.conf",
        "./deploy/redis/render-acl.sh",
        "./deploy/redis/users.acl",
    ]
    assert all((REPO / source).is_file() for source in files)
