"""The alert lifecycle: identity, dedupe, repeats, resolved notices, silences, inhibition."""

from __future__ import annotations

import ast
import hashlib
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.alerts import lifecycle
from services.alerts.lifecycle import (
    WITHDRAWN_GUIDANCE_MUTES_BAND_CHECKS,
    AlertRecord,
    Decision,
    InhibitRule,
    Notification,
    Observation,
    Reason,
    Silence,
    decide,
    details_digest,
    explain,
    fingerprint,
    group_key,
    inhibited_by,
    silenced_by,
)

pytestmark = pytest.mark.unit

T0 = datetime(2024, 8, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
REPEAT = DAY


def observe(
    *,
    at: datetime = T0,
    condition: str = "firing",
    state: str | None = "likely_below",
    severity: str = "warning",
    kind: str = "band_check",
    company: str = "QFIN",
    subject: str = "net_income",
    details: dict[str, object] | None = None,
    summary: str = "QFIN 2024Q2 net income is likely below guidance (P(below)=0.62).",
) -> Observation:
    return Observation(
        company=company,
        period="2024Q2",
        kind=kind,
        subject=subject,
        condition=condition,  # type: ignore[arg-type]
        severity=severity,
        state=state,
        summary=summary,
        details={"p_below": 0.62} if details is None else details,
        observed_at=at,
    )


@dataclass
class FakeAlertStore:
    """The lifecycle as a worker drives it: records by fingerprint, notices as sent."""

    silences: list[Silence] = field(default_factory=list)
    rules: list[InhibitRule] = field(default_factory=list)
    records: dict[str, AlertRecord] = field(default_factory=dict)
    sent: list[Notification] = field(default_factory=list)

    def observe(self, observation: Observation, *, now: datetime | None = None) -> Decision:
        at = now or observation.observed_at
        labels = observation.labels
        firing = [r for r in self.records.values() if r.status == "firing"]
        decision = decide(
            observation,
            self.records.get(observation.fingerprint),
            now=at,
            repeat_interval=REPEAT,
            silenced=silenced_by(labels, self.silences, at=at) is not None,
            inhibited=inhibited_by(labels, firing, self.rules) is not None,
        )
        if decision.record is not None:
            self.records[decision.record.fingerprint] = decision.record
        if decision.notification is not None:
            self.sent.append(decision.notification)
        return decision

    def observe_all(self, observations: Iterable[Observation]) -> None:
        for observation in observations:
            self.observe(observation)

    def reasons(self) -> list[tuple[str, int, Reason]]:
        return [(n.status, n.number, n.reason) for n in self.sent]


# --------------------------------------------------------------------------- identity


def test_fingerprint_is_a_pinned_hex_digest_of_the_identity() -> None:
    value = fingerprint(company="QFIN", period="2024Q2", kind="band_check", subject="net_income")

    documented = hashlib.sha256(b'["QFIN","2024Q2","band_check","net_income"]').hexdigest()
    assert value == "f5683a859bad6564c3a2347d9fbd81f4"
    assert value == documented[:32]


def test_fingerprint_is_the_same_in_another_process_with_another_hash_seed() -> None:
    code = (
        "from services.alerts.lifecycle import fingerprint;"
        "print(fingerprint(company='QFIN', period='2024Q2', kind='band_check', "
        "subject='net_income'))"
    )
    root = Path(__file__).resolve().parents[3]
    child = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
        env={"PYTHONHASHSEED": "12345", "PYTHONPATH": str(root)},
    )

    expected = fingerprint(company="QFIN", period="2024Q2", kind="band_check", subject="net_income")
    assert child.stdout.strip() == expected


def test_fingerprint_does_not_confuse_shifted_boundaries_between_labels() -> None:
    left = fingerprint(company="QFIN", period="2024Q2", kind="band_check", subject="ab")
    right = fingerprint(company="QFIN", period="2024Q2", kind="band_checka", subject="b")

    assert left != right


def test_fingerprint_ignores_state_severity_and_content() -> None:
    below = observe(state="likely_below", severity="warning")
    inside = observe(state="likely_inside", severity="info", details={"p_below": 0.1})

    assert below.fingerprint == inside.fingerprint


