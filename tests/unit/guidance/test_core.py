"""Specifications for guidance arithmetic and band logic."""

from __future__ import annotations

import ast
import itertools
import math
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy import stats

from services.common import guidance_rules
from services.common.distribution import band_probabilities, combine_fiscal_year
from services.common.guidance_rules import (
    Band,
    StatedRange,
    check_yoy_arithmetic,
    classify_revision,
    classify_statement_revision,
    derive_yoy_band,
)
from services.guidance import core
from services.guidance.core import (
    STATE_ORDER,
    BandState,
    HysteresisSpec,
    classify_outcome,
    confidence_word,
    distance_to_nearer_bound,
    next_band_state,
    state_probability,
)

pytestmark = pytest.mark.unit

GRID_P = tuple(round(0.01 * i, 2) for i in range(1, 100))


def normal_grid(
    mean: float, sd: float, probs: tuple[float, ...] = GRID_P
) -> list[tuple[float, float]]:
    return [(p, mean + sd * float(stats.norm.ppf(p))) for p in probs]


@pytest.mark.parametrize("module", [core, guidance_rules], ids=lambda m: m.__name__)
def test_guidance_modules_import_only_the_numerical_stack_and_the_shared_rules(
    module: ModuleType,
) -> None:
    tree = ast.parse(Path(str(module.__file__)).read_text())
    modules = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
        if not isinstance(node, ast.ImportFrom) or node.module
    }
    shared = {"services.common.distribution", "services.common.guidance_rules"}
    roots = {str(name).split(".")[0] for name in modules - shared}
    assert roots <= {"__future__", "math", "collections", "dataclasses", "datetime", "decimal"} | {
        "enum",
        "typing",
        "numpy",
        "scipy",
    }


# --------------------------------------------------------------------------- Band and revisions


def test_a_band_with_low_above_high_is_refused() -> None:
    with pytest.raises(ValueError, match="low must be <= high"):
        Band(low=1230.0, high=1170.0)


def test_band_midpoint_and_width_are_in_the_bands_units() -> None:
    band = Band(low=1170.0, high=1230.0)

    assert (band.midpoint, band.width) == (1200.0, 60.0)


@pytest.mark.parametrize(
    ("previous", "new", "expected"),
    [
        (None, Band(low=100, high=120), "initial"),
        (Band(low=100, high=120), None, "withdrawn"),
        (Band(low=100, high=120), Band(low=100, high=120), "maintained"),
        (Band(low=100, high=120), Band(low=105, high=125), "raised"),
        (Band(low=100, high=120), Band(low=100, high=125), "raised"),
        (Band(low=100, high=120), Band(low=105, high=120), "raised"),
        (Band(low=100, high=120), Band(low=95, high=115), "lowered"),
        (Band(low=100, high=120), Band(low=100, high=115), "lowered"),
        (Band(low=100, high=120), Band(low=105, high=115), "narrowed"),
        # mixed moves follow the width, whichever way the midpoint went
        (Band(low=100, high=120), Band(low=108, high=118), "narrowed"),
        (Band(low=100, high=120), Band(low=95, high=125), "widened"),
        (Band(low=100, high=120), Band(low=90, high=122), "widened"),
    ],
)
def test_revision_is_named_by_how_each_bound_moved(
    previous: Band | None, new: Band | None, expected: str
) -> None:
    assert classify_revision(previous, new) == expected


def test_moves_within_the_tolerance_count_as_maintained() -> None:
    old, new = Band(low=100.0, high=120.0), Band(low=100.04, high=119.97)

    assert classify_revision(old, new, tolerance=0.05) == "maintained"
    assert classify_revision(old, new) == "narrowed"


def test_classifying_two_missing_bands_is_refused() -> None:
    with pytest.raises(ValueError, match="no guidance"):
        classify_revision(None, None)


