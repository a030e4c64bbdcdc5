"""Choosing the records of a training set from scored candidates and gold.

This module is pure: it takes scored frames and a :class:`RebuildPolicy` and
returns one decision per record. It reads no file and runs no model; see
:mod:`synthfilter.rebuild.pipeline` for that.

The rule, in order:

1. Every gold record is kept (reason ``gold``), unaltered.
2. With ``dedup``, each near-duplicate cluster (computed jointly over gold and
   candidates) keeps one representative: a gold record if the cluster has
   one, else the candidate with the lowest prior-adjusted probability of
   being synthetic, ties broken by the detector's ``synthetic_score`` when
   the candidates carry it, then by id. The others get
   ``duplicate-of:<representative id>``.
3. Candidate representatives that are rare (``rarity >= keep_rare``) *and* look
   human (adjusted ``p <= rare_max_p``) are kept (``protected-rare``); their
   expected synthetic count counts against the cap.
4. Remaining representatives that look synthetic (adjusted ``p > max_p``,
   0.9 by default) are dropped (``looks-synthetic``).
5. The others are ranked by ascending adjusted ``p`` (ties by
   ``synthetic_score`` when present, then id: isotonic calibration gives a
   whole step one ``p``, and the score still orders it) and the longest
   prefix is kept whose addition keeps the expected synthetic share of the
   whole output, ``sum(adjusted p) / n_output`` with gold at 0, at or under
   ``max_synthetic`` (``selected``; the rest ``over-synthetic-cap``). For a
   linear constraint like this one the prefix of the lowest probabilities is
   the largest feasible set, so no other choice keeps more records.
   ``target_size`` and ``min_gold_share`` then shorten the prefix
   (``over-target-size``, ``under-min-gold-share``).

Probabilities are moved to the candidates' own synthetic share before any of
this: the share is estimated with :func:`synthfilter.share.estimate_share`
(PACC) and each ``p`` is adjusted with :func:`synthfilter.share.adjust_to_prior`,
so the expected count of a subset is the sum of its adjusted probabilities.

What the guarantee is, and is not
---------------------------------
The cap holds for the *expected* synthetic share under the detector's
calibrated probabilities. It is a statistical statement, exactly as good as the
detector: where the candidates come from the sources and generators the
detector's calibration data came from, the realised share lands close to the
expectation (the reported 95 % interval adds the uncertainty of the share
estimate and the Bernoulli spread of the selected records). A generator or
domain the detector has not seen, paraphrased machine text, or a detector that
is confidently wrong, can put far more synthetic text in the output than the
cap says, and nothing in this module can notice that.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from synthfilter.errors import ConfigError, SchemaError, describe_rows
from synthfilter.rebuild.policy import (
    DUPLICATE_PREFIX,
    GOLD,
    LOOKS_SYNTHETIC,
    OVER_SYNTHETIC_CAP,
    OVER_TARGET_SIZE,
    PROTECTED_RARE,
    SELECTED,
    UNDER_MIN_GOLD_SHARE,
    RebuildPolicy,
)
from synthfilter.share import (
    ShareCalibration,
    ShareEstimate,
    adjust_to_prior,
    estimate_share,
    naive_share,
)

#: Columns of the decisions table, in order.
DECISION_COLUMNS = (
    "origin",
    "row",
    "id",
    "kept",
    "reason",
    "p_synthetic",
    "p_adjusted",
    "rarity",
    "dup_cluster",
    "rank",
)
#: Keys of :attr:`Selection.counts` ``["by_reason"]``, in display order.
REASON_KEYS = (
    GOLD,
    PROTECTED_RARE,
    SELECTED,
    "duplicate",
    LOOKS_SYNTHETIC,
    OVER_SYNTHETIC_CAP,
    OVER_TARGET_SIZE,
    UNDER_MIN_GOLD_SHARE,
)

_TOL = 1e-12
_Z95 = 1.959963984540054


@dataclass(frozen=True)
class Selection:
    """The outcome of :func:`select`.

    Attributes
    ----------
    decisions : polars.DataFrame
        One row per input record, gold rows first, then candidates, each in
        input order. Columns :data:`DECISION_COLUMNS`: ``origin`` (``gold`` or
        ``candidate``), ``row`` (position in its input frame), ``id``, ``kept``,
        ``reason``, ``p_synthetic`` (as given; null for gold), ``p_adjusted``
        (moved to the candidates' prior; 0 for gold), ``rarity``,
        ``dup_cluster``, ``rank`` (position in the greedy order; null for gold,
        duplicates and protected records).
    candidate_share : ShareEstimate
        Estimated synthetic share of all candidates (before selection).
    output_share : ShareEstimate
        Expected synthetic share of the output, with a 95 % interval
        (``method="expected"``; see :func:`expected_share`).
    prior : float
        The prior the probabilities were adjusted to.
    limits : dict
        ``max_size_under_cap``: the most records (gold included) that fit under
        the cap with this pool; ``min_size_under_cap``: the fewest (above 0 only
        when protected records need diluting); ``max_size_gold_share``: the most
        that keep ``min_gold_share`` (``None`` without one).
    counts : dict
        ``input``, ``gold``, ``candidates``, ``kept``, ``dropped`` and
        ``by_reason`` (keys :data:`REASON_KEYS`, all duplicates under
        ``"duplicate"``); the reasons add up to ``input``.
    """

    decisions: pl.DataFrame
    candidate_share: ShareEstimate
    output_share: ShareEstimate
    prior: float
    limits: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)

    @property
    def kept(self) -> pl.DataFrame:
        """Decisions of the kept records."""
        return self.decisions.filter(pl.col("kept"))


def _column(df: pl.DataFrame, name: str, what: str, why: str) -> pl.Series:
    if name not in df.columns:
        raise SchemaError(f"{what}: no column '{name}' ({why}); score the file first with `synthfilter score`")
    return df.get_column(name)


def _probabilities(df: pl.DataFrame) -> np.ndarray:
    col = _column(df, "p_synthetic", "candidates", "needed to cap the synthetic share")
    if not col.dtype.is_numeric():
        raise SchemaError(f"candidates: column 'p_synthetic' holds {col.dtype}, not numbers")
    bad = (col.is_null() | ~col.cast(pl.Float64).is_between(0.0, 1.0)).arg_true().to_list()
    if bad:
        raise SchemaError(
            f"candidates: column 'p_synthetic' is null or outside [0, 1] at {describe_rows(bad)}; "
            "re-score the file"
        )
    return col.cast(pl.Float64).to_numpy()


def _tie_scores(df: pl.DataFrame) -> np.ndarray:
    """The detector's uncalibrated ``synthetic_score`` where present (0 otherwise).

    Isotonic calibration gives every record of one step the same ``p``; the
    score still orders them by how machine-like the detector finds them, so
    it breaks ties between equal probabilities (lower first).
    """
    if "synthetic_score" not in df.columns or not df.get_column("synthetic_score").dtype.is_numeric():
        return np.zeros(df.height)
    col = df.get_column("synthetic_score").cast(pl.Float64)
    return col.fill_nan(None).fill_null(0.0).to_numpy()


def _rarity(df: pl.DataFrame, needed: bool) -> np.ndarray:
    if "rarity" not in df.columns:
        if needed:
            _column(df, "rarity", "candidates", "needed by keep_rare")
        return np.full(df.height, np.nan)
    col = df.get_column("rarity").cast(pl.Float64)
    bad = (col.is_not_null() & ~col.is_between(0.0, 1.0)).arg_true().to_list()
    if bad:
        raise SchemaError(f"candidates: column 'rarity' is outside [0, 1] at {describe_rows(bad)}; re-score the file")
    return col.fill_null(np.nan).to_numpy()


def _clusters(df: pl.DataFrame, what: str, needed: bool, offset: int) -> np.ndarray:
    if not needed:
        return np.arange(offset, offset + df.height, dtype=np.int64)
    col = _column(df, "dup_cluster", what, "needed by dedup; or turn dedup off")
    if not col.dtype.is_integer() or col.null_count():
        raise SchemaError(f"{what}: column 'dup_cluster' must hold whole numbers without nulls")
    return col.cast(pl.Int64).to_numpy()


def expected_share(
    p_kept: np.ndarray,
    n_output: int,
    *,
    p_kept_low: np.ndarray | None = None,
    p_kept_high: np.ndarray | None = None,
) -> ShareEstimate:
    """Expected synthetic share of an output and a 95 % interval.

    Parameters
    ----------
    p_kept : numpy.ndarray
        Adjusted probabilities of the kept candidates (gold is not passed: it
        counts 0 but is part of ``n_output``).
    n_output : int
        Records in the output, gold included.
    p_kept_low, p_kept_high : numpy.ndarray, optional
        The same probabilities adjusted to the low and high end of the
        candidates' share interval.

    Returns
    -------
    ShareEstimate
        ``share = sum(p) / n``. The interval runs from the low-prior expectation
        minus 1.96 Bernoulli standard deviations (``sqrt(sum p (1 - p)) / n``)
        to the high-prior expectation plus as much, clipped to [0, 1]: it
        carries the uncertainty of the share estimate and the spread of the
        realised count around its expectation, not the detector's errors
        outside its calibration domain.
    """
    p_kept = np.asarray(p_kept, dtype=np.float64)
    if n_output <= 0:
        return ShareEstimate(share=0.0, low=0.0, high=0.0, n=0, method="expected", naive_mean=0.0)
    low_p = p_kept if p_kept_low is None else np.asarray(p_kept_low, dtype=np.float64)
    high_p = p_kept if p_kept_high is None else np.asarray(p_kept_high, dtype=np.float64)
    sd = math.sqrt(float(np.sum(p_kept * (1.0 - p_kept)))) / n_output
    point = float(p_kept.sum()) / n_output
    low = min(point, float(low_p.sum()) / n_output) - _Z95 * sd
    high = max(point, float(high_p.sum()) / n_output) + _Z95 * sd
    return ShareEstimate(
        share=point,
        low=float(np.clip(low, 0.0, 1.0)),
        high=float(np.clip(high, 0.0, 1.0)),
        n=int(n_output),
        method="expected",
        naive_mean=point,
    )


def _representatives(
    cand_cl: np.ndarray, p_adj: np.ndarray, tie: np.ndarray, cand_ids: np.ndarray, gold_cl: np.ndarray,
    gold_ids: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Which candidates represent their cluster, and each candidate's representative id.

    A cluster with a gold record is represented by its first gold record (no
    candidate represents it); otherwise by the candidate with the lowest
    adjusted probability, then the lowest ``synthetic_score`` (``tie``), then
    the smallest id, then the first row.
    """
    n = cand_cl.size
    frame = pl.DataFrame(
        {"i": np.arange(n), "cl": cand_cl, "p": p_adj, "tie": tie,
         "id": pl.Series(cand_ids.tolist(), dtype=pl.String)}
    ).sort("cl", "p", "tie", "id", "i")
    frame = frame.with_columns(
        cand_rep=pl.col("id").first().over("cl"), is_first=pl.col("i") == pl.col("i").first().over("cl")
    )
    golds = pl.DataFrame(
        {"cl": pl.Series(gold_cl, dtype=pl.Int64), "gold_rep": pl.Series(gold_ids.tolist(), dtype=pl.String)}
    ).unique("cl", keep="first", maintain_order=True)
    frame = frame.join(golds, on="cl", how="left").sort("i")
    is_rep = (frame["gold_rep"].is_null() & frame["is_first"]).to_numpy()
    rep = frame.select(pl.coalesce("gold_rep", "cand_rep")).to_series().to_numpy().astype(np.str_)
    return is_rep, rep


def _fmt(n: int) -> str:
    return f"{n:,}"


def select(
    candidates: pl.DataFrame,
    gold: pl.DataFrame | None,
    policy: RebuildPolicy,
    *,
    calibration: ShareCalibration | None = None,
    groups: Sequence[Hashable] | None = None,
) -> Selection:
    """Decide, for every record, whether it goes into the training set and why.

    Parameters
    ----------
    candidates : polars.DataFrame
        Scored candidates: ``id``, ``p_synthetic`` (calibrated, [0, 1]);
        ``rarity`` ([0, 1], 1 = rarest) when ``policy.keep_rare`` is set;
        ``dup_cluster`` (int) when ``policy.dedup`` is set.
    gold : polars.DataFrame or None
        Gold records: ``id``, and ``dup_cluster`` when ``policy.dedup`` is set,
        numbered in the same namespace as the candidates' clusters (computed
        jointly, so that a candidate duplicating a gold record shares its
        cluster).
    policy : RebuildPolicy
        The constraints.
    calibration : ShareCalibration, optional
        Held-out probabilities of the model that produced ``p_synthetic``,
        for the prior correction. Without it the probabilities are used as
        they are (taken to be calibrated for this corpus).
    groups : sequence, optional
        Document id of each candidate: the candidates' share interval (and so
        the output's) then resamples whole documents. It does not change
        which records are kept.

    Returns
    -------
    Selection

    Raises
    ------
    SchemaError
        If a needed column is missing or holds invalid values.
    ConfigError
        If the policy cannot be met with this pool; the message says what is
        possible.

    Examples
    --------
    >>> cands = pl.DataFrame({"id": ["a", "b", "c"], "p_synthetic": [0.05, 0.9, 0.1],
    ...                       "rarity": [0.1, 0.2, 0.3], "dup_cluster": [0, 1, 2]})
    >>> select(cands, None, RebuildPolicy(max_synthetic=0.2)).decisions["reason"].to_list()
    ['selected', 'over-synthetic-cap', 'selected']
    >>> ceiling = select(cands, None, RebuildPolicy(max_synthetic=0.2, max_p=0.5))  # no machine-looking record
    >>> ceiling.decisions["reason"].to_list()
    ['selected', 'looks-synthetic', 'selected']
    """
    if not isinstance(policy, RebuildPolicy):
        raise ConfigError(f"policy must be a RebuildPolicy, not {type(policy).__name__}")
    if gold is None:
        gold = pl.DataFrame({"id": pl.Series([], dtype=pl.String)})
    if candidates.height == 0:
        raise ConfigError("no candidate records; give at least one candidate file with records")
    for name, frame in (("candidates", candidates), ("gold", gold)):
        if "id" not in frame.columns:
            raise SchemaError(f"{name}: no column 'id'")

    n_c, n_g = candidates.height, gold.height
    cand_ids = np.asarray(candidates.get_column("id").cast(pl.String).to_list(), dtype=np.str_)
    gold_ids = np.asarray(gold.get_column("id").cast(pl.String).to_list(), dtype=np.str_)
    p = _probabilities(candidates)
    tie = _tie_scores(candidates)
    rarity = _rarity(candidates, needed=policy.keep_rare is not None)
    gold_cl = _clusters(gold, "gold", policy.dedup and n_g > 0, offset=0)
    cand_cl = _clusters(candidates, "candidates", policy.dedup, offset=n_g)

    # Prior correction ---------------------------------------------------------------
    if calibration is not None:
        est = estimate_share(p, calibration, groups=groups, seed=policy.seed)
        base = calibration.base_prior
        p_adj = adjust_to_prior(p, est.share, base)
        p_adj_low = adjust_to_prior(p, est.low, base)
        p_adj_high = adjust_to_prior(p, est.high, base)
    else:
        est = naive_share(p, groups=groups, seed=policy.seed)
        p_adj = p_adj_low = p_adj_high = p

    reason = np.empty(n_c, dtype=object)
    rank = np.full(n_c, -1, dtype=np.int64)

    # Duplicates: one representative per cluster -------------------------------------
    is_rep = np.ones(n_c, dtype=bool)
    if policy.dedup:
        is_rep, rep_id = _representatives(cand_cl, p_adj, tie, cand_ids, gold_cl, gold_ids)
        reason[~is_rep] = np.char.add(DUPLICATE_PREFIX, rep_id[~is_rep]).astype(object)

    # Protected rare records ------------------------------------------------------------
    protected = np.zeros(n_c, dtype=bool)
    if policy.keep_rare is not None:
        with np.errstate(invalid="ignore"):
            protected = is_rep & (rarity >= policy.keep_rare) & (p_adj <= policy.rare_max_p)
    reason[protected] = PROTECTED_RARE

    # Records that look synthetic are never selected -----------------------------------
    looks_synthetic = is_rep & ~protected & (p_adj > policy.max_p)
    reason[looks_synthetic] = LOOKS_SYNTHETIC

    # Greedy prefix under the cap -------------------------------------------------------
    pool = np.flatnonzero(is_rep & ~protected & ~looks_synthetic)
    pool = pool[np.lexsort((pool, cand_ids[pool], tie[pool], p_adj[pool]))]
    n_fixed = n_g + int(protected.sum())
    s_fixed = float(p_adj[protected].sum())
    cum = np.concatenate([[0.0], np.cumsum(p_adj[pool])])
    sizes = n_fixed + np.arange(pool.size + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(sizes > 0, (s_fixed + cum) / np.maximum(sizes, 1), 0.0)
    feasible = np.flatnonzero(shares <= policy.max_synthetic + _TOL)
    cap = policy.max_synthetic
    if feasible.size == 0:
        raise ConfigError(
            f"the records that must be kept ({_fmt(n_g)} gold + {_fmt(int(protected.sum()))} protected rare) "
            f"have an expected synthetic share of {s_fixed / max(n_fixed, 1):.3f}, and no choice of the other "
            f"{_fmt(pool.size)} candidates brings it under --max-synthetic {cap:g}; raise --keep-rare, lower "
            "--rare-max-p, raise --max-synthetic, or add gold data"
        )
    k_lo, k_hi = int(feasible[0]), int(feasible[-1])
    limits: dict[str, Any] = {
        "max_size_under_cap": n_fixed + k_hi,
        "min_size_under_cap": n_fixed + k_lo,
        "max_size_gold_share": None,
    }
    fixed_desc = f"{_fmt(n_g)} gold + {_fmt(int(protected.sum()))} protected rare"
    max_p_note = (f" with adjusted p <= --max-p {policy.max_p:g}; {_fmt(int(looks_synthetic.sum()))} look synthetic"
                  if policy.max_p < 1 else "")

    k = k_hi
    if policy.min_gold_share > 0:
        if n_g == 0:
            raise ConfigError(
                f"--min-gold-share {policy.min_gold_share:g} needs gold data; give --gold files or set it to 0"
            )
        max_total = math.floor(n_g / policy.min_gold_share + 1e-9)
        limits["max_size_gold_share"] = max_total
        if max_total < n_fixed + k_lo:
            raise ConfigError(
                f"--min-gold-share {policy.min_gold_share:g} allows at most {_fmt(max_total)} records with "
                f"{_fmt(n_g)} gold, but the output needs at least {_fmt(n_fixed + k_lo)} ({fixed_desc}"
                f"{' + records to dilute them under the cap' if k_lo else ''}); lower --min-gold-share, "
                "raise --keep-rare, or add gold data"
            )
        k = min(k, max_total - n_fixed)
    if policy.target_size is not None:
        t = policy.target_size
        if t < n_fixed + k_lo:
            raise ConfigError(
                f"--target-size {_fmt(t)} is smaller than the {_fmt(n_fixed + k_lo)} records that must be kept "
                f"({fixed_desc}); use --target-size {_fmt(n_fixed + k_lo)} or more, or raise --keep-rare"
            )
        if t > n_fixed + k_hi:
            raise ConfigError(
                f"at most {_fmt(n_fixed + k_hi)} records fit under --max-synthetic {cap:g} with this pool "
                f"({fixed_desc} + {_fmt(k_hi)} of {_fmt(pool.size)} other candidates{max_p_note}); lower "
                f"--target-size to {_fmt(n_fixed + k_hi)} or less, raise --max-synthetic"
                f"{' or --max-p' if policy.max_p < 1 else ''}, or add gold data"
            )
        if limits["max_size_gold_share"] is not None and t > limits["max_size_gold_share"]:
            raise ConfigError(
                f"--min-gold-share {policy.min_gold_share:g} allows at most "
                f"{_fmt(limits['max_size_gold_share'])} records with {_fmt(n_g)} gold; lower --target-size to "
                f"{_fmt(limits['max_size_gold_share'])} or less, or add gold data"
            )
        k = t - n_fixed
    if n_fixed + k == 0:
        raise ConfigError(
            f"no record fits under --max-synthetic {cap:g}: every candidate has an adjusted probability above "
            f"the cap{' or --max-p' if policy.max_p < 1 else ''} and there is no gold data; raise --max-synthetic"
            f"{' or --max-p' if policy.max_p < 1 else ''}, or add gold data"
        )

    pos = np.arange(pool.size)
    rank[pool] = pos
    size_reason = OVER_TARGET_SIZE if policy.target_size is not None else UNDER_MIN_GOLD_SHARE
    reason[pool] = np.where(pos < k, SELECTED, np.where(pos >= k_hi, OVER_SYNTHETIC_CAP, size_reason)).astype(object)
    kept_c = (reason == SELECTED) | (reason == PROTECTED_RARE)

    # Tables and summaries ---------------------------------------------------------------
    null_f = pl.lit(None, dtype=pl.Float64)
    gold_part = pl.DataFrame(
        {
            "origin": pl.Series([GOLD] * n_g, dtype=pl.String),
            "row": pl.Series(np.arange(n_g), dtype=pl.Int64),
            "id": pl.Series(gold_ids.tolist(), dtype=pl.String),
            "kept": pl.Series([True] * n_g, dtype=pl.Boolean),
            "reason": pl.Series([GOLD] * n_g, dtype=pl.String),
        }
    ).with_columns(
        p_synthetic=null_f,
        p_adjusted=pl.lit(0.0, dtype=pl.Float64),
        rarity=null_f,
        dup_cluster=pl.Series(gold_cl, dtype=pl.Int64) if policy.dedup else pl.lit(None, dtype=pl.Int64),
        rank=pl.lit(None, dtype=pl.Int64),
    )
    cand_part = pl.DataFrame(
        {
            "origin": pl.Series(["candidate"] * n_c, dtype=pl.String),
            "row": pl.Series(np.arange(n_c), dtype=pl.Int64),
            "id": pl.Series(cand_ids.tolist(), dtype=pl.String),
            "kept": pl.Series(kept_c, dtype=pl.Boolean),
            "reason": pl.Series(reason.tolist(), dtype=pl.String),
            "p_synthetic": pl.Series(p, dtype=pl.Float64),
            "p_adjusted": pl.Series(p_adj, dtype=pl.Float64),
            "rarity": pl.Series(rarity, dtype=pl.Float64).fill_nan(None),
            "dup_cluster": pl.Series(cand_cl if policy.dedup else [None] * n_c, dtype=pl.Int64),
            "rank": pl.Series(rank, dtype=pl.Int64),
        }
    ).with_columns(rank=pl.when(pl.col("rank") >= 0).then(pl.col("rank")))
    decisions = pl.concat([gold_part.select(DECISION_COLUMNS), cand_part.select(DECISION_COLUMNS)])

    n_out = n_g + int(kept_c.sum())
    out_share = expected_share(p_adj[kept_c], n_out, p_kept_low=p_adj_low[kept_c], p_kept_high=p_adj_high[kept_c])
    by_reason = {key: 0 for key in REASON_KEYS}
    by_reason[GOLD] = n_g
    for r in reason.tolist():
        by_reason["duplicate" if r.startswith(DUPLICATE_PREFIX) else r] += 1
    counts = {
        "input": n_g + n_c,
        "gold": n_g,
        "candidates": n_c,
        "kept": n_out,
        "dropped": n_g + n_c - n_out,
        "by_reason": by_reason,
    }
    return Selection(
        decisions=decisions,
        candidate_share=est,
        output_share=out_share,
        prior=float(est.share),
        limits=limits,
        counts=counts,
    )
