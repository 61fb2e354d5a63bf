"""The pure statistics core (campaigns.stats) and bot flags (campaigns.bots): small known
cases computed by hand, properties over open-ended input, and short seeded simulations."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns import stats
from campaigns.bots import bot_reason

# --- the always-valid test -------------------------------------------------------------------


def _lambda_by_hand(xa: int, na: int, xb: int, nb: int, tau: float) -> float:
    """The mSPRT mixture ratio written out once more, from the paper's formula."""

    def var(x: int, n: int) -> float:
        rate = (x + 0.5) / (n + 1)
        return rate * (1 - rate) / n

    v = var(xa, na) + var(xb, nb)
    d = xb / nb - xa / na
    return math.sqrt(v / (v + tau**2)) * math.exp(d**2 * tau**2 / (2 * v * (v + tau**2)))


@pytest.mark.parametrize(
    ("xa", "na", "xb", "nb"),
    [(10, 100, 10, 100), (10, 100, 30, 100), (50, 1000, 80, 1000), (0, 20, 3, 20), (5, 50, 0, 60)],
)
def test_the_likelihood_ratio_is_the_papers_formula(xa, na, xb, nb):
    found = stats.msprt_likelihood_ratio(xa, na, xb, nb, tau=0.01)
    assert float(found) == pytest.approx(_lambda_by_hand(xa, na, xb, nb, 0.01), rel=1e-12)


def test_equal_rates_give_no_evidence_and_a_clear_difference_is_significant():
    assert float(stats.always_valid_p([100], [1000], [100], [1000])[-1]) == 1.0
    # 10% against 20% on 1,000 each (z ≈ 6.2, a naive p of 1e-9): significant, though far
    # less extreme, as this difference is ten times the mixture's scale τ.
    assert float(stats.always_valid_p([100], [1000], [200], [1000])[-1]) < 0.01
    # No one in an arm yet: no evidence at all.
    assert float(stats.always_valid_p([0], [0], [5], [10])[-1]) == 1.0


def test_the_always_valid_p_never_rises_and_is_larger_than_the_naive_p():
    xa, xb = np.array([5, 12, 20, 26, 31]), np.array([9, 20, 31, 40, 44])
    n = np.array([50, 100, 150, 200, 250])
    path = stats.always_valid_p(xa, n, xb, n)
    assert np.all(np.diff(path) <= 0)
    # The price of looking as often as one likes: more evidence is needed than once.
    assert np.all(path >= stats.naive_p(xa, n, xb, n))


def test_peeking_at_a_and_a_tests_rarely_declares_a_difference():
    """200 A/A tests at 10%, looked at after every 100 people up to 4,000: the always-valid
    test stays under 5%, while the naive z-test under the same peeking is far above it."""
    rng = np.random.default_rng(7)
    looks = np.arange(1, 41) * 50
    a = rng.binomial(50, 0.1, size=(200, 40)).cumsum(axis=1)
    b = rng.binomial(50, 0.1, size=(200, 40)).cumsum(axis=1)
    valid = (stats.always_valid_p(a, looks, b, looks).min(axis=1) <= 0.05).mean()
    naive = (stats.naive_p(a, looks, b, looks).min(axis=1) <= 0.05).mean()
    assert valid <= 0.05
    assert naive > 0.1


# --- confidence sequences --------------------------------------------------------------------


@pytest.mark.parametrize(("x", "n"), [(0, 10), (3, 10), (10, 10), (120, 1000), (1, 5000)])
def test_the_rate_interval_ends_where_the_mixture_ratio_reaches_one_over_alpha(x, n):
    low, high = stats.rate_interval(x, n)
    assert low <= x / n <= high

    def log_ratio(p: float) -> float:
        log_beta = math.lgamma(1 + x) + math.lgamma(1 + n - x) - math.lgamma(2 + n)
        return log_beta - x * math.log(p) - (n - x) * math.log1p(-p)

    for end, edge in ((low, 0.0), (high, 1.0)):
        if end != edge:
            assert log_ratio(end) == pytest.approx(math.log(20), abs=1e-6)


