"""Fixtures over the repo's compose file, .env.example and Kubernetes manifests."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.deploy.deploy_files import K8S, REPO, load_yaml_documents, parse_env_file


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict), "docker-compose.yml is not a YAML mapping"
    return loaded


@pytest.fixture(scope="session")
def env_example() -> tuple[dict[str, str], dict[str, str]]:
    return parse_env_file(REPO / ".env.example")


@pytest.fixture(scope="session")
def manifests() -> list[dict[str, Any]]:
    """Every document of the files kustomization.yaml applies, plus secret.example.yaml."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    paths = [K8S / name for name in kustomization["resources"]] + [K8S / "secret.example.yaml"]
    return [doc for path in paths for doc in load_yaml_documents(path)]
