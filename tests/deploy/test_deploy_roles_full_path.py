"""Every service as its own Redis user, through the whole path, under the shipped ACL: on the
machine's Redis (Debian ships 7.0) and on Valkey 9 (which speaks Redis 7.2's ACL).

The proof that no role lacks a command or key is the server's ACL log, read by a test-only
administrator: it records every refusal, including those a client swallows (redis-py ignores a
refused CLIENT SETINFO; the API's /metrics drops a family of gauges it cannot read).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from schemas.alerts import AlertStatus
from services.alerts.alertmanager import is_news
from services.common.settings import Service
from tests.deploy.acl_servers import FLAVOURS, TEMPLATE, AclServer, acl_server
from tests.deploy.deploy_files import ROLES
from tests.deploy.role_path import (
    API_PATHS,
    COMPANY,
    STRAY,
    STRAY_METRIC,
    STRAY_PERIOD,
    KeysTouched,
    PathReport,
    notice_of,
    run_full_path,
)

pytestmark = [pytest.mark.deploy, pytest.mark.integration]

RUN_TIMEOUT_S = 240


@pytest.fixture(scope="module", params=FLAVOURS)
def run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[AclServer, PathReport, list[dict[str, Any]]]]:
    with acl_server(request.param) as server:
        workdir = tmp_path_factory.mktemp(f"roles-{request.param}")
        report = _run_in_own_loop(server, workdir)
        yield server, report, server.denials()


def _run_in_own_loop(server: AclServer, workdir: Path) -> PathReport:
    """In a thread with its own event loop: the module's fixture outlives every test's loop.
    A failure says which commands the ACL refused on the way."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(asyncio.run, run_full_path(server, workdir))
        try:
            return future.result(timeout=RUN_TIMEOUT_S)
        except Exception as error:
            pytest.fail(f"the full path failed: {error!r}; refused by the ACL: {server.denials()}")


def test_no_role_was_refused_a_command_or_key(
    run: tuple[AclServer, PathReport, list[dict[str, Any]]],
) -> None:
    _, _, denials = run
    refused = [(d["username"], d["reason"], d["object"], d["context"]) for d in denials]

    assert refused == []


def test_every_command_line_step_succeeded_as_its_role(
    run: tuple[AclServer, PathReport, list[dict[str, Any]]],
) -> None:
    _, report, _ = run
    roles = {step.role for step in report.cli}

    assert [(step.role, step.args, step.output[-400:]) for step in report.failed_cli()] == []
    assert roles == {"publisher", "api", "operator"}


def test_the_workers_ran_as_their_roles_and_export_their_metrics(
    run: tuple[AclServer, PathReport, list[dict[str, Any]]],
) -> None:
    _, report, _ = run

    assert sorted(report.worker_metrics) == sorted(service.value for service in Service)
    assert report.worker_ready == dict.fromkeys(report.worker_metrics, 200)
    for kind, text in report.worker_metrics.items():
        assert "# TYPE guidepost_events_consumed_total counter" in text, kind
        # the Redis-derived gauges come from one process, the API here (as under compose)
        assert "guidepost_redis_up" not in text, kind
        assert "guidepost_stream_length" not in text, kind


def test_any_worker_can_be_the_one_exporting_the_redis_gauges_under_its_role(
    run: tuple[AclServer, PathReport, list[dict[str, Any]]],
) -> None:
    """GUIDEPOST_STREAM_METRICS on a worker instead of the API: every stream, group and the
    refit ledger read as that worker's user (an empty ACL LOG says none was refused)."""
    _, report, _ = run
    lag = 'guidepost_consumer_group_lag{group="alerts",stream="guidepost:signals"}'

    assert sorted(report.exporter_metrics) == sorted(service.value for service in Service)
    for kind, text in report.exporter_metrics.items():
        assert "guidepost_redis_up 1.0" in text, kind
        assert 'guidepost_stream_length{stream="guidepost:alerts"}' in text, kind
        assert lag in text, kind
        assert "guidepost_refit_quarantined_companies 0.0" in text, kind  # released by then
        assert "guidepost_refit_failing_companies " in text, kind


def test_the_api_serves_every_page_route_and_metrics_read_only(
    run: tuple[AclServer, PathReport, list[dict[str, Any]]],
) -> None:
    _, report, _ = run

    assert report.api_status == dict.fromkeys(API_PATHS, 200)
    assert f'guidepost_company_forecasts{{company="{COMPANY}"}}' in report.api_metrics
    assert f'guidepost_company_facts{{company="{COMPANY}"}}' in report.api_metrics
    assert "guidepost_redis_up 1.0" in report.api_metrics
    assert 'guidepost_stream_length{stream="guidepost:alerts"}' in report.api_metrics
    assert [name for name in report.plots if name.endswith("_fan.png")] != []


