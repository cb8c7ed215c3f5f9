"""Readers of the deployment files and of the settings classes, shared by tests/deploy."""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr
from pydantic.fields import FieldInfo

from services.common.settings import ApiSettings, RedisSettings, WorkerSettings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
SETTINGS_CLASSES = (RedisSettings, WorkerSettings, ApiSettings)
# The Redis users of deploy/redis/users.acl: one per service, and four for people and systems
# outside (upstream publishers, alert subscribers, operators at the command line, the KEDA
# autoscaler reading consumer-group lag).
SERVICE_ROLES = ("ingest", "forecast", "guidance", "alerts", "api")
OUTSIDE_ROLES = ("publisher", "subscriber", "operator", "scaler")
ROLES = SERVICE_ROLES + OUTSIDE_ROLES

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}; `$${` is escaped.
INTERPOLATION = re.compile(
    r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}"
)
ENV_LINE = re.compile(r"^(?P<comment>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")


def role_password_variable(role: str) -> str:
    """The variable that holds a role's password (compose and render-acl.sh read it)."""
    return f"GUIDEPOST_{role.upper()}_REDIS_PASSWORD"


def env_name(settings: type[Any], field: str) -> str:
    return f"{settings.model_config['env_prefix']}{field}".upper()


def settings_fields() -> dict[str, FieldInfo]:
    """Every GUIDEPOST_* variable the settings classes read, with its field."""
    return {
        env_name(cls, name): field
        for cls in SETTINGS_CLASSES
        for name, field in cls.model_fields.items()
    }


def is_secret(field: FieldInfo) -> bool:
    annotation = field.annotation
    return annotation is SecretStr or SecretStr in typing.get_args(annotation)


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def parse_env_file(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(active assignments, commented-out assignments) of a .env-style file."""
    active: dict[str, str] = {}
    commented: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = ENV_LINE.match(line.strip())
        if match:
            target = commented if match["comment"] else active
            target[match["name"]] = match["value"]
    return active, commented