@pytest.mark.parametrize(
    ("previous", "new", "expected"),
    [
        (Band(low=10.0, high=None), Band(low=10.0, high=None), "maintained"),
        (Band(low=10.0, high=None), Band(low=12.0, high=None), "raised"),
        (Band(low=10.0, high=15.0), Band(low=10.0, high=None), "raised"),
        (Band(low=10.0, high=None), Band(low=10.0, high=15.0), "lowered"),
        (Band(low=None, high=15.0), Band(low=10.0, high=None), "raised"),
        (Band(low=10.0, high=None), Band(low=8.0, high=12.0), "lowered"),
    ],
)
def test_an_open_bound_sits_beyond_every_stated_one(
    previous: Band, new: Band, expected: str
) -> None:
    assert classify_revision(previous, new) == expected


def test_a_growth_statement_replacing_an_amount_band_is_rebased() -> None:
    amounts = StatedRange("amount", Band(low=1170.0, high=1230.0))
    growth = StatedRange("growth", Band(low=7.0, high=12.5))

    assert classify_statement_revision(amounts, growth) == "rebased"
    assert classify_statement_revision(growth, amounts) == "rebased"
    assert classify_statement_revision(growth, StatedRange("growth", Band(8.0, 12.5))) == "raised"
    assert classify_statement_revision(None, growth) == "initial"
    assert classify_statement_revision(growth, None) == "withdrawn"


def test_a_band_needs_a_bound_and_a_one_sided_band_is_infinitely_wide() -> None:
    with pytest.raises(ValueError, match="at least one bound"):
        Band(low=None, high=None)
    at_least = Band(low=1170.0, high=None)
    assert (at_least.midpoint, at_least.width, at_least.one_sided) == (1170.0, math.inf, True)


# --------------------------------------------------------------------------- YoY arithmetic


def test_gaap_seed_band_is_consistent_with_its_recorded_prior() -> None:
    check = check_yoy_arithmetic(
        low=1170, high=1230, yoy_low_pct=7.0, yoy_high_pct=12.5, prior_actual=1093.4
    )

    assert check.consistent
    assert_allclose(
        [check.implied_prior_low, check.implied_prior_high], [1093.5, 1093.3], atol=0.05
    )
    assert_allclose(check.tolerance, 0.51, atol=0.01)


def test_non_gaap_seed_band_is_consistent_with_its_recorded_prior() -> None:
    # 1220 / 1.064 = 1146.62 and 1280 / 1.116 = 1146.95; 1146.6 rounds back to +6.4 % and +11.6 %.
    check = check_yoy_arithmetic(
        low=1220, high=1280, yoy_low_pct=6.4, yoy_high_pct=11.6, prior_actual=1146.6
    )

    assert check.consistent
    assert_allclose(
        [check.implied_prior_low, check.implied_prior_high], [1146.617, 1146.953], atol=1e-3
    )


def test_a_wrong_prior_is_inconsistent_and_the_explanation_shows_the_arithmetic() -> None:
    check = check_yoy_arithmetic(
        low=1170, high=1230, yoy_low_pct=7.0, yoy_high_pct=12.5, prior_actual=1000
    )

    assert not check.consistent
    assert check.explanation.startswith("Inconsistent:")
    for figure in ("1,093.5", "1,093.3", "1,000.0", "+17.00%", "+23.00%"):
        assert figure in check.explanation
    assert "\n" not in check.explanation


def test_a_prior_just_outside_what_rounding_allows_is_inconsistent() -> None:
    # +7.0 % admits priors down to 1170 / 1.0705 = 1092.95; 1092.9 would round to +7.1 %.
    check = check_yoy_arithmetic(
        low=1170, high=1230, yoy_low_pct=7.0, yoy_high_pct=12.5, prior_actual=1092.9
    )

    assert not check.consistent


def test_band_rounding_widens_what_counts_as_consistent() -> None:
    kwargs = dict(low=1170.0, high=1230.0, yoy_low_pct=7.0, yoy_high_pct=12.5, prior_actual=1095.0)

    assert not check_yoy_arithmetic(**kwargs).consistent
    assert check_yoy_arithmetic(**kwargs, band_rounding=10.0).consistent


