"""deploy/k8s: schema-valid for a pinned Kubernetes, hardened, and KEDA triggers on real streams."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from schemas.streams import Groups, Streams
from services.common.settings import ApiSettings, Service
from tests.deploy.deploy_files import K8S, SERVICE_ROLES, settings_fields

pytestmark = pytest.mark.deploy

KUBERNETES_VERSION = "1.32.0"
KEDA_API = "keda.sh/v1alpha1"
IMAGE_UID = 10001  # the Dockerfile's USER (test_deploy_dockerfile checks it)

STREAMS = Streams()
# What each worker consumes (services/app.py wires these): the streams KEDA should watch.
CONSUMES: dict[Service, set[tuple[str, str]]] = {
    Service.INGEST: {
        (STREAMS.results, Groups.INGEST),
        (STREAMS.metrics, Groups.INGEST),
        (STREAMS.guidance, Groups.INGEST),
    },
    Service.FORECAST: {(STREAMS.history, Groups.FORECAST)},
    Service.GUIDANCE: {(STREAMS.forecasts, Groups.GUIDANCE), (STREAMS.history, Groups.GUIDANCE)},
    Service.ALERTS: {(STREAMS.signals, Groups.ALERTS)},
}


def of_kind(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in manifests if doc["kind"] == kind}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(only)


def worker_kind(deployment: dict[str, Any]) -> str | None:
    args = container(deployment).get("args", [])
    return str(args[2]) if args[:2] == ["run", "--services"] else None


def test_every_core_manifest_validates_against_kubernetes(manifests: list[dict[str, Any]]) -> None:
    core = [doc for doc in manifests if doc["apiVersion"] != KEDA_API]
    failures = []
    for doc in core:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            failures.append(f"{doc['kind']}/{doc['metadata']['name']}: {error.message}")

    assert len(core) >= 12
    assert failures == []


def test_kustomization_applies_no_secret_and_no_namespace(manifests: list[dict[str, Any]]) -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    applied = manifests[: -len(of_kind(manifests, "Secret"))]

    assert "secret.example.yaml" not in kustomization["resources"]
    assert "namespace" not in kustomization
    assert [doc["kind"] for doc in applied if doc["kind"] == "Secret"] == []
    assert [doc["metadata"]["name"] for doc in manifests if "namespace" in doc["metadata"]] == []


def test_one_deployment_per_worker_kind_runs_a_real_service(
    manifests: list[dict[str, Any]],
) -> None:
    kinds = {name: worker_kind(d) for name, d in of_kind(manifests, "Deployment").items()}

    assert kinds == {f"guidepost-{service}": service.value for service in Service} | {
        "guidepost-api": None
    }
    assert container(of_kind(manifests, "Deployment")["guidepost-api"])["args"] == ["serve"]


def test_every_pod_is_locked_down(manifests: list[dict[str, Any]]) -> None:
    for name, deployment in of_kind(manifests, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        security = container(deployment)["securityContext"]

        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] == IMAGE_UID, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        assert security["readOnlyRootFilesystem"] is True, name
        assert security["allowPrivilegeEscalation"] is False, name
        assert security["capabilities"] == {"drop": ["ALL"]}, name


def test_every_container_has_requests_limits_and_probes(manifests: list[dict[str, Any]]) -> None:
    for name, deployment in of_kind(manifests, "Deployment").items():
        spec = container(deployment)

        assert set(spec["resources"]) == {"requests", "limits"}, name
        assert set(spec["resources"]["requests"]) == {"cpu", "memory"}, name
        assert "memory" in spec["resources"]["limits"], name
        assert {"readinessProbe", "livenessProbe"} <= spec.keys(), name


def test_probes_hit_the_documented_endpoints(manifests: list[dict[str, Any]]) -> None:
    deployments = of_kind(manifests, "Deployment")
    api = container(deployments.pop("guidepost-api"))

    assert api["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert api["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    for name, deployment in deployments.items():
        worker = container(deployment)
        metrics = {p["name"]: p["containerPort"] for p in worker["ports"]}["metrics"]
        env = {e["name"]: e.get("value") for e in worker["env"]}

        assert env["GUIDEPOST_METRICS_PORT"] == str(metrics), name
        assert worker["livenessProbe"]["httpGet"] == {"path": "/health", "port": "metrics"}, name
        assert worker["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "metrics"}, name


def test_every_deployment_has_a_disruption_budget(manifests: list[dict[str, Any]]) -> None:
    budgets = of_kind(manifests, "PodDisruptionBudget")

    for name, deployment in of_kind(manifests, "Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert budgets[name]["spec"]["selector"]["matchLabels"].items() <= labels.items(), name


def test_api_service_selects_the_api_pods_on_its_http_port(
    manifests: list[dict[str, Any]],
) -> None:
    (service,) = of_kind(manifests, "Service").values()
    api = of_kind(manifests, "Deployment")["guidepost-api"]
    port_names = {p["name"] for p in container(api)["ports"]}

    assert (
        service["spec"]["selector"].items() <= api["spec"]["template"]["metadata"]["labels"].items()
    )
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names


def test_environment_names_real_settings_and_existing_secret_keys(
    manifests: list[dict[str, Any]],
) -> None:
    fields = settings_fields()
    (config,) = of_kind(manifests, "ConfigMap").values()
    secret_keys = {
        (name, key)
        for name, secret in of_kind(manifests, "Secret").items()
        for key in secret["stringData"]
    }
    env = [e for d in of_kind(manifests, "Deployment").values() for e in container(d)["env"]]
    refs = {
        (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for e in env
        if "secretKeyRef" in e.get("valueFrom", {})
    }

    assert set(config["data"]) - fields.keys() == set()
    assert {e["name"] for e in env} - fields.keys() == set()
    assert refs - secret_keys == set()


def secret_ref(deployment: dict[str, Any], variable: str) -> dict[str, Any] | None:
    for entry in container(deployment)["env"]:
        if entry["name"] == variable:
            return dict(entry.get("valueFrom", {}).get("secretKeyRef", {})) or None
    return None


def test_each_deployment_logs_in_as_its_own_redis_user_from_its_own_secret(
    manifests: list[dict[str, Any]],
) -> None:
    deployments = of_kind(manifests, "Deployment")
    secrets = of_kind(manifests, "Secret")
    logins = {}
    for name, deployment in deployments.items():
        role = worker_kind(deployment) or "api"
        user = secret_ref(deployment, "GUIDEPOST_REDIS_USERNAME")
        password = secret_ref(deployment, "GUIDEPOST_REDIS_PASSWORD")
        assert user == {"name": f"guidepost-redis-{role}", "key": "username"}, name
        assert password == {"name": f"guidepost-redis-{role}", "key": "password"}, name
        logins[name] = secrets[user["name"]]["stringData"]["username"]

    assert sorted(logins.values()) == sorted(SERVICE_ROLES)
    (config,) = of_kind(manifests, "ConfigMap").values()
    assert "GUIDEPOST_REDIS_USERNAME" not in config["data"]


def test_the_scaler_authenticates_as_the_read_only_scaler_user(
    manifests: list[dict[str, Any]],
) -> None:
    (auth,) = keda(manifests, "TriggerAuthentication").values()

    assert {(ref["parameter"], ref["name"]) for ref in auth["spec"]["secretTargetRef"]} == {
        ("username", "guidepost-redis-scaler"),
        ("password", "guidepost-redis-scaler"),
    }
    secret = of_kind(manifests, "Secret")["guidepost-redis-scaler"]
    assert secret["stringData"]["username"] == "scaler"


def test_the_api_listens_on_the_pod_address_with_a_required_token(
    manifests: list[dict[str, Any]],
) -> None:
    api = of_kind(manifests, "Deployment")["guidepost-api"]
    (config,) = of_kind(manifests, "ConfigMap").values()
    env = {e["name"]: e.get("value") for e in container(api)["env"]}
    token = secret_ref(api, "GUIDEPOST_API_TOKEN")
    values = dict(config["data"]) | {k: v for k, v in env.items() if v is not None}
    values |= {"GUIDEPOST_API_TOKEN": "from-the-secret"}

    settings = ApiSettings.model_validate(
        {name.removeprefix("GUIDEPOST_").lower(): value for name, value in values.items()}
    )

    assert token == {"name": "guidepost-api", "key": "token"}  # not optional
    assert secret_ref(api, "GUIDEPOST_METRICS_TOKEN") == {
        "name": "guidepost-api",
        "key": "metrics-token",
        "optional": True,
    }
    assert settings.http_host == "0.0.0.0"
    assert settings.exposure_problem() is None
    assert "prometheus.io/scrape" not in api["spec"]["template"]["metadata"].get("annotations", {})


def keda(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {
        name: doc for name, doc in of_kind(manifests, kind).items() if doc["apiVersion"] == KEDA_API
    }


def test_each_worker_deployment_has_one_scaled_object_on_its_input_streams(
    manifests: list[dict[str, Any]],
) -> None:
    deployments = of_kind(manifests, "Deployment")
    scaled = keda(manifests, "ScaledObject")
    watched = {}
    for scaled_object in scaled.values():
        target = scaled_object["spec"]["scaleTargetRef"]
        assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
        kind = worker_kind(deployments[target["name"]])
        watched[kind] = {
            (trigger["metadata"]["stream"], trigger["metadata"]["consumerGroup"])
            for trigger in scaled_object["spec"]["triggers"]
        }

    assert watched == {service.value: streams for service, streams in CONSUMES.items()}


def test_triggers_use_redis_streams_lag_with_the_secret_as_credentials(
    manifests: list[dict[str, Any]],
) -> None:
    auths = keda(manifests, "TriggerAuthentication")
    secret_keys = {
        (name, key)
        for name, secret in of_kind(manifests, "Secret").items()
        for key in secret["stringData"]
    }
    triggers = [
        t for so in keda(manifests, "ScaledObject").values() for t in so["spec"]["triggers"]
    ]

    assert {t["type"] for t in triggers} == {"redis-streams"}
    assert all(int(t["metadata"]["lagCount"]) > 0 for t in triggers)
    assert {t["authenticationRef"]["name"] for t in triggers} <= auths.keys()
    for auth in auths.values():
        refs = {(ref["name"], ref["key"]) for ref in auth["spec"]["secretTargetRef"]}
        assert refs <= secret_keys
        assert {ref["parameter"] for ref in auth["spec"]["secretTargetRef"]} == {
            "username",
            "password",
        }


def test_scaled_objects_keep_a_consumer_and_cap_replicas(manifests: list[dict[str, Any]]) -> None:
    for name, scaled_object in keda(manifests, "ScaledObject").items():
        spec = scaled_object["spec"]

        assert 1 <= spec["minReplicaCount"] < spec["maxReplicaCount"], name
