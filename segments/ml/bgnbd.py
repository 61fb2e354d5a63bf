"""BG/NBD (Fader, Hardie and Lee 2005, "Counting your customers the easy way"): a model of
repeat buying that needs no labels, for shops too young for the supervised purchase model.

A customer buys at a Poisson rate lambda ~ Gamma(r, alpha) while alive and, after each purchase,
drops out with probability p ~ Beta(a, b). The four parameters are fitted by maximum likelihood over
every customer's (x repeat purchase days, t_x day of the last, T days since the first); a short
scipy fit, as the model's authors publish it, rather than an unmaintained package.
"""

from __future__ import annotations

from typing import Any

from segments.ml.features import HORIZON_DAYS, NotEnoughData

# Fewer repeat buyers than this cannot pin down four parameters.
MIN_REPEAT_BUYERS = 5
# Log-parameter bounds of the fit: e^-9 to e^12.
PARAMETER_BOUNDS = (-9.0, 12.0)


def repeat_summary(orders: Any, cutoff: Any) -> Any:
    """Per customer with an order before `cutoff`: `x` (distinct order days after the first),
    `t_x` (days from the first order day to the last) and `T` (days from the first to the
    cut-off), as the model counts them; and `avg_order` (mean order amount)."""
    import pandas as pd

    past = orders[orders["time"] < cutoff]
    if past.empty:
        return pd.DataFrame(columns=["x", "t_x", "T", "avg_order"], dtype=float)
    days = past.assign(day=past["time"].dt.floor("D"))
    g = days.groupby("customer")
    first, last = g["day"].min(), g["day"].max()
    day_seconds = 86400.0
    return pd.DataFrame(
        {
            "x": (g["day"].nunique() - 1).astype(float),
            "t_x": (last - first).dt.total_seconds() / day_seconds,
            "T": (cutoff - first).dt.total_seconds() / day_seconds,
            "avg_order": g["amount"].mean(),
        }
    )


def _log_likelihood(params: Any, x: Any, t_x: Any, big_t: Any) -> Any:
    import numpy as np
    from scipy.special import gammaln

    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + big_t)
    repeat = x > 0
    a4 = np.where(
        repeat,
        np.log(a) - np.log(np.where(repeat, b + x - 1, 1.0)) - (r + x) * np.log(alpha + t_x),
        -np.inf,
    )
    return a1 + a2 + np.logaddexp(a3, a4)


def fit_bgnbd(summary: Any) -> dict[str, float]:
    """Maximum-likelihood (r, alpha, a, b), fitted on log parameters (all must be positive)."""
    import numpy as np
    from scipy.optimize import minimize

    if int((summary["x"] > 0).sum()) < MIN_REPEAT_BUYERS:
        raise NotEnoughData(
            f"not enough repeat buyers for BG/NBD: fewer than {MIN_REPEAT_BUYERS} customers "
            "ordered on two different days"
        )
    x, t_x, big_t = (summary[c].to_numpy(dtype=float) for c in ("x", "t_x", "T"))

    def loss(log_params: Any) -> float:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            value = -float(np.mean(_log_likelihood(np.exp(log_params), x, t_x, big_t)))
        return value if np.isfinite(value) else 1e12

    # Bounded: on small or odd data a parameter can run off to 0 or infinity, where the
    # likelihood's terms overflow; the bounds are far beyond any real shop's values.
    result = minimize(
        loss,
        x0=np.log([1.0, 10.0, 1.0, 1.0]),
        method="Nelder-Mead",
        bounds=[PARAMETER_BOUNDS] * 4,
        options={"maxiter": 4000, "xatol": 1e-6, "fatol": 1e-9},
    )
    r, alpha, a, b = np.exp(result.x)
    return {"r": float(r), "alpha": float(alpha), "a": float(a), "b": float(b)}


def probability_alive(params: dict[str, float], summary: Any) -> Any:
    import numpy as np

    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    x, t_x, big_t = (summary[c].to_numpy(dtype=float) for c in ("x", "t_x", "T"))
    repeat = x > 0
    odds = np.where(
        repeat,
        a / np.where(repeat, b + x - 1, 1.0) * ((alpha + big_t) / (alpha + t_x)) ** (r + x),
        0.0,
    )
    return 1.0 / (1.0 + odds)


def probability_of_purchase(
    params: dict[str, float], summary: Any, days: float = HORIZON_DAYS
) -> Any:
    """P(at least one purchase in the next `days`): alive, and a Poisson event within them.
    Dropout only follows a purchase, so an alive customer's first purchase comes before any
    dropout; given alive, lambda's posterior is Gamma(r + x, alpha + T)."""
    r, alpha = params["r"], params["alpha"]
    x, big_t = summary["x"].to_numpy(dtype=float), summary["T"].to_numpy(dtype=float)
    none_while_alive = ((alpha + big_t) / (alpha + big_t + days)) ** (r + x)
    return probability_alive(params, summary) * (1.0 - none_while_alive)


def expected_purchases(params: dict[str, float], summary: Any, days: float) -> Any:
    """E[purchases in the next `days`] (the paper's equation 10)."""
    import numpy as np
    from scipy.special import hyp2f1

    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    x, t_x, big_t = (summary[c].to_numpy(dtype=float) for c in ("x", "t_x", "T"))
    z = days / (alpha + big_t + days)
    head = (a + b + x - 1) / (a - 1) if a > 1 else np.full_like(x, np.nan)
    body = 1.0 - ((alpha + big_t) / (alpha + big_t + days)) ** (r + x) * hyp2f1(
        r + x, b + x, a + b + x - 1, z
    )
    repeat = x > 0
    odds = np.where(
        repeat,
        a / np.where(repeat, b + x - 1, 1.0) * ((alpha + big_t) / (alpha + t_x)) ** (r + x),
        0.0,
    )
    expected = head * body / (1.0 + odds)
    # With a <= 1 the closed form diverges: fall back to the rate of an alive customer.
    fallback = probability_alive(params, summary) * (r + x) / (alpha + big_t) * days
    return np.where(np.isfinite(expected) & (expected >= 0), expected, fallback)
