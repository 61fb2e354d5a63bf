"""The statistics of experiments: assignment, the always-valid test, Beta posteriors and
Thompson sampling. A pure core (STYLE rule 11): numbers in, numbers out, no ORM. The results
API (campaigns.results), the bandit's refresh (campaigns.services.experiments) and the
simulation (`python -m bench experiments`) all call these same functions; every one of them
accepts numpy arrays, so the simulation runs thousands of experiments at once.

**The test: mSPRT for two proportions** (Johari, Koomen, Pekelis, Walsh: "Always valid
inference: continuous monitoring of A/B tests", Operations Research 2022; the test behind
Optimizely's Stats Engine). For the difference of conversion rates θ = p_B - p_A, the mixture
likelihood ratio against θ = 0 with a N(0, τ²) mixing distribution is

    Λ_n = sqrt(V / (V + τ²)) · exp(d² τ² / (2 V (V + τ²)))
    d = p̂_B - p̂_A,   V = p̂_A(1-p̂_A)/n_A + p̂_B(1-p̂_B)/n_B

and the always-valid p-value is the running minimum of min(1, 1/Λ) over every look: under the
null, Λ is (asymptotically) a martingale, so by Ville's inequality the chance that it *ever*
reaches 1/alpha is at most alpha, however often and whenever the results are looked at.
What it assumes: units (people) are independent and each belongs to one arm; the normal
approximation of the difference of two proportions (fine from a few conversions per arm on;
V uses rates shrunk by half a conversion, so an arm with none has no zero variance); a
conversion that arrives late is counted when it arrives, alike in both arms. τ (MIXTURE_TAU,
the scale of differences expected) changes the power, not the validity.

**Confidence intervals** of one arm's rate are confidence sequences too (Robbins' Beta-Binomial
mixture: the rates p whose mixture likelihood ratio stays below 1/alpha), exact for Bernoulli
data at any sample size and valid at every look.

The difference of two rates has the confidence sequence that inverts the same test: the θ₀
whose mixture likelihood ratio (d - θ₀ in place of d) stays below 1/alpha,

    d ± sqrt(2 V (V + τ²) / τ² · (ln(1/alpha) + ½ ln((V + τ²) / V)))

so it excludes 0 exactly when the always-valid p-value of that look is below alpha.

**Bandits: Thompson sampling** on Beta(1 + conversions, 1 + exposed - conversions) posteriors.
Thompson sampling sends each person to the arm whose posterior draw is highest, i.e. to arm k
with the probability that k is best; those probabilities come from Monte Carlo draws with an
RNG seeded by the counts (the same counts always give the same answer). A floor keeps every arm
at least MIN_EXPLORATION_SHARE, so an arm that started unlucky can still recover.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

ALPHA = 0.05
# The scale of the differences of conversion rates the test expects (absolute: 0.01 is one
# percentage point); it tunes power, never validity.
MIXTURE_TAU = 0.01
MIN_EXPLORATION_SHARE = 0.05
PROBABILITY_DRAWS = 20_000
# An allocation is itself a random draw per person: ±0.7% of precision in its shares is plenty.
ALLOCATION_DRAWS = 5_000

Floats = NDArray[np.float64]


# --- assignment ------------------------------------------------------------------------------


def stable_unit(*parts: object) -> float:
    """A number in [0, 1) fixed by `parts` (e.g. salt, campaign id, profile id): the same
    person draws the same number on every retry, every worker and every re-entry."""
    digest = hashlib.sha256(":".join(str(part) for part in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_shares(weights: Sequence[float]) -> Floats:
    """A fixed split's weights as shares that sum to 1."""
    values = np.asarray(weights, dtype=float)
    return values / values.sum()