def test_alerts_of_one_company_and_period_share_a_group_key() -> None:
    band = observe(kind="band_check")
    revision = observe(kind="guidance_revision", subject="guidance")
    other = observe(company="LX")

    first = decide(band, None, now=T0, repeat_interval=REPEAT, silenced=False, inhibited=False)
    assert first.notification is not None
    assert first.notification.group_key == group_key(company="QFIN", period="2024Q2")
    assert group_key(company=band.company, period=band.period) == group_key(
        company=revision.company, period=revision.period
    )
    assert group_key(company=other.company, period=other.period) != group_key(
        company="QFIN", period="2024Q2"
    )


# --------------------------------------------------------------------------- firing


def test_first_firing_notifies_once_as_number_one() -> None:
    store = FakeAlertStore()

    decision = store.observe(observe())

    assert store.reasons() == [("firing", 1, Reason.FIRST)]
    assert decision.record is not None
    assert decision.record.starts_at == T0
    assert decision.record.notifications == 1


def test_replayed_observation_sends_nothing_and_changes_nothing() -> None:
    store = FakeAlertStore()
    store.observe(observe())
    before = dict(store.records)

    store.observe(observe(), now=T0 + 3 * DAY)

    assert store.reasons() == [("firing", 1, Reason.FIRST)]
    assert store.records == before


def test_same_state_observed_again_within_the_repeat_interval_sends_nothing() -> None:
    store = FakeAlertStore()

    store.observe_all(
        observe(at=T0 + timedelta(hours=h), details={"p_below": 0.6 + h / 100}) for h in range(20)
    )

    assert store.reasons() == [("firing", 1, Reason.FIRST)]
    record = store.records[observe().fingerprint]
    assert record.details_digest == explain(observe(details={"p_below": 0.79})).digest


def test_repeated_state_observations_do_not_flap_notices() -> None:
    store = FakeAlertStore()
    hours = iter(range(100))

    def at() -> datetime:
        return T0 + timedelta(hours=next(hours))

    store.observe_all(observe(at=at(), state="likely_below") for _ in range(5))
    store.observe_all(observe(at=at(), state="likely_inside", severity="info") for _ in range(5))

    assert store.reasons() == [
        ("firing", 1, Reason.FIRST),
        ("firing", 2, Reason.STATE_CHANGE),
    ]
    assert store.sent[1].state == "likely_inside"
    assert store.sent[1].is_state_change


def test_state_change_notifies_immediately() -> None:
    store = FakeAlertStore()
    store.observe(observe(state="likely_inside", severity="info"))

    store.observe(observe(at=T0 + timedelta(minutes=1), state="likely_below"))

    assert store.reasons()[-1] == ("firing", 2, Reason.STATE_CHANGE)


def test_severity_change_notifies_immediately() -> None:
    store = FakeAlertStore()
    store.observe(observe(severity="warning"))

    store.observe(observe(at=T0 + timedelta(minutes=1), severity="critical"))

    assert store.reasons()[-1] == ("firing", 2, Reason.SEVERITY_CHANGE)
    assert store.sent[-1].severity == "critical"


def test_unchanged_firing_repeats_once_the_repeat_interval_has_passed() -> None:
    store = FakeAlertStore()
    store.observe(observe())

    store.observe(observe(at=T0 + DAY - timedelta(seconds=1)))
    store.observe(observe(at=T0 + DAY))
    store.observe(observe(at=T0 + DAY + timedelta(hours=1)))
    store.observe(observe(at=T0 + 2 * DAY))

    assert store.reasons() == [
        ("firing", 1, Reason.FIRST),
        ("firing", 2, Reason.REPEAT),
        ("firing", 3, Reason.REPEAT),
    ]
    assert store.sent[1].is_repeat
    assert store.sent[1].starts_at == T0


def test_an_older_observation_arriving_late_does_not_move_the_record() -> None:
    store = FakeAlertStore()
    store.observe(observe(at=T0 + timedelta(hours=2), state="likely_inside", severity="info"))

    store.observe(observe(at=T0, state="likely_below"), now=T0 + timedelta(hours=3))

    assert store.reasons() == [("firing", 1, Reason.FIRST)]
    assert store.records[observe().fingerprint].state == "likely_inside"


# --------------------------------------------------------------------------- resolving


