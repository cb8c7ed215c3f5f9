"""The guidance worker on its in-memory store: what it calls, keeps and says when forecasts,
guidance and actuals arrive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from scipy import stats

from schemas.alerts import AlertKind, AlertSignal, Condition, Severity
from schemas.forecasts import ForecastUpdated, QuantilePoint
from schemas.history import ChangeKind, FactChange, GuidanceChange, HistoryUpdated
from schemas.money import Scale
from schemas.registry import Basis
from services.common.distribution import band_probabilities
from services.common.histories.guidance import GuidanceVersion
from services.guidance.service import GuidanceService, fiscal_year_distribution
from services.guidance.store import FakeGuidanceWorkerStore

pytestmark = pytest.mark.unit
PROBABILITIES = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.975, 0.99)
MILLION = Decimal(1_000_000)
ACME = "ACME"


def forecast(mean: float, *, sd: float = 20.0, period: str = "2024Q2") -> ForecastUpdated:
    """A normal forecast in CNY millions, named after its mean, spread and period."""
    quantiles = tuple(
        QuantilePoint(probability=p, value=Decimal(str(round(mean + sd * stats.norm.ppf(p), 3))))
        for p in PROBABILITIES
    )
    value = {q.probability: q.value for q in quantiles}
    return ForecastUpdated(
        event_id=f"f-{period}-{mean}-{sd}", company=ACME, metric="net_income", period=period,
        basis=Basis.GAAP, currency="CNY", scale=Scale.MILLIONS, point=Decimal(str(mean)),
        lo80=value[0.1], hi80=value[0.9], lo95=value[0.025], hi95=value[0.975],
        quantiles=quantiles, n_obs=12, method="test", as_of=datetime(2024, 5, 1, tzinfo=UTC),
        inputs_digest="t",
    )  # fmt: skip


def statement(
    event_id: str,
    *,
    low: int | None = None,
    high: int | None = None,
    period: str = "2024Q2",
    revision: str = "initial",
    status: str = "issued",
    growth: tuple[str, str] | None = None,
) -> GuidanceVersion:
    """Guidance stated in millions (as the history keeps it, in whole units)."""
    return GuidanceVersion(
        event_id=event_id, metric="net_income", period=period, basis="gaap", status=status,
        low=None if low is None else str(low * MILLION),
        high=None if high is None else str(high * MILLION), currency="CNY",
        yoy_low_pct=growth[0] if growth else None, yoy_high_pct=growth[1] if growth else None,
        issued_in_period="2024Q1", known_at="2024-05-20T00:00:00.000000Z", source=None,
        revision=revision,
    )  # fmt: skip


def guidance_recorded(version: GuidanceVersion) -> HistoryUpdated:
    change = GuidanceChange(metric=version.metric, period=version.period, revision=version.revision)
    return HistoryUpdated(company=ACME, cause_event_id=version.event_id, guidance=(change,))


def actual_recorded(period: str, millions: int, metric: str = "net_income") -> HistoryUpdated:
    fact = FactChange(
        metric=metric, period=period, kind=ChangeKind.RECORDED, value=Decimal(millions) * MILLION
    )
    return HistoryUpdated(company=ACME, cause_event_id=f"r-{period}", facts=(fact,))


class Scene:
    """A guidance worker on a fake store, with the other workers' writes it reacts to."""

    def __init__(self) -> None:
        self.store = FakeGuidanceWorkerStore()
        self.service = GuidanceService(store=self.store)

    async def guide(self, version: GuidanceVersion) -> None:
        self.store.record_guidance(ACME, version)
        await self._applied(await self.service.apply_history([guidance_recorded(version)]))

    async def publish(self, published: ForecastUpdated) -> None:
        self.store.publish_forecast(published)
        await self._applied(await self.service.apply_forecasts([published]))

    async def report(
        self, period: str, millions: int, known_at: datetime = datetime(2024, 8, 20, tzinfo=UTC)
    ) -> None:
        value = Decimal(millions) * MILLION
        self.store.record_actual(ACME, "net_income", period, value, known_at)
        await self._applied(await self.service.apply_history([actual_recorded(period, millions)]))

    def said(self, kind: AlertKind) -> list[AlertSignal]:
        return [s for s in self.store.signals if s.kind is kind]

    @staticmethod
    async def _applied(results: list[BaseException | None]) -> None:
        assert results == [None] * len(results)


def probabilities(published: ForecastUpdated, low: float, high: float) -> tuple[float, ...]:
    return band_probabilities(published.quantile_pairs(), low=low, high=high).as_tuple()


# --------------------------------------------------------------------------- band calls


