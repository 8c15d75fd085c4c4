"""lorabar.harness.report.verdicts: one word per interval -- "equivalent" only when shown, never
"no difference" for an interval that cannot tell -- and Holm's adjustment."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lorabar.harness.report.stats import t_interval
from lorabar.harness.report.verdicts import (
    DEFAULT_MARGIN,
    VERDICTS,
    adjusted_verdict,
    holm,
    p_value,
    verdict,
)


def _word(diffs, margin=DEFAULT_MARGIN):
    _, lo, hi = t_interval(diffs)
    return verdict(diffs, lo, hi, margin)


@pytest.mark.parametrize(
    "diffs, word",
    [
        ([1.0, 2.0, 1.0, 2.0, 1.0], "better"),  # +1.40 [0.72, 2.08]
        ([-1.0, -2.0, -1.0, -2.0, -1.0], "worse"),
        ([0.1, -0.1, 0.0, 0.1, -0.1], "equivalent"),  # +0.00 [-0.12, 0.12] within ±0.5
        ([2.0, -1.0, 3.0, 0.0, 1.0], "inconclusive"),  # +1.00 [-1.32, 3.32]: the SAM case
        ([0.0, 0.0, 0.0, 0.0, 0.0], "identical"),  # the oBAR 0.00 [0.00, 0.00]
        ([0.3], "inconclusive"),  # n = 1: no interval
        ([0.0], "identical"),
    ],
)
def test_named_cases(diffs, word):
    assert _word(diffs) == word


def test_the_margin_decides_equivalence_and_nothing_else():
    diffs = [0.3, -0.2, 0.4, 0.1, -0.1]  # +0.10 [-0.24, 0.44]
    assert _word(diffs, margin=0.5) == "equivalent"
    assert _word(diffs, margin=0.2) == "inconclusive"
    assert _word([1.0, 2.0, 1.0, 2.0, 1.0], margin=10.0) == "better"


@pytest.mark.parametrize("margin", [0, -1, math.nan, math.inf, True, "0.5"])
def test_a_margin_that_means_nothing_is_refused(margin):
    with pytest.raises(ValueError, match=r"Invalid --margin"):
        verdict([1.0, 2.0], 0.0, 3.0, margin)


finite = st.floats(-50, 50, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(finite, min_size=1, max_size=8), st.floats(0.01, 20))
def test_the_word_follows_the_interval(diffs, margin):
    mean, lo, hi = t_interval(diffs)
    word = verdict(diffs, lo, hi, margin)
    assert word in VERDICTS
    if all(d == 0 for d in diffs):
        assert word == "identical"
    elif len(diffs) < 2:
        assert word == "inconclusive"
    elif lo > 0:
        assert word == "better"
    elif hi < 0:
        assert word == "worse"
    else:  # covers 0: equivalent exactly when the whole interval is within the margin
        assert (word == "equivalent") == (-margin <= lo and hi <= margin)
        assert word in ("equivalent", "inconclusive")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=12))
def test_holm_never_lowers_a_p_value_and_keeps_the_order(ps):
    adjusted = holm(ps)
    assert all(a >= p - 1e-12 and a <= 1.0 for a, p in zip(adjusted, ps))
    pairs = sorted(zip(ps, adjusted))
    assert all(a1 <= a2 + 1e-12 for (_, a1), (_, a2) in zip(pairs, pairs[1:]))
    assert min(adjusted) == pytest.approx(min(1.0, len(ps) * min(ps)))


def test_holm_by_hand_and_what_it_changes():
    # p = 0.01, 0.04, 0.03: sorted 0.01*3 = 0.03, 0.03*2 = 0.06, max(0.06, 0.04*1) = 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([math.nan, 0.02])[1] == pytest.approx(0.02)
    assert adjusted_verdict("better", 0.06, 0.1, 0.9) == "inconclusive"
    assert adjusted_verdict("worse", 0.03, -0.9, -0.1) == "worse"
    assert adjusted_verdict("equivalent", 0.9, -0.2, 0.2) == "equivalent"
    # GLUE's oBAR average: -0.20 [-0.31, -0.09] is worse, by less than the margin; after Holm
    # (p 0.234) what stands is that no effect beyond 0.5 points is left: equivalent
    assert adjusted_verdict("worse", 0.234, -0.31, -0.09, 0.5) == "equivalent"


def test_p_value_agrees_with_the_interval():
    diffs = [1.0, 2.0, 1.0, 2.0, 1.0]
    assert p_value(diffs) < 0.05 and _word(diffs) == "better"
    wide = [2.0, -1.0, 3.0, 0.0, 1.0]
    assert p_value(wide) > 0.05 and _word(wide) == "inconclusive"
    assert p_value([0.0, 0.0]) == 1.0 and p_value([0.5, 0.5]) == 0.0
    assert math.isnan(p_value([1.0]))