def test_clear_after_a_firing_notice_sends_one_resolved_notice() -> None:
    store = FakeAlertStore()
    store.observe(observe())
    resolved_at = T0 + timedelta(hours=5)

    store.observe(observe(at=resolved_at, condition="clear", state="likely_inside"))
    store.observe(observe(at=resolved_at + timedelta(hours=1), condition="clear"))

    assert store.reasons() == [("firing", 1, Reason.FIRST), ("resolved", 2, Reason.RESOLVED)]
    assert store.sent[-1].ends_at == resolved_at
    assert store.records[observe().fingerprint].resolved_at == resolved_at


def test_clear_with_no_record_does_nothing() -> None:
    decision = decide(
        observe(condition="clear"),
        None,
        now=T0,
        repeat_interval=REPEAT,
        silenced=False,
        inhibited=False,
    )

    assert decision == Decision(record=None, notification=None)


def test_clear_of_a_never_announced_alert_resolves_silently() -> None:
    store = FakeAlertStore(silences=[silence(ends_at=T0 + timedelta(hours=2))])
    store.observe(observe())

    store.observe(observe(at=T0 + timedelta(hours=1), condition="clear"))

    assert store.sent == []
    assert store.records[observe().fingerprint].status == "resolved"


def test_firing_again_after_resolving_starts_a_new_episode_at_number_one() -> None:
    store = FakeAlertStore()
    store.observe(observe())
    store.observe(observe(at=T0 + timedelta(hours=1), condition="clear"))

    store.observe(observe(at=T0 + timedelta(hours=2)))

    assert store.reasons()[-1] == ("firing", 1, Reason.FIRST)
    assert store.sent[-1].starts_at == T0 + timedelta(hours=2)
    assert store.sent[-1].ends_at is None


# --------------------------------------------------------------------------- silences


def silence(
    *,
    ends_at: datetime,
    starts_at: datetime = T0,
    matchers: dict[str, str] | None = None,
) -> Silence:
    return Silence(
        id="s-1",
        matchers=matchers or {"company": "QFIN", "kind": "band_check"},
        starts_at=starts_at,
        ends_at=ends_at,
        created_by="analyst",
        comment="guidance call on Monday",
    )


def test_silence_suppresses_until_it_expires_then_the_next_observation_notifies() -> None:
    ends = T0 + timedelta(hours=2)
    store = FakeAlertStore(silences=[silence(ends_at=ends)])

    store.observe(observe())
    store.observe(observe(at=T0 + timedelta(hours=1), details={"p_below": 0.7}))
    muted = list(store.sent)
    store.observe(observe(at=ends, details={"p_below": 0.71}))

    assert muted == []
    assert store.reasons() == [("firing", 1, Reason.FIRST)]
    assert store.sent[0].starts_at == T0


def test_state_changes_during_a_silence_are_recorded_then_announced_after_it() -> None:
    ends = T0 + timedelta(hours=3)
    store = FakeAlertStore()
    store.observe(observe(state="likely_inside", severity="info"))
    store.silences.append(silence(starts_at=T0 + timedelta(minutes=30), ends_at=ends))

    store.observe(observe(at=T0 + timedelta(hours=1), state="likely_below"))
    recorded = store.records[observe().fingerprint].state
    store.observe(observe(at=ends, state="likely_below", details={"p_below": 0.7}))

    assert recorded == "likely_below"
    assert store.reasons() == [("firing", 1, Reason.FIRST), ("firing", 2, Reason.STATE_CHANGE)]


def test_a_state_that_returns_during_a_silence_is_not_announced_again() -> None:
    ends = T0 + timedelta(hours=3)
    store = FakeAlertStore()
    store.observe(observe(state="likely_below"))
    store.silences.append(silence(starts_at=T0 + timedelta(minutes=30), ends_at=ends))

    store.observe(observe(at=T0 + timedelta(hours=1), state="likely_inside", severity="info"))
    store.observe(observe(at=T0 + timedelta(hours=2), state="likely_below"))
    store.observe(observe(at=ends, state="likely_below", details={"p_below": 0.7}))

    assert store.reasons() == [("firing", 1, Reason.FIRST)]