@settings(max_examples=200, deadline=None)
@given(
    prior=st.floats(min_value=50.0, max_value=50_000.0),
    growth_low=st.floats(min_value=-40.0, max_value=60.0),
    spread=st.floats(min_value=0.0, max_value=20.0),
)
@example(prior=32081.5, growth_low=0.75, spread=2.0)  # a half unit: the prior sits on an edge
def test_percentages_rounded_from_the_true_prior_are_always_consistent(
    prior: float, growth_low: float, spread: float
) -> None:
    low = prior * (1 + growth_low / 100)
    high = prior * (1 + (growth_low + spread) / 100)
    stated_low = round((low / prior - 1) * 100, 1)
    stated_high = round((high / prior - 1) * 100, 1)

    check = check_yoy_arithmetic(
        low=low, high=high, yoy_low_pct=stated_low, yoy_high_pct=stated_high, prior_actual=prior
    )

    assert check.consistent, check.explanation


# --------------------------------------------------------------------------- YoY bands


def test_a_growth_band_is_the_prior_actual_grown_by_each_stated_bound() -> None:
    low, high = derive_yoy_band(prior_actual=1093.4, yoy_low_pct=7.0, yoy_high_pct=12.5)

    assert_allclose([low, high], [1093.4 * 1.07, 1093.4 * 1.125])  # type: ignore[list-item]


def test_growth_in_decimals_stays_exact() -> None:
    low, high = derive_yoy_band(
        prior_actual=Decimal("1093400000"), yoy_low_pct=Decimal("10"), yoy_high_pct=None
    )

    assert (low, high) == (Decimal("1202740000"), None)


def test_one_stated_growth_bound_leaves_the_other_side_open() -> None:
    assert derive_yoy_band(prior_actual=200.0, yoy_low_pct=None, yoy_high_pct=-5.0) == (
        None,
        190.0,
    )


@pytest.mark.parametrize(
    ("prior", "low", "high", "message"),
    [
        (0.0, 5.0, 10.0, "not positive"),
        (-50.0, 5.0, 10.0, "not positive"),
        (100.0, None, None, "yoy_low_pct or yoy_high_pct"),
        (100.0, 12.0, 10.0, "exceeds"),
        (100.0, -120.0, None, "below -100"),
    ],
)
def test_growth_that_names_no_band_is_refused(
    prior: float, low: float | None, high: float | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        derive_yoy_band(prior_actual=prior, yoy_low_pct=low, yoy_high_pct=high)


# --------------------------------------------------------------------------- band state


MARGIN = HysteresisSpec().margin


def call(previous: BandState | None, triple: tuple[float, float, float]) -> BandState:
    below, inside, above = triple
    return next_band_state(previous, p_below=below, p_inside=inside, p_above=above)


def probability_of(state: BandState, triple: tuple[float, float, float]) -> float:
    below, inside, above = triple
    return state_probability(state, p_below=below, p_inside=inside, p_above=above)


@pytest.mark.parametrize(
    ("previous", "triple", "expected"),
    [
        # the reported contradiction: P(below) leads, so the call is below, not "on track"
        (None, (0.46, 0.37, 0.17), BandState.LIKELY_BELOW),
        (None, (0.2, 0.5, 0.3), BandState.LIKELY_INSIDE),
        (None, (0.1, 0.3, 0.6), BandState.LIKELY_ABOVE),
        (None, (0.4, 0.2, 0.4), BandState.LIKELY_BELOW),  # a tie calls the costlier miss
        (BandState.LIKELY_INSIDE, (0.46, 0.37, 0.17), BandState.LIKELY_INSIDE),  # 0.09 < margin
        (BandState.LIKELY_INSIDE, (0.48, 0.36, 0.16), BandState.LIKELY_BELOW),  # 0.12 >= margin
        (BandState.LIKELY_BELOW, (0.35, 0.25, 0.40), BandState.LIKELY_BELOW),
        (BandState.LIKELY_BELOW, (0.30, 0.25, 0.45), BandState.LIKELY_ABOVE),
        # a side that overtakes by the margin while a third leads moves the call to the leader
        (BandState.LIKELY_BELOW, (0.10, 0.40, 0.50), BandState.LIKELY_ABOVE),
    ],
)
def test_the_call_is_the_likeliest_side_and_moves_only_when_another_leads_by_the_margin(
    previous: BandState | None, triple: tuple[float, float, float], expected: BandState
) -> None:
    assert call(previous, triple) is expected


def run_states(
    triples: list[tuple[float, float, float]], start: BandState | None = None
) -> list[BandState]:
    states: list[BandState] = []
    state = start
    for triple in triples:
        state = call(state, triple)
        states.append(state)
    return states


def changes(states: list[BandState]) -> int:
    """Number of state changes along the sequence."""
    return sum(a is not b for a, b in itertools.pairwise(states))


def simplex(raw: tuple[float, float, float]) -> tuple[float, float, float]:
    """Three probabilities summing to one from three non-negative weights."""
    total = sum(raw)
    if total <= 0:
        return (1 / 3, 1 / 3, 1 / 3)
    below, inside = raw[0] / total, raw[1] / total
    return below, inside, max(0.0, 1.0 - below - inside)


WEIGHTS = st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0))