async def test_a_forecast_against_guidance_is_called_kept_and_announced() -> None:
    scene = Scene()
    await scene.guide(statement("g1", low=970, high=1030))

    await scene.publish(forecast(900.0))

    check = await scene.store.latest_check(ACME, "net_income", "2024Q2")
    assert check is not None
    assert (check.state, check.low, check.high) == ("likely_below", 970.0, 1030.0)
    assert (check.p_below, check.p_inside, check.p_above) == probabilities(
        forecast(900.0), 970.0, 1030.0
    )
    (signal,) = scene.said(AlertKind.BAND_CHECK)
    assert (signal.state, signal.severity) == ("likely_below", Severity.WARNING)
    assert signal.cause_event_id == forecast(900.0).event_id


async def test_a_call_moves_only_when_another_side_leads_by_the_margin() -> None:
    scene = Scene()
    await scene.guide(statement("g1", low=970, high=1030))
    below, inside, _ = probabilities(forecast(971.0), 970.0, 1030.0)
    assert 0 < inside - below < 0.1  # inside leads, by less than the margin

    for mean in (900.0, 971.0, 1000.0):
        await scene.publish(forecast(mean))

    states = [s.state for s in scene.said(AlertKind.BAND_CHECK)]
    assert states == ["likely_below", "likely_below", "likely_inside"]
    fresh = Scene()
    await fresh.guide(statement("g1", low=970, high=1030))
    await fresh.publish(forecast(971.0))
    assert [s.state for s in fresh.said(AlertKind.BAND_CHECK)] == ["likely_inside"]


async def test_a_redelivered_forecast_is_one_call_on_the_scorecard() -> None:
    scene = Scene()
    await scene.guide(statement("g1", low=970, high=1030))

    for mean in (900.0, 900.0, 1000.0):
        await scene.publish(forecast(mean))

    calls = await scene.store.calls(ACME, "net_income", "2024Q2")
    assert [c.point for c in calls] == [900.0, 1000.0]
    ids = [s.event_id for s in scene.said(AlertKind.BAND_CHECK)]
    assert ids[0] == ids[1] != ids[2]


async def test_a_forecast_without_guidance_is_not_called() -> None:
    scene = Scene()

    await scene.publish(forecast(900.0))

    assert scene.store.signals == []
    assert await scene.store.latest_check(ACME, "net_income", "2024Q2") is None


# --------------------------------------------------------------------------- revisions


async def test_a_revision_is_announced_and_the_call_is_made_against_the_new_band() -> None:
    scene = Scene()
    await scene.guide(statement("g1", low=970, high=1030))
    await scene.publish(forecast(1000.0))

    await scene.guide(statement("g2", low=1050, high=1100, revision="raised"))

    revisions = scene.said(AlertKind.GUIDANCE_REVISION)
    assert [(s.state, s.severity) for s in revisions] == [
        ("initial", Severity.INFO),
        ("raised", Severity.INFO),
    ]
    assert "1,050.0–1,100.0 million CNY" in revisions[-1].summary
    check = await scene.store.latest_check(ACME, "net_income", "2024Q2")
    assert check is not None
    assert (check.guidance_event_id, check.low, check.state) == ("g2", 1050.0, "likely_below")


async def test_a_lowered_guidance_is_a_warning() -> None:
    scene = Scene()

    await scene.guide(statement("g1", low=970, high=1030, revision="lowered"))

    (revision,) = scene.said(AlertKind.GUIDANCE_REVISION)
    assert (revision.state, revision.severity) == ("lowered", Severity.WARNING)


async def test_a_band_stated_with_growth_inconsistent_with_the_prior_year_is_flagged() -> None:
    scene = Scene()
    await scene.report("2023Q2", 1000)

    await scene.guide(statement("g1", low=1100, high=1150, growth=("20", "25")))

    (arithmetic,) = scene.said(AlertKind.GUIDANCE_ARITHMETIC)
    assert (arithmetic.condition, arithmetic.severity) == (Condition.FIRING, Severity.WARNING)
    assert arithmetic.details["prior_period"] == "2023Q2"


# --------------------------------------------------------------------------- withdrawn guidance


async def test_withdrawn_guidance_is_announced_and_no_longer_called() -> None:
    scene = Scene()
    await scene.guide(statement("g1", low=970, high=1030))
    await scene.publish(forecast(900.0))

    await scene.guide(statement("g2", revision="withdrawn", status="withdrawn"))
    await scene.publish(forecast(1000.0))
    await scene.report("2024Q2", 1000)

    (withdrawn,) = [s for s in scene.said(AlertKind.GUIDANCE_REVISION) if s.state == "withdrawn"]
    assert withdrawn.severity is Severity.WARNING
    assert [s.state for s in scene.said(AlertKind.BAND_CHECK)] == ["likely_below"]
    assert scene.said(AlertKind.OUTCOME) == []


