"""What the guidance worker says: every `AlertSignal` it publishes, built by `signal`.

Signal ids derive from their causes, so a replayed input yields the same signals.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from schemas.alerts import AlertKind, AlertSignal, Condition, Severity
from schemas.base import utc_now
from schemas.money import Scale
from services.common.guidance_rules import check_yoy_arithmetic
from services.common.histories.guidance import GuidanceVersion
from services.common.ids import derived_id
from services.guidance.core import (
    BandCheck,
    BandState,
    GuidedBand,
    band_rounding,
    band_text,
    classify_outcome,
    derivation_text,
    growth_text,
)
from services.guidance.periods import prior_year

PRODUCER = "guidepost-guidance"
KNOWN_AT_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # services.common.fact.known_at_text
MILLIONS = Scale.MILLIONS.factor
BAND_SEVERITY = {
    BandState.LIKELY_BELOW: Severity.WARNING,
    BandState.LIKELY_INSIDE: Severity.INFO,
    BandState.LIKELY_ABOVE: Severity.INFO,
}
STATE_WORDS = {
    BandState.LIKELY_BELOW: "likely below",
    BandState.LIKELY_INSIDE: "likely inside",
    BandState.LIKELY_ABOVE: "likely above",
}


def signal(
    company: str,
    kind: AlertKind,
    *,
    event_id: str,
    period: str,
    subject: str,
    summary: str,
    details: dict[str, Any],
    severity: Severity = Severity.INFO,
    condition: Condition = Condition.FIRING,
    state: str | None = None,
    cause_event_id: str | None = None,
    occurred_at: datetime | None = None,
) -> AlertSignal:
    """A signal of the guidance worker (observed now unless `occurred_at` says otherwise)."""
    return AlertSignal(
        event_id=event_id,
        occurred_at=occurred_at or utc_now(),
        company=company,
        producer=PRODUCER,
        kind=kind,
        period=period,
        subject=subject,
        condition=condition,
        severity=severity,
        state=state,
        summary=summary,
        details=details,
        cause_event_id=cause_event_id,
    )


def band_signal(company: str, check: BandCheck, band: GuidedBand) -> AlertSignal:
    state = BandState(check.state)
    derived = f" (derived from {check.derived_from})" if check.derived_from else ""
    return signal(
        company,
        AlertKind.BAND_CHECK,
        event_id=derived_id(
            check.forecast_event_id, check.guidance_event_id, "band", *band.derivation_parts()
        ),
        period=check.period,
        subject=check.metric,
        severity=BAND_SEVERITY[state],
        state=state.value,
        summary=(
            f"{company} {check.metric} {check.period} is {STATE_WORDS[state]} guidance, "
            f"{check.confidence_word} confidence ({check.confidence:.0%}): "
            f"forecast {check.point:,.1f} (80% {check.lo80:,.1f}–{check.hi80:,.1f}) "
            f"vs guidance {band_text(check.low, check.high)} {check.currency} {check.scale}"
            f"{derived}; P(below) {check.p_below:.0%}, P(inside) {check.p_inside:.0%}, "
            f"P(above) {check.p_above:.0%}."
        ),
        details={k: _finite_or_none(v) for k, v in asdict(check).items()},
        cause_event_id=check.forecast_event_id,
    )


def _finite_or_none(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def revision_signal(company: str, guidance: GuidanceVersion) -> AlertSignal:
    """Observed when the statement became known: a redelivered older statement is older than
    what its alert already holds, and changes nothing."""
    revision = guidance.revision
    return signal(
        company,
        AlertKind.GUIDANCE_REVISION,
        event_id=derived_id(guidance.event_id, "revision"),
        occurred_at=datetime.strptime(guidance.known_at, KNOWN_AT_FORMAT).replace(tzinfo=UTC),
        period=guidance.period,
        subject=guidance.metric,
        severity=Severity.WARNING if revision in ("lowered", "withdrawn") else Severity.INFO,
        state=revision,
        summary=(
            f"{company} {guidance.metric} guidance for {guidance.period}: {revision} "
            f"({stated_text(guidance)})."
        ),
        details={"revision": revision, **asdict(guidance)},
    )


def stated_text(guidance: GuidanceVersion) -> str:
    band, growth = guidance.band(), guidance.growth()
    if band is not None:
        amounts = band_text(float(band[0] / MILLIONS), float(band[1] / MILLIONS))
        return f"{amounts} million {guidance.currency or ''}".rstrip()
    if growth is not None:
        yoy = GuidedBand(None, None, yoy_low_pct=growth[0], yoy_high_pct=growth[1])
        return f"growth of {growth_text(yoy)} on {prior_year(guidance.period)}"
    return "no range"


def arithmetic_signal(
    company: str,
    guidance: GuidanceVersion,
    *,
    bounds: tuple[Decimal, Decimal],
    growth: tuple[str, str],
    prior_period: str,
    prior: Decimal,
) -> AlertSignal:
    """Whether an amount band stated with its growth agrees with the prior year's recorded
    actual."""
    check = check_yoy_arithmetic(
        low=float(bounds[0] / MILLIONS),
        high=float(bounds[1] / MILLIONS),
        yoy_low_pct=float(growth[0]),
        yoy_high_pct=float(growth[1]),
        prior_actual=float(prior / MILLIONS),
        band_rounding=band_rounding(bounds, MILLIONS),
    )
    return signal(
        company,
        AlertKind.GUIDANCE_ARITHMETIC,
        event_id=derived_id(guidance.event_id, "arithmetic", str(prior)),
        period=guidance.period,
        subject=guidance.metric,
        condition=Condition.CLEAR if check.consistent else Condition.FIRING,
        severity=Severity.INFO if check.consistent else Severity.WARNING,
        summary=f"{company} {guidance.metric} {guidance.period} guidance: {check.explanation}",
        details={**asdict(check), "prior_period": prior_period},
    )


def outcome_signals(
    company: str,
    guidance: GuidanceVersion,
    band: GuidedBand,
    actual: Decimal,
    calls: list[BandCheck],
    known_at: datetime | None = None,
) -> list[AlertSignal]:
    """The verdict on the reported actual with the scorecard of calls made before it, and the
    band check it settles. `known_at`: when the actual became known (the timeline's place)."""
    low, high = band.bounds_in(MILLIONS)
    value = float(actual / MILLIONS)
    outcome = classify_outcome(actual=value, low=low, high=high)
    words = outcome.verdict.replace("_", " ")
    reference = "bound" if low is None or high is None else "midpoint"
    derived_from = derivation_text(band, MILLIONS) if band.derived else None
    derived = f" (derived from {derived_from})" if derived_from else ""
    outcome_signal = signal(
        company,
        AlertKind.OUTCOME,
        event_id=derived_id(guidance.event_id, "outcome", str(actual), *band.derivation_parts()),
        period=guidance.period,
        subject=guidance.metric,
        severity=Severity.WARNING if outcome.verdict == "miss" else Severity.INFO,
        state=outcome.verdict,
        summary=(
            f"{company} {guidance.metric} {guidance.period}: {words} — actual {value:,.1f} "
            f"vs guidance {band_text(low, high)} million{derived} ({outcome.vs_midpoint} "
            f"{reference}, {outcome.surprise_vs_mid_pct:+.1f}%); "
            f"Guidepost made {len(calls)} call(s)."
        ),
        details={
            "actual": value,
            "low": low,
            "high": high,
            "band_source": "derived" if band.derived else "stated",
            "derived_from": derived_from,
            "verdict": outcome.verdict,
            "vs_midpoint": outcome.vs_midpoint,
            "surprise_vs_mid_pct": _finite_or_none(outcome.surprise_vs_mid_pct),
            "scorecard": [_scorecard_entry(c) for c in calls],
            "known_at": known_at.isoformat() if known_at else None,
        },
    )
    settled = signal(
        company,
        AlertKind.BAND_CHECK,
        event_id=derived_id(
            guidance.event_id, "band-settled", str(actual), *band.derivation_parts()
        ),
        period=guidance.period,
        subject=guidance.metric,
        condition=Condition.CLEAR,
        summary=(
            f"{company} {guidance.metric} {guidance.period} reported: "
            f"the band check is settled ({words})."
        ),
        details={"actual": value, "verdict": outcome.verdict},
    )
    return [outcome_signal, settled]


def _scorecard_entry(call: BandCheck) -> dict[str, Any]:
    return {
        "at": call.checked_at,
        "point": call.point,
        "p_below": call.p_below,
        "p_inside": call.p_inside,
        "p_above": call.p_above,
        "state": call.state,
        "forecast_event_id": call.forecast_event_id,
    }