def arms_pick(units: ArrayLike, shares: ArrayLike) -> NDArray[np.intp]:
    """The arm index each unit number in [0, 1) falls into when arms take `shares` of [0, 1)
    in order (so a share of 0.3 takes 30% of people)."""
    edges = np.cumsum(np.asarray(shares, dtype=float))
    edges[-1] = 1.0  # rounding must not leave a unit without an arm
    return np.searchsorted(edges, np.asarray(units, dtype=float), side="right")


# --- Beta posteriors and Thompson sampling --------------------------------------------------


def beta_posteriors(converted: ArrayLike, exposed: ArrayLike) -> tuple[Floats, Floats]:
    """Beta(1 + conversions, 1 + non-conversions) per arm (a uniform prior)."""
    wins = np.asarray(converted, dtype=float)
    trials = np.asarray(exposed, dtype=float)
    return 1.0 + wins, 1.0 + np.maximum(trials - wins, 0.0)


def _seed(*arrays: Floats) -> int:
    return int.from_bytes(
        hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)).digest()[:8],
        "big",
    )


def probability_best(
    alpha: ArrayLike,
    beta: ArrayLike,
    *,
    draws: int = PROBABILITY_DRAWS,
    rng: np.random.Generator | None = None,
) -> Floats:
    """P(arm k has the highest rate) under Beta(alpha, beta) posteriors (last axis: arms;
    leading axes: independent experiments), by Monte Carlo. Without `rng` the draws are seeded
    by the parameters themselves, so equal inputs give equal answers."""
    a = np.asarray(alpha, dtype=float)
    b = np.asarray(beta, dtype=float)
    rng = rng or np.random.default_rng(_seed(a, b))
    samples = rng.beta(a[..., None, :], b[..., None, :], size=(*a.shape[:-1], draws, a.shape[-1]))
    best = samples.argmax(axis=-1)
    counts = np.stack([(best == k).sum(axis=-1) for k in range(a.shape[-1])], axis=-1)
    return np.asarray(counts / draws, dtype=float)


def bandit_shares(
    converted: ArrayLike,
    exposed: ArrayLike,
    *,
    min_share: float = MIN_EXPLORATION_SHARE,
    draws: int = ALLOCATION_DRAWS,
    rng: np.random.Generator | None = None,
) -> tuple[Floats, Floats]:
    """(probability each arm is best, the share of new people each arm gets): Thompson
    sampling's allocation, with every arm kept at `min_share` or more."""
    alpha, beta = beta_posteriors(converted, exposed)
    best = probability_best(alpha, beta, draws=draws, rng=rng)
    arms = best.shape[-1]
    floor = min(min_share, 1.0 / arms)
    return best, floor + (1.0 - arms * floor) * best


# --- the always-valid test -------------------------------------------------------------------


def _variance(converted: Floats, exposed: Floats) -> Floats:
    # Rates shrunk by half a conversion: an arm with no conversion yet still has a variance.
    rate = (converted + 0.5) / (exposed + 1.0)
    return np.asarray(rate * (1.0 - rate) / np.maximum(exposed, 1.0), dtype=float)