@settings(max_examples=300, deadline=None)
@given(st.lists(WEIGHTS, min_size=1, max_size=40), st.sampled_from([None, *STATE_ORDER]))
def test_the_called_side_is_never_more_than_the_margin_behind_the_likeliest(
    raw: list[tuple[float, float, float]], start: BandState | None
) -> None:
    triples = [simplex(r) for r in raw]

    for triple, state in zip(triples, run_states(triples, start), strict=True):
        assert probability_of(state, triple) > max(triple) - MARGIN
        if max(triple) - sorted(triple)[1] >= MARGIN:  # a clear leader is always the call
            assert probability_of(state, triple) == max(triple)


@settings(max_examples=300, deadline=None)
@given(
    base=WEIGHTS,
    noise=st.lists(st.tuples(st.floats(-1.0, 1.0), st.floats(-1.0, 1.0)), min_size=2, max_size=60),
)
def test_probabilities_wandering_by_less_than_a_quarter_margin_keep_the_first_call(
    base: tuple[float, float, float], noise: list[tuple[float, float]]
) -> None:
    below, inside, _ = simplex(base)
    room = 0.99 * MARGIN / 12  # below moves <= room, inside <= 2 room, above <= 3 room < m / 4
    triples = []
    for a, b in noise:
        moved_below = min(max(below + a * room, 0.0), 1.0)
        moved_inside = min(max(inside + b * room, 0.0), 1.0 - moved_below)
        triples.append((moved_below, moved_inside, 1.0 - moved_below - moved_inside))

    assert changes(run_states(triples)) == 0


@settings(max_examples=300, deadline=None)
@given(
    x=st.floats(min_value=0.3, max_value=0.5),
    lead=st.floats(min_value=0.0, max_value=0.999 * MARGIN),
    order=st.lists(st.booleans(), min_size=2, max_size=40),
)
def test_a_split_forecast_swapping_between_two_sides_keeps_its_first_call(
    x: float, lead: float, order: list[bool]
) -> None:
    x = min(max(x, (1.0 - lead) / 3.0), (1.0 - lead) / 2.0)  # the third side trails both
    y, rest = x + lead, max(0.0, 1.0 - 2 * x - lead)
    triples = [(x, rest, y) if flip else (y, rest, x) for flip in order]

    assert changes(run_states(triples)) == 0


def test_probabilities_that_do_not_sum_to_one_are_refused() -> None:
    with pytest.raises(ValueError, match="p_below \\+ p_inside \\+ p_above = 1"):
        next_band_state(None, p_below=0.7, p_inside=0.2, p_above=0.6)


def test_a_margin_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="margin"):
        HysteresisSpec(margin=1.0)


@pytest.mark.parametrize(
    ("probability", "word"),
    [
        *[(0.34, "low"), (0.49, "low"), (0.5, "moderate"), (0.69, "moderate")],
        *[(0.7, "high"), (0.89, "high"), (0.9, "very high"), (1.0, "very high")],
    ],
)
def test_confidence_is_worded_from_the_probability_of_the_called_side(
    probability: float, word: str
) -> None:
    assert confidence_word(probability) == word


# --------------------------------------------------------------------------- outcomes


