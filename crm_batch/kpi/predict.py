"""Predicted customer value as of T: BG/NBD and Gamma-Gamma, fitted by maximum likelihood.

The two published models the customer-analytics libraries (lifetimes, pymc-marketing)
fit, written out here on scipy: the same likelihoods, vectorised over a million buyers.

* **BG/NBD** (Fader, Hardie and Lee 2005, "Counting your customers the easy way"): while
  alive, a customer buys on a Poisson rate lambda (Gamma(r, alpha) across customers);
  after each purchase they drop out for good with probability p (Beta(a, b) across
  customers). From a buyer's summary it gives P(alive) and the expected number of
  purchase days in the next t days.
* **Gamma-Gamma** (Fader and Hardie, "The Gamma-Gamma model of monetary value", 2013):
  a repeat buyer's daily spends vary around their own mean, independently of how often
  they buy; that mean varies across customers (Gamma(q, v) on the spend rate, shape p).
  It gives the expected spend of a purchase day, shrunk from the buyer's own average
  towards the population's.

The summary follows lifetimes' conventions, in days, as of T: ``frequency`` = distinct
paid-order days - 1 (repeat purchase days); ``recency`` = last - first paid-order day;
``T`` = T - first paid-order day; ``monetary`` = mean paid amount of the repeat days
(the first day excluded; 0 without repeat days). Only buyers (a paid order on or before
T) are in it. Refunds are not spend here: the models describe purchases.

Numerics: log-likelihoods in log space (``gammaln``, ``betaln``, ``logaddexp``) with
analytic gradients for L-BFGS-B on log parameters; times are scaled so the longest T is
10 and spends so their mean is 1 (the fitted alpha and v are scaled back); the
expected-purchases formula uses Euler's transformation of its 2F1 so that frequent
buyers (large x) never overflow, with fall-backs where scipy's 2F1 cannot give it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special

from crm_batch.kpi.definitions import TICKETS, KpiDefinition

#: The prediction horizon of the ``*_12m`` columns, in days.
HORIZON_DAYS = 365
#: Fewer repeat buyers than this: the data cannot identify the model, nothing is fitted.
MIN_REPEAT_BUYERS = 2
#: Score columns added to the customer table, in order.
SCORE_COLUMNS = ("p_alive", "expected_orders_12m", "expected_revenue_12m")
#: Bounds of the log parameters during the fit (on scaled data): e^-15 .. e^15.
_LOG_BOUND = 15.0
#: The longest T after scaling, and the L-BFGS-B options (tight: the fit is cheap).
_TIME_SCALE_TO = 10.0
_OPTIONS = {"maxiter": 1000, "ftol": 1e-13, "gtol": 1e-9}

KPIS = (
    KpiDefinition(
        "expected_revenue_12m",
        "预测未来12个月销售额",
        "Expected revenue, next 12 months",
        "money",
        "up",
        "Sum over buyers of expected purchase days in the next 365 days (BG/NBD) times "
        "their expected spend per purchase day (Gamma-Gamma).",
        "各成交客户未来365天预期购买天数(BG/NBD)乘以预期每日消费额(Gamma-Gamma)之和。",
        0,
    ),
    KpiDefinition(
        "likely_lost_customers",
        "可能已流失客户数",
        "Likely lost customers",
        "count",
        "down",
        "Buyers of the last 365 days whose probability of still being active (P(alive), "
        "BG/NBD) is below the threshold (0.5).",
        "近365天有购买、但仍活跃概率(P(alive), BG/NBD)低于阈值(0.5)的客户数。",
        0,
    ),
    KpiDefinition(
        "expected_value_at_risk",
        "预警客户预测价值",
        "Expected value at risk",
        "money",
        "down",
        "Expected revenue of the next 365 days of the customers with a churn warning.",
        "流失预警客户未来365天的预测销售额合计。",
        0,
        partial_without=TICKETS,
    ),
)


@dataclass(frozen=True)
class BgNbd:
    """Fitted BG/NBD parameters (time in the summary's unit) and the fit's figures."""

    r: float
    alpha: float
    a: float
    b: float
    customers: int
    log_likelihood: float  # total over the customers
    converged: bool


@dataclass(frozen=True)
class GammaGamma:
    """Fitted Gamma-Gamma parameters (money in the summary's unit) and the fit's figures."""

    p: float
    q: float
    v: float
    customers: int
    log_likelihood: float
    converged: bool

    def mean_spend(self) -> float:
        """The population's expected spend per purchase day (infinite mean: NaN)."""
        return self.p * self.v / (self.q - 1.0) if self.q > 1.0 else float("nan")


@dataclass(frozen=True)
class Summary:
    """Buyers' summary arrays (float64, one entry per buyer) in lifetimes' conventions."""

    frequency: np.ndarray
    recency: np.ndarray
    T: np.ndarray
    monetary: np.ndarray


@dataclass(frozen=True)
class ValueModel:
    """The company's fitted models as of a date; a part is None when it cannot be fitted."""

    buyers: int
    repeat_buyers: int
    bgnbd: BgNbd | None
    gamma_gamma: GammaGamma | None

    @property
    def fitted(self) -> bool:
        """Both models fitted: every buyer gets all three scores."""
        return self.bgnbd is not None and self.gamma_gamma is not None

    def parameters(self) -> dict[str, float]:
        """Every figure by name (NaN for a model not fitted), for storage and reports."""
        bg, gg = self.bgnbd, self.gamma_gamma
        nan = float("nan")
        return {
            "buyers": float(self.buyers),
            "repeat_buyers": float(self.repeat_buyers),
            "r": bg.r if bg else nan,
            "alpha": bg.alpha if bg else nan,
            "a": bg.a if bg else nan,
            "b": bg.b if bg else nan,
            "bgnbd_log_likelihood": bg.log_likelihood if bg else nan,
            "p": gg.p if gg else nan,
            "q": gg.q if gg else nan,
            "v": gg.v if gg else nan,
            "gamma_gamma_customers": float(gg.customers) if gg else nan,
            "gamma_gamma_log_likelihood": gg.log_likelihood if gg else nan,
        }


# -- likelihoods --------------------------------------------------------------------------


def bgnbd_log_likelihood(
    params: BgNbd | tuple[float, float, float, float],
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
) -> np.ndarray:
    """Each customer's BG/NBD log-likelihood (Fader, Hardie and Lee 2005, eq. 6)."""
    r, alpha, a, b = _bgnbd_tuple(params)
    x, t_x, t = _floats(frequency, recency, T)
    head = (
        special.gammaln(r + x)
        - special.gammaln(r)
        + r * np.log(alpha)
        + special.betaln(a, b + x)
        - special.betaln(a, b)
    )
    alive = -(r + x) * np.log(alpha + t)
    dropped = np.full_like(x, -np.inf)
    rep = x > 0
    dropped[rep] = np.log(a) - np.log(b + x[rep] - 1) - (r + x[rep]) * np.log(alpha + t_x[rep])
    return head + np.logaddexp(alive, dropped)


def gamma_gamma_log_likelihood(
    params: GammaGamma | tuple[float, float, float],
    frequency: np.ndarray,
    monetary: np.ndarray,
) -> np.ndarray:
    """Each repeat buyer's Gamma-Gamma log-likelihood of their mean spend (``x`` > 0,
    ``m`` > 0): the density of the mean of ``x`` Gamma(p, nu) spends, nu ~ Gamma(q, v)."""
    p, q, v = _gg_tuple(params)
    x, m = _floats(frequency, monetary)
    px = p * x
    return (
        special.gammaln(px + q)
        - special.gammaln(px)
        - special.gammaln(q)
        + q * np.log(v)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(x * m + v)
    )


# -- fitting ------------------------------------------------------------------------------


def fit_bgnbd(frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> BgNbd | None:
    """BG/NBD by maximum likelihood; None with fewer than :data:`MIN_REPEAT_BUYERS`
    repeat buyers (no repeat purchase: nothing tells the buying and dropout rates apart)."""
    x, t_x, t = _floats(frequency, recency, T)
    if int((x > 0).sum()) < MIN_REPEAT_BUYERS:
        return None
    longest = float(t.max())
    scale = _TIME_SCALE_TO / longest if longest > 0 else 1.0
    objective = _BgNbdObjective(x, t_x * scale, t * scale)
    found = _minimize(objective, 4)
    r, alpha, a, b = np.exp(found.x)
    alpha /= scale
    total = float(bgnbd_log_likelihood((r, alpha, a, b), x, t_x, t).sum())
    return BgNbd(float(r), float(alpha), float(a), float(b), len(x), total, bool(found.success))


def fit_gamma_gamma(frequency: np.ndarray, monetary: np.ndarray) -> GammaGamma | None:
    """Gamma-Gamma by maximum likelihood on the repeat buyers with a positive mean spend;
    None with fewer than :data:`MIN_REPEAT_BUYERS` of them."""
    x, m = _floats(frequency, monetary)
    used = (x > 0) & (m > 0)
    if int(used.sum()) < MIN_REPEAT_BUYERS:
        return None
    x, m = x[used], m[used]
    scale = 1.0 / float(m.mean())
    found = _minimize(_GammaGammaObjective(x, m * scale), 3)
    p, q, v = np.exp(found.x)
    v /= scale
    total = float(gamma_gamma_log_likelihood((p, q, v), x, m).sum())
    return GammaGamma(float(p), float(q), float(v), len(x), total, bool(found.success))


def _minimize(objective: _BgNbdObjective | _GammaGammaObjective, size: int) -> object:
    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * size
    return optimize.minimize(
        objective, np.zeros(size), jac=True, method="L-BFGS-B", bounds=bounds, options=_OPTIONS
    )


class _BgNbdObjective:
    """Mean negative log-likelihood and its gradient in log parameters.

    Terms that depend on the frequency alone are evaluated once per distinct frequency
    (a few dozen values), the rest once per customer.
    """

    def __init__(self, x: np.ndarray, t_x: np.ndarray, t: np.ndarray) -> None:
        self.total = float(len(x))
        self.values, counts = np.unique(x, return_counts=True)
        self.counts = counts.astype("float64")
        rep = x > 0
        self.t_once = t[~rep]  # one-time buyers: only the "still alive" branch
        self.x, self.t_x, self.t = x[rep], t_x[rep], t[rep]
        self.b_shift = self.x - 1

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        r, alpha, a, b = np.exp(theta)
        xs, n = self.values, self.counts
        digamma = special.digamma
        ll = n @ (
            special.gammaln(r + xs) - special.betaln(a, b) + special.betaln(a, b + xs)
        ) + self.total * (r * np.log(alpha) - special.gammaln(r))
        d_r = n @ digamma(r + xs) + self.total * (np.log(alpha) - digamma(r))
        d_alpha = self.total * r / alpha
        d_a = n @ (digamma(a + b) - digamma(a + b + xs))
        d_b = n @ (digamma(b + xs) - digamma(a + b + xs)) + self.total * (
            digamma(a + b) - digamma(b)
        )
        # one-time buyers: -r log(alpha + T)
        log_t1 = np.log(alpha + self.t_once)
        ll -= r * log_t1.sum()
        d_r -= log_t1.sum()
        d_alpha -= r * (1.0 / (alpha + self.t_once)).sum()
        # repeat buyers: logaddexp of the alive and the dropped-out branches
        rx = r + self.x
        log_t = np.log(alpha + self.t)
        log_tx = np.log(alpha + self.t_x)
        alive = -rx * log_t
        dropped = np.log(a) - np.log(b + self.b_shift) - rx * log_tx
        both = np.logaddexp(alive, dropped)
        share = np.exp(dropped - both)  # weight of the dropped branch
        ll += both.sum()
        d_r -= log_t.sum() + (share * (log_tx - log_t)).sum()
        d_alpha -= (rx / (alpha + self.t)).sum() + (
            share * rx * (1.0 / (alpha + self.t_x) - 1.0 / (alpha + self.t))
        ).sum()
        d_a += share.sum() / a
        d_b -= (share / (b + self.b_shift)).sum()
        grad = np.array([d_r * r, d_alpha * alpha, d_a * a, d_b * b])
        return -ll / self.total, -grad / self.total


class _GammaGammaObjective:
    """Mean negative Gamma-Gamma log-likelihood and its gradient in log parameters; the
    gamma functions depend on the frequency alone, so they run once per distinct one."""

    def __init__(self, x: np.ndarray, m: np.ndarray) -> None:
        self.total = float(len(x))
        self.values, counts = np.unique(x, return_counts=True)
        self.counts = counts.astype("float64")
        self.x = x
        self.xm = x * m
        # sum of (p x - 1) log m + p x log x = p * sum(x (log m + log x)) - sum(log m)
        log_m = np.log(m)
        self.x_log_xm = float((x * (log_m + np.log(x))).sum())
        self.sum_log_m = float(log_m.sum())
        self.sum_x = float(x.sum())

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        p, q, v = np.exp(theta)
        xs, n = self.values, self.counts
        pxs = p * xs
        digamma_pxq = special.digamma(pxs + q)
        log_xmv = np.log(self.xm + v)
        sum_log_xmv = float(log_xmv.sum())
        x_log_xmv = float(self.x @ log_xmv)
        ll = (
            n @ (special.gammaln(pxs + q) - special.gammaln(pxs))
            + self.total * (q * np.log(v) - special.gammaln(q))
            + p * (self.x_log_xm - x_log_xmv)
            - self.sum_log_m
            - q * sum_log_xmv
        )
        d_p = n @ (xs * (digamma_pxq - special.digamma(pxs))) + self.x_log_xm - x_log_xmv
        d_q = n @ digamma_pxq + self.total * (np.log(v) - special.digamma(q)) - sum_log_xmv
        inverse = 1.0 / (self.xm + v)
        d_v = self.total * q / v - p * float(self.x @ inverse) - q * float(inverse.sum())
        grad = np.array([d_p * p, d_q * q, d_v * v])
        return -ll / self.total, -grad / self.total


# -- scoring ------------------------------------------------------------------------------


def p_alive(model: BgNbd, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> np.ndarray:
    """P(alive) of each customer: 1 for one-time buyers (BG/NBD drops customers only
    after a purchase), otherwise 1 / (1 + a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x))."""
    x, t_x, t = _floats(frequency, recency, T)
    out = np.ones_like(x)
    rep = x > 0
    xr = x[rep]
    log_odds = (
        np.log(model.a)
        - np.log(model.b + xr - 1)
        + (model.r + xr) * (np.log(model.alpha + t[rep]) - np.log(model.alpha + t_x[rep]))
    )
    out[rep] = special.expit(-log_odds)
    return out


def expected_purchases(
    model: BgNbd, horizon: float, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """Expected purchase days in the next ``horizon`` (FHL 2005, eq. 10): P(alive) times
    the expected purchases of a customer still alive, which depends on x and T only and
    is evaluated once per distinct (x, T) pair (:func:`_alive_purchases`)."""
    x, t_x, t = _floats(frequency, recency, T)
    pairs, where = _distinct_pairs(x, t)
    per_pair = _alive_purchases(model, horizon, *pairs)
    return per_pair[where] * p_alive(model, x, t_x, t)


def _alive_purchases(model: BgNbd, horizon: float, x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """E[purchases in the horizon | alive, x, T] = E_p[(1 - (1 + p s)^-(r+x)) / p] with
    s = horizon / (alpha + T) and p ~ Beta(a, b + x), the posterior dropout probability.

    Closed form (a + b + x - 1) / (a - 1) (1 - F), F = (1-z)^(r+x) 2F1(r+x, b+x;
    a+b+x-1; z), z = horizon / (alpha + T + horizon). F is taken through Euler's
    transformation, (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z), which stays finite for
    any x; where scipy's 2F1 cannot give it (very large a, or a - b - r terms landing on
    integers) Pfaff's, 2F1(r+x, a-1; a+b+x-1; -s), and where both fail or leave the
    bounds 0 .. (r + x) s, the expectation over p is integrated numerically.
    """
    r, alpha, a, b = _bgnbd_tuple(model)
    log_keep = np.log(alpha + t) - np.log(alpha + t + horizon)  # log(1 - z)
    c = a + b + x - 1
    scale = c / (a - 1) if a != 1 else np.full_like(x, np.inf)
    with np.errstate(all="ignore"):
        euler = special.hyp2f1(a + b - 1 - r, a - 1, c, -np.expm1(log_keep))
        result = -np.expm1((a - 1) * log_keep + np.log(euler)) * scale
        ceiling = (r + x) * horizon / (alpha + t)  # no dropout at all
        bad = ~((result >= 0) & (result <= ceiling * (1 + 1e-9)))
        if bad.any():
            pfaff = special.hyp2f1(r + x[bad], a - 1, c[bad], -horizon / (alpha + t[bad]))
            result[bad] = (1 - pfaff) * scale[bad]
            bad = ~((result >= 0) & (result <= ceiling * (1 + 1e-9)))
    if bad.any():
        result[bad] = _integrated_alive_purchases(r, a, b, x[bad], horizon / (alpha + t[bad]))
    return result


#: Midpoints of the numerical integration over logit p.
_GRID_POINTS = 4000


def _integrated_alive_purchases(
    r: float, a: float, b: float, x: np.ndarray, s: np.ndarray
) -> np.ndarray:
    """E_p[(1 - (1 + p s)^-(r+x)) / p], p ~ Beta(a, b + x), by the midpoint rule over
    y = logit p: there the density p^a (1-p)^(b+x) is smooth and unimodal, whatever a and
    b. The grid spans 12 standard deviations of y around its mean plus the heavy tails
    (30 / a to the left, 30 / (b + x) to the right), so no mass is lost."""
    out = np.empty_like(x)
    for i in range(len(x)):  # rare: only the pairs the closed forms could not give
        right = b + x[i]
        mean = special.digamma(a) - special.digamma(right)
        spread = 12 * np.sqrt(special.polygamma(1, a) + special.polygamma(1, right))
        low, high = mean - spread - 30 / a, mean + spread + 30 / right
        step = (high - low) / _GRID_POINTS
        y = low + step * (np.arange(_GRID_POINTS) + 0.5)
        log_p, log_q = -np.logaddexp(0, -y), -np.logaddexp(0, y)  # log p, log(1 - p)
        p = np.exp(log_p)
        density = np.exp(a * log_p + right * log_q - special.betaln(a, right))
        with np.errstate(invalid="ignore"):  # p = 0 far left: the limit (r + x) s
            gain = -np.expm1(-(r + x[i]) * np.log1p(p * s[i])) / p
        gain[p * s[i] < 1e-12] = (r + x[i]) * s[i]
        out[i] = step * float(density @ gain)
    return out


def expected_spend(model: GammaGamma, frequency: np.ndarray, monetary: np.ndarray) -> np.ndarray:
    """Expected spend per purchase day: p (v + x m) / (p x + q - 1) for repeat buyers with
    a positive mean spend, the population mean p v / (q - 1) for everyone else."""
    x, m = _floats(frequency, monetary)
    out = np.full_like(x, model.mean_spend())
    own = (x > 0) & (m > 0)
    out[own] = model.p * (model.v + x[own] * m[own]) / (model.p * x[own] + model.q - 1)
    return out


# -- the customer table -------------------------------------------------------------------


def buyer_summary(table: pd.DataFrame) -> tuple[np.ndarray, Summary]:
    """The buyers' rows of a customer table (a boolean mask) and their summary.

    Reads ``has_paid_order``, ``order_days``, ``repeat_paid``, ``tenure_days`` and
    ``recency_days`` (:func:`crm_batch.kpi.facts.customer_table`).
    """
    buyers = table["has_paid_order"].to_numpy(dtype=bool)
    tenure = table["tenure_days"].to_numpy(dtype="float64", na_value=0.0)[buyers]
    quiet = table["recency_days"].to_numpy(dtype="float64", na_value=0.0)[buyers]
    frequency = np.maximum(table["order_days"].to_numpy(dtype="float64")[buyers] - 1, 0.0)
    repeat_paid = table["repeat_paid"].to_numpy(dtype="float64")[buyers]
    monetary = np.zeros_like(frequency)
    np.divide(repeat_paid, frequency, out=monetary, where=frequency > 0)
    return buyers, Summary(frequency, tenure - quiet, tenure, monetary)


def _fitting_summary(table: pd.DataFrame) -> Summary:
    """The buyers' summary in a canonical order: the sums of the likelihood, and so the
    fitted digits, must not depend on the order the database returned the rows in."""
    _, summary = buyer_summary(table)
    order = np.lexsort((summary.monetary, summary.T, summary.recency, summary.frequency))
    return Summary(*(values[order] for values in vars(summary).values()))


def fit_purchases(table: pd.DataFrame) -> BgNbd | None:
    """The BG/NBD model alone, fitted as :func:`fit` fits it (the same digits), for
    callers that need no spend model: the Gamma-Gamma fit costs about three times the
    BG/NBD's."""
    summary = _fitting_summary(table)
    return fit_bgnbd(summary.frequency, summary.recency, summary.T)


def fit(table: pd.DataFrame, stored: ValueModel | None = None) -> ValueModel:
    """Both models fitted on every buyer of ``table`` (the whole company: population
    models are fitted once and score every team's customers).

    ``stored``: the models already fitted for this date (read back from the state
    database); they are returned as they are when they were fitted on this very summary
    (:func:`fitted_on`), else the models are fitted again.
    """
    summary = _fitting_summary(table)
    if stored is not None and fitted_on(stored, summary):
        return stored
    return ValueModel(
        buyers=len(summary.T),
        repeat_buyers=int((summary.frequency > 0).sum()),
        bgnbd=fit_bgnbd(summary.frequency, summary.recency, summary.T),
        gamma_gamma=fit_gamma_gamma(summary.frequency, summary.monetary),
    )


def fitted_on(model: ValueModel, summary: Summary) -> bool:
    """Whether ``model`` is the fit of ``summary`` (in :func:`fit`'s canonical order): the
    same buyer counts, and each fitted part's total log-likelihood at its own parameters
    on this summary is exactly the total it was fitted with. One likelihood evaluation
    per model instead of a fit's few dozen; a changed order, amount or date changes the
    totals (the check is a fingerprint of the summary, not a proof, so equal counts
    alone are not enough)."""
    repeat = int((summary.frequency > 0).sum())
    if (model.buyers, model.repeat_buyers) != (len(summary.T), repeat):
        return False
    if (model.bgnbd is None) != (repeat < MIN_REPEAT_BUYERS):
        return False
    if model.bgnbd is not None:
        total = bgnbd_log_likelihood(model.bgnbd, summary.frequency, summary.recency, summary.T)
        if float(total.sum()) != model.bgnbd.log_likelihood:
            return False
    used = (summary.frequency > 0) & (summary.monetary > 0)
    if model.gamma_gamma is None:
        return int(used.sum()) < MIN_REPEAT_BUYERS
    if int(used.sum()) != model.gamma_gamma.customers:
        return False
    total = gamma_gamma_log_likelihood(
        model.gamma_gamma, summary.frequency[used], summary.monetary[used]
    )
    return float(total.sum()) == model.gamma_gamma.log_likelihood


def from_parameters(figures: Mapping[str, float]) -> ValueModel:
    """A model from its stored figures (:meth:`ValueModel.parameters`); a part stored
    as NaN (not fitted) is None. ``converged`` is not stored: a stored fit was used, so
    it reads back as converged."""

    def known(*names: str) -> bool:
        return all(math.isfinite(figures[name]) for name in names)

    bgnbd = gamma_gamma = None
    if known("r", "alpha", "a", "b", "bgnbd_log_likelihood"):
        bgnbd = BgNbd(
            figures["r"],
            figures["alpha"],
            figures["a"],
            figures["b"],
            int(figures["buyers"]),
            figures["bgnbd_log_likelihood"],
            True,
        )
    if known("p", "q", "v", "gamma_gamma_customers", "gamma_gamma_log_likelihood"):
        gamma_gamma = GammaGamma(
            figures["p"],
            figures["q"],
            figures["v"],
            int(figures["gamma_gamma_customers"]),
            figures["gamma_gamma_log_likelihood"],
            True,
        )
    return ValueModel(int(figures["buyers"]), int(figures["repeat_buyers"]), bgnbd, gamma_gamma)


def with_scores(table: pd.DataFrame, model: ValueModel) -> pd.DataFrame:
    """``table`` with :data:`SCORE_COLUMNS` (NaN for non-buyers and unfitted models)."""
    buyers, summary = buyer_summary(table)
    columns = {name: np.full(len(table), np.nan) for name in SCORE_COLUMNS}
    if model.bgnbd is not None and buyers.any():
        args = (summary.frequency, summary.recency, summary.T)
        orders = expected_purchases(model.bgnbd, HORIZON_DAYS, *args)
        columns["p_alive"][buyers] = p_alive(model.bgnbd, *args)
        columns["expected_orders_12m"][buyers] = orders
        if model.gamma_gamma is not None:
            spend = expected_spend(model.gamma_gamma, summary.frequency, summary.monetary)
            columns["expected_revenue_12m"][buyers] = orders * spend
    added = {
        name: pd.Series(values, index=table.index, copy=False) for name, values in columns.items()
    }
    data = {name: table[name] for name in table.columns} | added
    return pd.DataFrame(data, index=table.index, copy=False)


def prediction_kpis(
    table: pd.DataFrame, warnings: pd.DataFrame, likely_lost_p_alive: float, fitted: bool
) -> dict[str, float]:
    """The KPIs of :data:`KPIS` over a scored table and its warnings (filter both for a
    team). Without buyers in the scope the sums are NaN ("no data") and the count 0;
    without a ``fitted`` model (too few repeat buyers in the company) all three are NaN.
    """
    nan = float("nan")
    if not fitted:
        return {kpi.name: nan for kpi in KPIS}
    scored = table["expected_revenue_12m"].notna()
    recent = table["orders_12m"].to_numpy() > 0
    alive = table["p_alive"].to_numpy(dtype="float64", na_value=np.nan)
    return {
        "expected_revenue_12m": float(table["expected_revenue_12m"].sum()) if scored.any() else nan,
        "likely_lost_customers": float((recent & (alive < likely_lost_p_alive)).sum()),
        "expected_value_at_risk": (
            float(warnings["expected_revenue_12m"].sum()) if scored.any() else nan
        ),
    }


# -- helpers ------------------------------------------------------------------------------


def _floats(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(values, dtype="float64") for values in arrays)


def _bgnbd_tuple(params: BgNbd | tuple[float, ...]) -> tuple[float, float, float, float]:
    if isinstance(params, BgNbd):
        return params.r, params.alpha, params.a, params.b
    r, alpha, a, b = params
    return r, alpha, a, b


def _gg_tuple(params: GammaGamma | tuple[float, ...]) -> tuple[float, float, float]:
    if isinstance(params, GammaGamma):
        return params.p, params.q, params.v
    p, q, v = params
    return p, q, v


def _distinct_pairs(
    x: np.ndarray, t: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """The distinct (x, t) pairs and, for each row, the index of its pair (hashing)."""
    x_codes, x_values = pd.factorize(x)
    t_codes, t_values = pd.factorize(t)
    width = max(len(t_values), 1)
    codes, keys = pd.factorize(x_codes.astype("int64") * width + t_codes)
    return (x_values[keys // width], t_values[keys % width]), codes