def test_alerts_reach_the_subscriber_and_the_webhook_once_each(
    run: tuple[AclServer, PathReport, list[dict[str, Any]]],
) -> None:
    """The receiver was down while the pipeline ran (its notices went through the redelivery
    schedule to the dead-letter stream) and back when the operator replayed them."""
    _, report, _ = run
    delivered = report.webhook.accepted

    assert report.alerts_in_stream > 0
    assert report.subscriber_received == report.alerts_in_stream
    assert report.subscriber_pending_after_ack == 0
    assert report.webhook.refused > 0
    assert len(delivered) == len(set(delivered))  # each notice once
    assert sorted(delivered) == sorted(report.stream_notices)  # every notice


def test_the_operator_sees_and_handles_dead_letters_silences_and_history(
    run: tuple[AclServer, PathReport, list[dict[str, Any]]],
) -> None:
    _, report, _ = run
    commands = [step.args[:2] for step in report.cli if step.role == "operator"]

    assert report.letters_by_reason.keys() == {
        "invalid",  # the malformed entry the publisher sent
        "conflict",  # a guidance event id reused with other content
        "refit_failed",  # the stray company's refit, quarantined
        "delivery_failed",  # notices sent while the receiver was down
    }
    assert report.letters_by_reason["invalid"] == 1
    assert report.letters_by_reason["conflict"] == 1
    assert report.letters_by_reason["refit_failed"] == 1
    assert report.replayed["invalid"]["invalid"]["requeued"] == 1
    assert report.dead_letters_after_purge == 0
    assert report.history_rows > 0
    assert report.tailed_alerts == 1
    assert sorted({" ".join(c) for c in commands}) == [
        "alerts tail",
        "dlq list",
        "dlq purge",
        "dlq replay",
        "history --company",
        "history retract",
        "silence add",
        "silence expire",
        "silence list",
    ]


def test_the_operator_releases_a_quarantined_refit_after_retracting_the_stray_fact(
    run: tuple[AclServer, PathReport, list[dict[str, Any]]],
) -> None:
    _, report, _ = run
    stray = [row for row in report.stray_history if row["metric"] == STRAY_METRIC]

    assert report.quarantined_before_release == [STRAY]
    assert report.retraction["period"] == STRAY_PERIOD
    assert report.retraction["quarantined"] is True
    assert report.replayed["refit_failed"]["refit_failed"]["rerun"] == 1
    assert report.quarantined_at_end == 0
    assert report.refit_attempts_at_end == 0  # the rerun succeeded
    assert [row["retracted"] for row in stray] == [False, True]  # kept, then withdrawn


def test_alertmanager_gets_the_newest_notice_of_every_alert_and_firing_ones_again(
    run: tuple[AclServer, PathReport, list[dict[str, Any]]],
) -> None:
    """Down while the pipeline ran, like the webhook receiver: the notices it did not take
    were dead-lettered and replayed. A notice its alert's records (or a newer notice posted)
    had moved past is not posted; each alert's newest is, and one still firing (not news)
    again every repost round, so Alertmanager does not resolve it by itself."""
    _, report, _ = run
    posted = Counter(report.alertmanager.accepted)
    newest = report.newest_notices()
    kept_firing = [a for a in newest if a.status is AlertStatus.FIRING and not is_news(a)]

    assert report.alertmanager.refused > 0
    assert set(posted) <= set(report.stream_notices)
    assert [a.event_id for a in newest if posted[notice_of(a)] == 0] == []
    assert kept_firing != []
    assert [a.event_id for a in kept_firing if posted[notice_of(a)] < 2] == []


def test_the_operator_resends_what_neither_sink_took(
    run: tuple[AclServer, PathReport, list[dict[str, Any]]],
) -> None:
    _, report, _ = run
    failed = report.letters_by_reason["delivery_failed"]

    assert report.undelivered_by_sink.keys() == {"webhook", "alertmanager"}
    assert sum(report.undelivered_by_sink.values()) == failed
    assert report.replayed["delivery_failed"]["delivery_failed"]["scheduled"] == failed


def test_the_scaler_reads_the_lag_of_every_worker_group(
    run: tuple[AclServer, PathReport, list[dict[str, Any]]],
) -> None:
    _, report, _ = run

    assert report.scaler_groups == {
        "guidepost:in:results": ["ingest"],
        "guidepost:in:metrics": ["ingest"],
        "guidepost:in:guidance": ["ingest"],
        "guidepost:history": ["forecast", "guidance"],
        "guidepost:forecasts": ["guidance"],
        "guidepost:signals": ["alerts"],
    }


def test_the_acl_was_rendered_for_the_server_it_runs_on(
    run: tuple[AclServer, PathReport, list[dict[str, Any]]],
) -> None:
    """CLIENT SETINFO (Redis 7.2+) is granted where the server knows it, dropped on 7.0/7.1."""
    server, _, _ = run
    with server.admin(decode_responses=True) as admin:
        rules: list[str] = admin.acl_list()
    ingest = next(rule for rule in rules if rule.startswith("user ingest "))

    assert ("+client|setinfo" in ingest) is (server.version >= (7, 2))