@pytest.mark.parametrize(
    ("actual", "verdict", "vs_midpoint", "distance"),
    [
        (1250.0, "beat", "above", 20.0),
        (1230.0, "in_line", "above", 0.0),
        (1203.0, "in_line", "at", 0.0),
        (1190.0, "in_line", "below", 0.0),
        (1170.0, "in_line", "below", 0.0),
        (1160.0, "miss", "below", -10.0),
    ],
)
def test_outcome_is_classified_against_the_band_and_its_midpoint(
    actual: float, verdict: str, vs_midpoint: str, distance: float
) -> None:
    outcome = classify_outcome(actual=actual, low=1170.0, high=1230.0)

    assert (outcome.verdict, outcome.vs_midpoint) == (verdict, vs_midpoint)
    assert_allclose(outcome.distance_to_band, distance)
    assert_allclose(outcome.surprise_vs_mid_pct, (actual - 1200.0) / 12.0)


def test_surprise_against_a_zero_midpoint_is_undefined() -> None:
    outcome = classify_outcome(actual=5.0, low=-10.0, high=10.0)

    assert math.isnan(outcome.surprise_vs_mid_pct)
    assert outcome.vs_midpoint == "above"


@pytest.mark.parametrize(
    ("point", "expected"), [(90.0, -10.0), (100.0, 0.0), (110.0, 0.0), (120.0, 0.0), (125.0, 5.0)]
)
def test_distance_is_negative_below_positive_above_and_zero_inside(
    point: float, expected: float
) -> None:
    assert distance_to_nearer_bound(point=point, low=100.0, high=120.0) == expected


# --------------------------------------------------------------------------- fiscal years


def test_fiscal_year_of_independent_normal_quarters_matches_the_analytic_sum() -> None:
    means, sds = (300.0, 310.0, 320.0), (20.0, 25.0, 30.0)
    grids = [normal_grid(m, s) for m, s in zip(means, sds, strict=True)]

    combined = dict(combine_fiscal_year(reported=[250.0], remaining_quantiles=grids))

    total = stats.norm(250.0 + sum(means), math.sqrt(sum(s**2 for s in sds)))
    probs = [0.05, 0.25, 0.5, 0.75, 0.95]
    assert_allclose([combined[p] for p in probs], total.ppf(probs), atol=1.5)


def test_fiscal_year_with_perfectly_correlated_quarters_adds_their_spreads() -> None:
    means, sds = (300.0, 310.0), (20.0, 25.0)
    grids = [normal_grid(m, s) for m, s in zip(means, sds, strict=True)]

    combined = dict(combine_fiscal_year(reported=[], remaining_quantiles=grids, rho=1.0))

    assert_allclose(combined[0.1], 610.0 + 45.0 * stats.norm.ppf(0.1), atol=1.5)
    assert_allclose(combined[0.9], 610.0 + 45.0 * stats.norm.ppf(0.9), atol=1.5)


def test_fiscal_year_sampling_is_reproducible_from_its_seed() -> None:
    grids = [normal_grid(300.0, 20.0, probs=(0.1, 0.5, 0.9))] * 2

    first = combine_fiscal_year(reported=[100.0], remaining_quantiles=grids, seed=7)
    second = combine_fiscal_year(reported=[100.0], remaining_quantiles=grids, seed=7)

    assert first == second
    assert [p for p, _ in first] == [0.1, 0.5, 0.9]


def test_a_complete_fiscal_year_is_its_reported_sum() -> None:
    combined = combine_fiscal_year(
        reported=[1.0, 2.0, 3.0, 4.0], remaining_quantiles=[], probabilities=[0.1, 0.9]
    )

    assert combined == ((0.1, 10.0), (0.9, 10.0))


def test_a_complete_fiscal_year_without_output_probabilities_is_refused() -> None:
    with pytest.raises(ValueError, match="probabilities"):
        combine_fiscal_year(reported=[1.0, 2.0, 3.0, 4.0], remaining_quantiles=[])


def test_fiscal_year_probabilities_feed_the_band_probabilities() -> None:
    grids = [normal_grid(300.0, 20.0)] * 2
    combined = combine_fiscal_year(reported=[600.0], remaining_quantiles=grids, n_samples=40_000)

    below, inside, above = band_probabilities(combined, low=1180.0, high=1220.0).as_tuple()

    total = stats.norm(1200.0, 20.0 * math.sqrt(2.0))
    assert_allclose([below, above], [total.cdf(1180.0), total.sf(1220.0)], atol=0.01)
    assert_allclose(below + inside + above, 1.0)
    assert np.isfinite(inside)