def test_a_resolved_notice_closes_an_announced_alert_even_under_a_silence() -> None:
    store = FakeAlertStore()
    store.observe(observe())
    store.silences.append(silence(ends_at=T0 + DAY))

    store.observe(observe(at=T0 + timedelta(hours=1), condition="clear"))

    assert store.reasons() == [("firing", 1, Reason.FIRST), ("resolved", 2, Reason.RESOLVED)]


def test_silence_matches_globs_only_while_active() -> None:
    quiet = silence(
        starts_at=T0, ends_at=T0 + timedelta(hours=1), matchers={"company": "Q*", "kind": "band_*"}
    )
    labels = observe().labels

    assert quiet.matches(labels, at=T0)
    assert not quiet.matches(labels, at=T0 + timedelta(hours=1))
    assert not quiet.matches(labels, at=T0 - timedelta(seconds=1))
    assert not quiet.matches(observe(company="LX").labels, at=T0)
    assert not quiet.matches(observe(kind="outcome").labels, at=T0)


@pytest.mark.parametrize(
    ("matchers", "ends_at", "message"),
    [
        ({}, T0 + DAY, "no matchers"),
        ({"compnay": "QFIN"}, T0 + DAY, "unknown label.*compnay"),
        ({"company": "QFIN"}, T0, "not after it starts"),
    ],
)
def test_invalid_silences_are_refused_naming_the_problem(
    matchers: dict[str, str], ends_at: datetime, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Silence(
            id="s-1",
            matchers=matchers,
            starts_at=T0,
            ends_at=ends_at,
            created_by="analyst",
            comment="why",
        )


# --------------------------------------------------------------------------- inhibition


def withdrawn_guidance(*, at: datetime = T0, company: str = "QFIN") -> Observation:
    return observe(
        at=at,
        kind="guidance_revision",
        state="withdrawn",
        company=company,
        summary="QFIN withdrew its 2024Q2 net income guidance.",
    )


def test_withdrawn_guidance_inhibits_band_checks_of_the_same_company_period_subject() -> None:
    store = FakeAlertStore(rules=[WITHDRAWN_GUIDANCE_MUTES_BAND_CHECKS])
    store.observe(withdrawn_guidance())

    store.observe(observe(at=T0 + timedelta(minutes=1)))
    store.observe(observe(at=T0 + timedelta(minutes=1), company="LX"))

    assert [(n.kind, n.company) for n in store.sent] == [
        ("guidance_revision", "QFIN"),
        ("band_check", "LX"),
    ]
    assert store.records[observe().fingerprint].status == "firing"


def test_band_check_notifies_once_the_inhibiting_alert_resolves() -> None:
    store = FakeAlertStore(rules=[WITHDRAWN_GUIDANCE_MUTES_BAND_CHECKS])
    store.observe(withdrawn_guidance())
    store.observe(observe(at=T0 + timedelta(minutes=1)))

    store.observe(replace(withdrawn_guidance(at=T0 + timedelta(hours=1)), condition="clear"))
    store.observe(observe(at=T0 + timedelta(hours=2), details={"p_below": 0.66}))

    assert [(n.kind, n.status, n.number) for n in store.sent] == [
        ("guidance_revision", "firing", 1),
        ("guidance_revision", "resolved", 2),
        ("band_check", "firing", 1),
    ]


def test_a_guidance_revision_other_than_withdrawn_does_not_inhibit() -> None:
    lowered = decide(
        observe(kind="guidance_revision", state="lowered"),
        None,
        now=T0,
        repeat_interval=REPEAT,
        silenced=False,
        inhibited=False,
    ).record
    assert lowered is not None

    source = inhibited_by(observe().labels, [lowered], [WITHDRAWN_GUIDANCE_MUTES_BAND_CHECKS])

    assert source is None


def test_an_alert_matching_both_sides_of_a_rule_does_not_inhibit_itself() -> None:
    rule = InhibitRule(source={"kind": "band_check"}, target={"kind": "band_check"})
    own = decide(observe(), None, now=T0, repeat_interval=REPEAT, silenced=False, inhibited=False)
    assert own.record is not None

    assert inhibited_by(observe().labels, [own.record], [rule]) is None


# --------------------------------------------------------------------------- explain


def test_explain_keeps_the_workers_sentence_and_details() -> None:
    observation = observe(details={"p_below": 0.62, "band": [1.0, 1.2]})

    explanation = explain(observation)

    assert explanation.summary == observation.summary
    assert dict(explanation.details) == {"p_below": 0.62, "band": [1.0, 1.2]}


def test_explain_describes_the_labels_when_the_sentence_is_missing() -> None:
    explanation = explain(observe(summary="  "))

    assert explanation.summary == "band_check on net_income for QFIN 2024Q2: likely_below"


def test_details_digest_ignores_key_order_and_sees_value_changes() -> None:
    assert details_digest({"a": 1, "b": 2}) == details_digest({"b": 2, "a": 1})
    assert details_digest({"a": 1}) != details_digest({"a": 1.5})


@pytest.mark.parametrize("bad", [{"when": T0}, {"p": float("nan")}])
def test_details_that_are_not_json_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="alert details must be JSON"):
        details_digest(bad)


