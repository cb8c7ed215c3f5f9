"""Specifications for guidance arithmetic and band logic."""

from __future__ import annotations

import ast
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy import stats

from services.guidance import core
from services.guidance.core import (
    Band,
    BandState,
    HysteresisSpec,
    check_yoy_arithmetic,
    classify_outcome,
    classify_revision,
    combine_fiscal_year,
    distance_to_nearer_bound,
    next_band_state,
    probabilities_from_quantiles,
)

pytestmark = pytest.mark.unit

GRID_P = tuple(round(0.01 * i, 2) for i in range(1, 100))


def normal_grid(
    mean: float, sd: float, probs: tuple[float, ...] = GRID_P
) -> list[tuple[float, float]]:
    return [(p, mean + sd * float(stats.norm.ppf(p))) for p in probs]


def test_guidance_module_imports_only_the_numerical_stack() -> None:
    tree = ast.parse(Path(core.__file__).read_text())
    roots = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
        if not isinstance(node, ast.ImportFrom) or node.module
    }
    assert roots <= {"__future__", "math", "collections", "dataclasses", "enum", "numpy", "scipy"}


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


# --------------------------------------------------------------------------- band state


@pytest.mark.parametrize(
    ("previous", "p_below", "p_above", "expected"),
    [
        (None, 0.6, 0.1, BandState.AT_RISK),
        (None, 0.1, 0.5, BandState.LIKELY_BEAT),
        (None, 0.3, 0.3, BandState.ON_TRACK),
        (None, 0.5, 0.5, BandState.AT_RISK),
        (BandState.ON_TRACK, 0.49, 0.2, BandState.ON_TRACK),
        (BandState.AT_RISK, 0.4, 0.1, BandState.AT_RISK),
        (BandState.AT_RISK, 0.35, 0.1, BandState.ON_TRACK),
        (BandState.AT_RISK, 0.2, 0.7, BandState.LIKELY_BEAT),
        (BandState.AT_RISK, 0.36, 0.64, BandState.LIKELY_BEAT),
        (BandState.AT_RISK, 0.45, 0.55, BandState.AT_RISK),
        (BandState.LIKELY_BEAT, 0.1, 0.4, BandState.LIKELY_BEAT),
        (BandState.LIKELY_BEAT, 0.1, 0.3, BandState.ON_TRACK),
        (BandState.LIKELY_BEAT, 0.6, 0.3, BandState.AT_RISK),
        (BandState.LIKELY_BEAT, 0.6, 0.4, BandState.AT_RISK),
        (BandState.LIKELY_BEAT, 0.5, 0.45, BandState.LIKELY_BEAT),
    ],
)
def test_band_state_enters_at_the_enter_threshold_and_leaves_at_the_exit_threshold(
    previous: BandState | None, p_below: float, p_above: float, expected: BandState
) -> None:
    assert next_band_state(previous, p_below=p_below, p_above=p_above) is expected


def run_states(pairs: list[tuple[float, float]], start: BandState | None = None) -> list[BandState]:
    states: list[BandState] = []
    state = start
    for p_below, p_above in pairs:
        state = next_band_state(state, p_below=p_below, p_above=p_above)
        states.append(state)
    return states


def changes(states: list[BandState]) -> int:
    """Number of state changes along the sequence."""
    return sum(a is not b for a, b in itertools.pairwise(states))


SPEC = HysteresisSpec()
GAP = min(SPEC.enter_at_risk - SPEC.exit_at_risk, SPEC.enter_beat - SPEC.exit_beat)
QUIET = st.floats(min_value=0.0, max_value=0.3)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(min_value=-1.0, max_value=1.0), QUIET),
        min_size=2,
        max_size=60,
    ),
    st.sampled_from(["enter_at_risk", "exit_at_risk", "enter_beat", "exit_beat"]),
)
def test_a_probability_oscillating_around_one_threshold_changes_the_state_at_most_once(
    wiggles: list[tuple[float, float]], threshold: str
) -> None:
    centre = getattr(SPEC, threshold)
    half_width = 0.99 * GAP / 2
    moving = [min(max(centre + w * half_width, 0.0), 1.0) for w, _ in wiggles]
    others = [min(q, 1.0 - m) for m, (_, q) in zip(moving, wiggles, strict=True)]
    if threshold.endswith("at_risk"):
        pairs = list(zip(moving, others, strict=True))
        start = BandState.AT_RISK if threshold.startswith("exit") else None
    else:
        pairs = list(zip(others, moving, strict=True))
        start = BandState.LIKELY_BEAT if threshold.startswith("exit") else None

    assert changes([start, *run_states(pairs, start)] if start else run_states(pairs)) <= 1


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)), min_size=1, max_size=40))
def test_band_state_agrees_with_its_thresholds_for_any_probabilities(
    raw: list[tuple[float, float]],
) -> None:
    pairs = [(a, b * (1.0 - a)) for a, b in raw]

    for (p_below, p_above), state in zip(pairs, run_states(pairs), strict=True):
        if state is BandState.AT_RISK:
            assert p_below > SPEC.exit_at_risk
        if state is BandState.LIKELY_BEAT:
            assert p_above > SPEC.exit_beat
        if p_below >= SPEC.enter_at_risk and p_below - p_above >= SPEC.switch_margin:
            assert state is BandState.AT_RISK
        if p_above >= SPEC.enter_beat and p_above - p_below >= SPEC.switch_margin:
            assert state is BandState.LIKELY_BEAT


