"""The whole path on a local 3-master Redis Cluster, with partitioned streams and two companies
whose state lives on different nodes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from schemas.alerts import AlertKind
from services.common.settings import WorkerSettings
from tests.support.cluster import LocalCluster, local_cluster
from tests.support.pipeline import (
    all_alerts,
    client_under_test,
    pipeline,
    publish_and_settle,
    synthetic_company,
)

pytestmark = pytest.mark.integration
NET_INCOME = [410, 425, 433, 452, 470, 468, 490, 505, 512, 530, 541, 560]


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with local_cluster() as running:
        yield running


def companies_on_different_nodes(cluster: LocalCluster, namespace: str) -> tuple[str, str]:
    first = "ACME"
    for candidate in ("BETA", "GAMMA", "DELTA", "OMEGA", "ZETA", "KAPPA", "SIGMA"):
        key = f"{namespace}:{{{candidate}}}:facts"
        if cluster.node_of(key) != cluster.node_of(f"{namespace}:{{{first}}}:facts"):
            return first, candidate
    raise AssertionError("no second company on another node among the candidates")


@pytest.mark.timeout(180)
async def test_the_full_path_runs_on_a_three_master_cluster_with_companies_on_different_nodes(
    cluster: LocalCluster, namespace: str
) -> None:
    first, second = companies_on_different_nodes(cluster, namespace)
    settings = WorkerSettings.model_validate(
        {
            **client_under_test(),
            "redis_url": cluster.url,
            "redis_cluster": True,
            "namespace": namespace,
            "partitions": 4,
            "claim_idle_ms": 500,
            "coalesce_ms": 20,
            "block_ms": 50,
        }
    )
    events = [
        *synthetic_company(first, first="2021Q1", values=NET_INCOME, guided=(570, 590)),
        *synthetic_company(
            second, first="2021Q1", values=[v * 2 for v in NET_INCOME], guided=(1100, 1150)
        ),
    ]
    async with pipeline(settings) as workers:
        await publish_and_settle(workers, events, timeout_s=120)
        alerts = await all_alerts(workers)
        partitions = {
            workers.streams.for_company(workers.streams.metrics, c) for c in (first, second)
        }

    bands = sorted((a.company, a.subject) for a in alerts if a.kind is AlertKind.BAND_CHECK)
    assert bands == sorted([(first, "net_income"), (second, "net_income")])
    assert all(stream.startswith(f"{namespace}:in:metrics:p") for stream in partitions)