def test_observation_details_cannot_be_mutated_after_the_fact() -> None:
    details: dict[str, object] = {"p_below": 0.62}
    observation = observe(details=details)
    details["p_below"] = 0.1

    assert observation.details["p_below"] == 0.62


def test_a_record_of_another_alert_is_refused() -> None:
    other = decide(
        observe(company="LX"), None, now=T0, repeat_interval=REPEAT, silenced=False, inhibited=False
    ).record

    with pytest.raises(ValueError, match="belongs to another alert"):
        decide(observe(), other, now=T0, repeat_interval=REPEAT, silenced=False, inhibited=False)


def test_a_naive_observation_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        observe(at=datetime(2024, 8, 1, 9, 0))


# --------------------------------------------------------------------------- property


@settings(max_examples=200, deadline=None)
@given(
    offsets=st.lists(
        st.integers(min_value=0, max_value=int(REPEAT.total_seconds()) - 1), min_size=1, max_size=30
    ),
    same_instant=st.booleans(),
)
def test_identical_observations_within_the_repeat_interval_notify_exactly_once(
    offsets: list[int], same_instant: bool
) -> None:
    store = FakeAlertStore()
    for offset in sorted(offsets):
        at = T0 + timedelta(seconds=offset)
        store.observe(observe(at=T0 if same_instant else at), now=at)

    assert store.reasons() == [("firing", 1, Reason.FIRST)]


# --------------------------------------------------------------------------- purity


@pytest.mark.parametrize("module", ["lifecycle", "silences"])
def test_the_lifecycle_imports_only_the_standard_library(module: str) -> None:
    path = Path(lifecycle.__file__).with_name(f"{module}.py")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = {
        name
        for node in ast.walk(tree)
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
    }

    foreign = {name for name in imported if name.split(".")[0] not in sys.stdlib_module_names}
    assert foreign <= {"services.alerts.lifecycle"}


def test_an_event_like_alert_announces_each_new_content_even_in_the_same_state() -> None:
    """Two raises in a row: a condition would stay quiet (same state), a guidance statement is
    news each time; the same statement again, or an older one replayed, is not."""

    def statement(at: datetime, high: int) -> Observation:
        return replace(
            observe(at=at, kind="guidance_revision", state="raised", details={"high": high}),
            announce_changes=True,
        )

    first = decide(statement(T0, 1230), None, now=T0, repeat_interval=REPEAT, silenced=False,
                   inhibited=False)  # fmt: skip
    second = decide(statement(T0 + DAY, 1250), first.record, now=T0 + DAY,
                    repeat_interval=REPEAT * 30, silenced=False, inhibited=False)  # fmt: skip
    again = decide(statement(T0 + DAY, 1250), second.record, now=T0 + DAY,
                   repeat_interval=REPEAT * 30, silenced=False, inhibited=False)  # fmt: skip
    older = decide(statement(T0, 1230), second.record, now=T0 + 2 * DAY,
                   repeat_interval=REPEAT * 30, silenced=False, inhibited=False)  # fmt: skip
    as_condition = decide(replace(statement(T0 + DAY, 1250), announce_changes=False),
                          first.record, now=T0 + DAY, repeat_interval=REPEAT * 30, silenced=False,
                          inhibited=False)  # fmt: skip

    assert first.notification is not None
    assert second.notification is not None
    assert (second.notification.reason, second.notification.number) == (Reason.UPDATE, 2)
    assert again.notification is None
    assert older.notification is None
    assert as_condition.notification is None