@settings(max_examples=300, deadline=None)
@given(
    x=st.floats(min_value=0.3, max_value=0.6),
    lead=st.floats(min_value=0.0, max_value=0.999 * SPEC.switch_margin),
    order=st.lists(st.booleans(), min_size=2, max_size=40),
)
def test_a_split_forecast_swapping_between_sides_changes_the_state_at_most_once(
    x: float, lead: float, order: list[bool]
) -> None:
    x = min(x, (1.0 - lead) / 2.0)  # both sides fit: x + (x + lead) <= 1
    y = x + lead
    pairs = [(x, y) if flip else (y, x) for flip in order]

    assert changes(run_states(pairs)) <= 1


def test_probabilities_that_cannot_both_hold_are_refused() -> None:
    with pytest.raises(ValueError, match="p_below \\+ p_above <= 1"):
        next_band_state(None, p_below=0.7, p_above=0.6)


def test_a_spec_whose_exit_is_not_below_its_entry_is_refused() -> None:
    with pytest.raises(ValueError, match="exit < enter"):
        HysteresisSpec(enter_at_risk=0.4, exit_at_risk=0.45)


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


# --------------------------------------------------------------------------- quantile grids


def test_probabilities_at_grid_points_are_the_grid_probabilities() -> None:
    grid = normal_grid(300.0, 20.0, probs=(0.1, 0.25, 0.5, 0.9))

    below, inside, above = probabilities_from_quantiles(grid, low=grid[1][1], high=grid[3][1])

    assert_allclose([below, inside, above], [0.25, 0.65, 0.1], atol=1e-12)


def test_tails_beyond_a_normal_grid_follow_the_normal_distribution() -> None:
    grid = normal_grid(300.0, 20.0, probs=(0.05, 0.25, 0.5, 0.75, 0.95))

    below, _, above = probabilities_from_quantiles(grid, low=300.0 - 60.0, high=300.0 + 50.0)

    assert_allclose([below, above], [stats.norm.cdf(-3.0), stats.norm.sf(2.5)], rtol=1e-9)


@settings(max_examples=200, deadline=None)
@given(
    a=st.floats(min_value=-500.0, max_value=1500.0),
    b=st.floats(min_value=-500.0, max_value=1500.0),
)
def test_band_probabilities_are_probabilities_that_sum_to_one(a: float, b: float) -> None:
    grid = normal_grid(500.0, 100.0, probs=(0.05, 0.2, 0.5, 0.8, 0.95))

    triple = probabilities_from_quantiles(grid, low=min(a, b), high=max(a, b))

    assert all(0.0 <= p <= 1.0 for p in triple)
    assert_allclose(sum(triple), 1.0, atol=1e-12)


def test_a_point_mass_grid_puts_all_probability_on_one_side() -> None:
    grid = [(0.1, 900.0), (0.5, 900.0), (0.9, 900.0)]

    assert probabilities_from_quantiles(grid, low=950.0, high=1000.0) == (1.0, 0.0, 0.0)
    assert probabilities_from_quantiles(grid, low=850.0, high=950.0) == (0.0, 1.0, 0.0)


def test_a_grid_with_decreasing_values_is_refused() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        probabilities_from_quantiles([(0.1, 5.0), (0.5, 4.0)], low=0.0, high=1.0)


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

    below, inside, above = probabilities_from_quantiles(combined, low=1180.0, high=1220.0)

    total = stats.norm(1200.0, 20.0 * math.sqrt(2.0))
    assert_allclose([below, above], [total.cdf(1180.0), total.sf(1220.0)], atol=0.01)
    assert_allclose(below + inside + above, 1.0)
    assert np.isfinite(inside)