# --------------------------------------------------------------------------- fiscal years


async def test_fiscal_year_guidance_is_checked_on_reported_quarters_and_remaining_forecasts() -> (
    None
):
    scene = Scene()
    await scene.guide(statement("fy", low=3900, high=4100, period="FY2024"))
    for quarter in ("2024Q1", "2024Q2"):
        await scene.report(quarter, 1000)
    await scene.publish(forecast(1000.0, period="2024Q3"))
    assert await scene.store.latest_check(ACME, "net_income", "FY2024") is None  # Q4 unknown

    await scene.publish(forecast(1020.0, period="2024Q4"))

    check = await scene.store.latest_check(ACME, "net_income", "FY2024")
    assert check is not None
    year = fiscal_year_distribution(
        period="FY2024",
        reported=[Decimal(1000) * MILLION] * 2,
        remaining=[forecast(1000.0, period="2024Q3"), forecast(1020.0, period="2024Q4")],
    )
    assert check.point == pytest.approx(4020.0)
    expected = band_probabilities(year.quantiles, low=3900.0, high=4100.0).as_tuple()
    assert (check.p_below, check.p_inside, check.p_above) == expected
    assert check.forecast_event_id == year.source_id


async def test_a_fiscal_year_with_all_four_quarters_reported_gets_its_outcome() -> None:
    scene = Scene()
    await scene.guide(statement("fy", low=3900, high=4100, period="FY2024"))

    for quarter in ("2024Q1", "2024Q2", "2024Q3", "2024Q4"):
        await scene.report(quarter, 1050)

    (outcome,) = scene.said(AlertKind.OUTCOME)
    assert (outcome.period, outcome.state, outcome.details["actual"]) == ("FY2024", "beat", 4200.0)


async def test_an_outcome_says_when_its_actual_became_known_a_year_when_its_last_quarter_did() -> (
    None
):
    scene = Scene()
    await scene.guide(statement("fy", low=3900, high=4100, period="FY2024"))
    quarters = ("2024Q1", "2024Q2", "2024Q3", "2024Q4")
    known = [datetime(2025, 2, 20, tzinfo=UTC) - timedelta(days=90 * n) for n in range(4)]

    for quarter, known_at in zip(quarters, known, strict=True):
        await scene.report(quarter, 1050, known_at)

    (outcome,) = scene.said(AlertKind.OUTCOME)
    assert outcome.details["known_at"] == max(known).isoformat()


# --------------------------------------------------------------------------- outcomes


@pytest.mark.parametrize(
    ("actual", "verdict", "severity"),
    [
        (1050, "beat", Severity.INFO),
        (1000, "in_line", Severity.INFO),
        (950, "miss", Severity.WARNING),
    ],
)
async def test_a_reported_actual_gets_a_verdict_with_the_scorecard_and_settles_the_call(
    actual: int, verdict: str, severity: Severity
) -> None:
    scene = Scene()
    await scene.guide(statement("g1", low=970, high=1030))
    for mean in (900.0, 1000.0):
        await scene.publish(forecast(mean))

    await scene.report("2024Q2", actual)
    await scene.publish(forecast(1100.0))  # a late forecast of a settled quarter

    (outcome,) = scene.said(AlertKind.OUTCOME)
    assert (outcome.state, outcome.severity) == (verdict, severity)
    assert [c["point"] for c in outcome.details["scorecard"]] == [900.0, 1000.0]  # type: ignore[index, union-attr]
    assert "Guidepost made 2 call(s)" in outcome.summary
    settled = scene.said(AlertKind.BAND_CHECK)[-1]
    assert (settled.condition, settled.details["verdict"]) == (Condition.CLEAR, verdict)
    assert len(scene.said(AlertKind.BAND_CHECK)) == 3  # two calls and the settlement


async def test_growth_guidance_is_judged_against_the_band_derived_from_the_prior_year() -> None:
    scene = Scene()
    await scene.guide(statement("g1", growth=("5", "10")))
    await scene.publish(forecast(1080.0))
    assert scene.said(AlertKind.BAND_CHECK) == []  # no prior year yet, so no band

    await scene.report("2023Q2", 1000)
    await scene.report("2024Q2", 1120)

    (call,) = [s for s in scene.said(AlertKind.BAND_CHECK) if s.condition is Condition.FIRING]
    assert (call.details["low"], call.details["high"]) == (1050.0, 1100.0)
    (outcome,) = scene.said(AlertKind.OUTCOME)
    assert outcome.state == "beat"
    assert outcome.details["derived_from"] == "the 2023Q2 actual of 1,000.0 grown +5.0% to +10.0%"