CONNECTION = {"ping", "hello", "client|setinfo", "cluster|slots", "cluster|shards", "cluster|nodes"}
# Granted for paths the full path does not take, each with its reason. Any other granted
# command a role never sent is a grant too many.
OFF_THE_PATH: dict[str, dict[str, str]] = {
    "ingest": {
        "unwatch": "a guidance WATCH given up (redis-py's reset)",
        "mget": "on a cluster: which announcements a redelivery already published",
        "xtrim": "a consumed stream past GUIDEPOST_STREAM_MAX_LENGTH",
    },
    "forecast": {
        "xpending": "trimming, and its /metrics while entries are pending",
        "xtrim": "a consumed stream past GUIDEPOST_STREAM_MAX_LENGTH",
    },
    "guidance": {
        "hgetall": "every guided metric of a company, when its history changes",
        "hdel": "forgetting the error of an entry retried after a handler failed",
        "xpending": "trimming, and its /metrics while entries are pending",
        "xtrim": "a consumed stream past GUIDEPOST_STREAM_MAX_LENGTH",
    },
    "alerts": {
        "xpending": "trimming, and its /metrics while entries are pending",
        "xtrim": "a consumed stream past GUIDEPOST_STREAM_MAX_LENGTH",
    },
    "api": {"xpending": "/metrics while entries are pending"},
    "publisher": {},
    "subscriber": {},
    "operator": {"script|kill": "ending a runaway script (test_deploy_acl_probes.py)"},
    "scaler": {},
}


def test_every_role_is_checked_for_grants_it_does_not_use() -> None:
    assert sorted(OFF_THE_PATH) == sorted(ROLES)


@pytest.mark.parametrize("role", sorted(OFF_THE_PATH))
def test_every_command_a_role_is_granted_is_one_it_sends(
    run: tuple[AclServer, PathReport, list[dict[str, Any]]], role: str
) -> None:
    """Least privilege the other way round: MONITOR saw each granted command sent by the
    role (inside its scripts too), or the command serves a path listed above."""
    _, report, _ = run
    granted = {rule[1:] for rule in role_rules(role) if rule.startswith("+")} - CONNECTION
    sent = report.commands_by_user.get(role, set())

    assert sent - CONNECTION - granted == set()  # MONITOR shows only what was allowed
    assert sent != set()
    assert granted - sent <= OFF_THE_PATH[role].keys()
    assert OFF_THE_PATH[role].keys() <= granted


RETRIED = "the error of an entry whose handler failed, kept until the entry is retried"
# Key patterns granted for paths the full path does not take, each with its reason. Any
# other pattern no key of the path matched is a grant too many: a write pattern (`~`) must
# match a key the role wrote, a read-only one (`%R~`) a key it read or wrote.
KEYS_OFF_THE_PATH: dict[str, dict[str, str]] = {
    "ingest": {
        "~guidepost:{*}:announced:*": "on a cluster: which announcements the client published",
    },
    "forecast": {"~guidepost:errors:forecast": RETRIED},
    "guidance": {
        "~guidepost:dlq": "an entry that fails validation, or all its retries",
        "~guidepost:errors:guidance": RETRIED,
    },
    "alerts": {
        "~guidepost:errors:alerts": RETRIED,
        "~guidepost:errors:webhook": RETRIED,
        "~guidepost:errors:alertmanager": RETRIED,
    },
    "api": {},
    "publisher": {},
    "subscriber": {},
    "operator": {
        "~guidepost:forecasts*": "replaying a dead letter of the guidance worker's",
        "~guidepost:signals*": "replaying a dead letter of the alerts worker's",
        "~guidepost:alerts": "replaying a dead letter of the webhook's (a malformed notice)",
    },
    "scaler": {},
}


def test_every_role_is_checked_for_key_patterns_it_does_not_use() -> None:
    assert sorted(KEYS_OFF_THE_PATH) == sorted(ROLES)


@pytest.mark.parametrize("role", sorted(KEYS_OFF_THE_PATH))
def test_every_key_pattern_a_role_is_granted_is_one_it_uses(
    run: tuple[AclServer, PathReport, list[dict[str, Any]]], role: str
) -> None:
    """The keys each command named, and whether it writes them, are the server's answer
    (COMMAND GETKEYSANDFLAGS) for the commands MONITOR saw the role send."""
    _, report, _ = run
    touched = report.keys_by_user.get(role, KeysTouched())
    patterns = [rule for rule in role_rules(role) if rule.startswith(("~", "%R~"))]
    unused = {
        rule
        for rule in patterns
        if not any(
            fnmatchcase(key, rule.removeprefix("%R").removeprefix("~"))
            for key in (touched.named if rule.startswith("%R~") else touched.written)
        )
    }

    assert patterns != []
    assert unused <= KEYS_OFF_THE_PATH[role].keys()
    assert KEYS_OFF_THE_PATH[role].keys() <= set(patterns)


def role_rules(role: str) -> list[str]:
    return next(
        line.split()
        for line in TEMPLATE.read_text().splitlines()
        if line.startswith(f"user {role} ")
    )