def msprt_likelihood_ratio(
    converted_a: ArrayLike,
    exposed_a: ArrayLike,
    converted_b: ArrayLike,
    exposed_b: ArrayLike,
    *,
    tau: float = MIXTURE_TAU,
) -> Floats:
    """Λ, the mixture likelihood ratio of "the rates differ" against "they are equal" (see the
    module); 1 where an arm has nobody yet."""
    xa, na = np.asarray(converted_a, dtype=float), np.asarray(exposed_a, dtype=float)
    xb, nb = np.asarray(converted_b, dtype=float), np.asarray(exposed_b, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        difference = xb / nb - xa / na
        variance = _variance(xa, na) + _variance(xb, nb)
        tau2 = tau * tau
        log_ratio = 0.5 * np.log(variance / (variance + tau2)) + difference**2 * tau2 / (
            2.0 * variance * (variance + tau2)
        )
    log_ratio = np.where((na > 0) & (nb > 0), log_ratio, 0.0)
    return np.asarray(np.exp(np.minimum(log_ratio, 700.0)), dtype=float)


def always_valid_p(
    converted_a: ArrayLike,
    exposed_a: ArrayLike,
    converted_b: ArrayLike,
    exposed_b: ArrayLike,
    *,
    tau: float = MIXTURE_TAU,
) -> Floats:
    """The always-valid p-value after each look, given cumulative counts at successive looks
    (last axis: the looks, in time order): the running minimum of min(1, 1/Λ)."""
    ratio = msprt_likelihood_ratio(converted_a, exposed_a, converted_b, exposed_b, tau=tau)
    return np.asarray(np.minimum.accumulate(np.minimum(1.0, 1.0 / ratio), axis=-1), dtype=float)


def naive_p(
    converted_a: ArrayLike, exposed_a: ArrayLike, converted_b: ArrayLike, exposed_b: ArrayLike
) -> Floats:
    """The fixed-horizon two-proportion z-test's two-sided p-value (pooled variance): right
    once, at a sample size fixed in advance; wrong when looked at repeatedly. Only for
    comparison (the simulation prints what peeking does to it)."""
    from scipy.special import erfc

    xa, na = np.asarray(converted_a, dtype=float), np.asarray(exposed_a, dtype=float)
    xb, nb = np.asarray(converted_b, dtype=float), np.asarray(exposed_b, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = (xa + xb) / (na + nb)
        z = (xb / nb - xa / na) / np.sqrt(pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb))
    z = np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0)
    return np.asarray(erfc(np.abs(z) / math.sqrt(2.0)), dtype=float)


def rate_interval(converted: int, exposed: int, *, alpha: float = ALPHA) -> tuple[float, float]:
    """An always-valid (1 - alpha) interval for one arm's conversion rate: the rates p whose
    Beta(1, 1)-mixture likelihood ratio stays below 1/alpha (Robbins). (0, 1) with no data."""
    from scipy.optimize import brentq
    from scipy.special import betaln

    x, n = int(converted), int(exposed)
    if n <= 0:
        return 0.0, 1.0
    log_marginal = float(betaln(1 + x, 1 + n - x))
    bound = math.log(1.0 / alpha)

    def excess(p: float) -> float:
        return log_marginal - x * math.log(p) - (n - x) * math.log1p(-p) - bound

    centre = min(max(x / n, 1e-12), 1 - 1e-12)
    low = 0.0 if x == 0 or excess(1e-12) <= 0 else float(brentq(excess, 1e-12, centre, xtol=1e-15))
    high = (
        1.0
        if x == n or excess(1 - 1e-12) <= 0
        else float(brentq(excess, centre, 1 - 1e-12, xtol=1e-15))
    )
    return low, high


def difference_interval(
    converted_a: int,
    exposed_a: int,
    converted_b: int,
    exposed_b: int,
    *,
    alpha: float = ALPHA,
    tau: float = MIXTURE_TAU,
) -> tuple[float, float] | None:
    """An always-valid (1 - alpha) interval for p_B - p_A (see the module); None while an
    arm has nobody."""
    if exposed_a <= 0 or exposed_b <= 0:
        return None
    difference = converted_b / exposed_b - converted_a / exposed_a
    counts = np.asarray([converted_a, converted_b], dtype=float)
    variance = float(_variance(counts, np.asarray([exposed_a, exposed_b], dtype=float)).sum())
    tau2 = tau * tau
    half = math.sqrt(
        2.0
        * variance
        * (variance + tau2)
        / tau2
        * (math.log(1.0 / alpha) + 0.5 * math.log((variance + tau2) / variance))
    )
    # A difference of two rates lies in [-1, 1] whatever the interval's width.
    return max(-1.0, difference - half), min(1.0, difference + half)


def relative_lift(rate: float | None, baseline: float | None) -> float | None:
    """(rate - baseline) / baseline, or None when the baseline is unknown or zero."""
    if rate is None or not baseline:
        return None
    return (rate - baseline) / baseline