def test_no_data_leaves_every_rate_possible():
    assert stats.rate_interval(0, 0) == (0.0, 1.0)


@given(st.integers(0, 500), st.integers(1, 500))
def test_the_rate_interval_is_inside_zero_and_one_and_holds_the_estimate(x, n):
    x = min(x, n)
    low, high = stats.rate_interval(x, n)
    assert 0 <= low <= x / n <= high <= 1


# --- posteriors and bandits ------------------------------------------------------------------


def test_probability_best_is_even_for_equal_arms_and_certain_for_a_clear_winner():
    even = stats.probability_best(*stats.beta_posteriors([50, 50, 50], [500, 500, 500]))
    assert even == pytest.approx([1 / 3] * 3, abs=0.02)
    clear = stats.probability_best(*stats.beta_posteriors([50, 150], [1000, 1000]))
    assert clear[1] > 0.999
    # Seeded by the counts: the same counts give the same answer.
    again = stats.probability_best(*stats.beta_posteriors([50, 50, 50], [500, 500, 500]))
    assert np.array_equal(even, again)


def test_bandit_shares_keep_every_arm_at_the_exploration_floor():
    best, shares = stats.bandit_shares([10, 200, 5], [1000, 1000, 1000])
    assert shares.sum() == pytest.approx(1)
    assert shares.min() >= stats.MIN_EXPLORATION_SHARE - 1e-12
    assert shares.argmax() == 1 and best[1] > 0.99


def test_a_simulated_bandit_moves_toward_the_clearly_better_arm():
    rng = np.random.default_rng(3)
    rates = np.array([0.02, 0.10])
    exposed, converted = np.zeros(2), np.zeros(2)
    early = None
    for batch in range(30):
        _, shares = stats.bandit_shares(converted, exposed)
        arms = stats.arms_pick(rng.random(100), shares)
        counts = np.bincount(arms, minlength=2)
        exposed += counts
        converted += rng.binomial(counts, rates)
        if batch == 0:
            early = shares[1]
    assert early == pytest.approx(0.5, abs=0.02)
    assert shares[1] > 0.9


# --- assignment ------------------------------------------------------------------------------


def test_stable_units_are_fixed_by_their_parts_and_spread_evenly():
    assert stats.stable_unit("variant", 3, 42) == stats.stable_unit("variant", 3, 42)
    assert stats.stable_unit("variant", 3, 42) != stats.stable_unit("control", 3, 42)
    units = np.array([stats.stable_unit("variant", 1, pk) for pk in range(4000)])
    assert units.min() >= 0 and units.max() < 1
    assert np.histogram(units, bins=4, range=(0, 1))[0] == pytest.approx([1000] * 4, abs=120)


@given(
    st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=50),
    st.lists(st.floats(0.01, 100), min_size=1, max_size=8),
)
def test_every_unit_falls_into_an_arm_with_a_share(units, weights):
    shares = stats.split_shares(weights)
    arms = stats.arms_pick(units, shares)
    assert all(0 <= arm < len(weights) for arm in arms)
    edges = np.concatenate([[0], np.cumsum(shares)])
    for unit, arm in zip(units, arms, strict=True):
        assert edges[arm] <= unit + 1e-12


# --- bots ------------------------------------------------------------------------------------

SENT = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
PERSON = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


@pytest.mark.parametrize(
    ("kind", "agent", "after", "reason"),
    [
        ("open", "Mozilla/5.0", dt.timedelta(minutes=1), "apple_privacy"),
        ("click", "Mozilla/5.0 (compatible; Barracuda Sentinel)", dt.timedelta(hours=1), "scanner"),
        ("click", "", dt.timedelta(hours=1), "scanner"),
        ("click", "python-requests/2.32", dt.timedelta(hours=1), "scanner"),
        ("click", PERSON, dt.timedelta(seconds=2), "too_fast"),
        ("open", PERSON, dt.timedelta(minutes=3), ""),
        ("click", PERSON, dt.timedelta(hours=2), ""),
    ],
)
def test_machine_opens_and_clicks_are_flagged(kind, agent, after, reason):
    assert bot_reason(kind=kind, user_agent=agent, at=SENT + after, sent_at=SENT) == reason
