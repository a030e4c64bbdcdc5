"""The selection rule on hand-built scored frames (no model, no files)."""

import itertools

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthfilter.errors import ConfigError, SchemaError
from synthfilter.rebuild import RebuildPolicy, select
from synthfilter.rebuild.selection import REASON_KEYS, expected_share
from synthfilter.share import ShareCalibration, adjust_to_prior, estimate_share


def frame(p, rarity=None, clusters=None, ids=None):
    n = len(p)
    return pl.DataFrame({
        "id": ids or [f"c{i:03d}" for i in range(n)],
        "p_synthetic": np.asarray(p, dtype=float),
        "rarity": np.asarray(rarity if rarity is not None else np.zeros(n), dtype=float),
        "dup_cluster": np.asarray(clusters if clusters is not None else np.arange(100, 100 + n), dtype=np.int64),
    })


def gold_frame(n, clusters=None):
    return pl.DataFrame({
        "id": [f"g{i:02d}" for i in range(n)],
        "dup_cluster": np.asarray(clusters if clusters is not None else np.arange(n), dtype=np.int64),
    })


def out_share(sel):
    d = sel.decisions.filter(pl.col("kept"))
    return d["p_adjusted"].sum() / d.height


def test_gold_always_kept_and_counts_zero():
    sel = select(frame([0.9, 0.95, 0.99]), gold_frame(5), RebuildPolicy(max_synthetic=0.0, keep_rare=None))
    gold = sel.decisions.filter(pl.col("origin") == "gold")
    assert gold["kept"].all() and (gold["reason"] == "gold").all() and gold.height == 5
    assert sel.decisions.filter(pl.col("origin") == "candidate")["kept"].sum() == 0
    assert sel.output_share.share == 0.0


def test_cap_holds_and_greedy_takes_lowest_p():
    p = [0.9, 0.1, 0.3, 0.05, 0.6, 0.2]
    sel = select(frame(p), gold_frame(2), RebuildPolicy(max_synthetic=0.2, keep_rare=None, max_p=1.0))
    kept = sel.decisions.filter(pl.col("kept") & (pl.col("origin") == "candidate"))["id"].to_list()
    # 2 gold + 0.05 + 0.1 + 0.2 + 0.3 = 0.65 / 6 = 0.108; + 0.6 -> 1.25 / 7 = 0.179; + 0.9 -> 0.27
    assert sorted(kept) == ["c001", "c002", "c003", "c004", "c005"]
    assert out_share(sel) <= 0.2
    assert sel.limits["max_size_under_cap"] == 7
    assert sel.decisions.filter(pl.col("id") == "c000")["reason"].item() == "over-synthetic-cap"


def test_records_that_look_synthetic_are_not_used_to_fill_the_cap():
    p = [0.9, 0.1, 0.3, 0.05, 0.6, 0.2]
    sel = select(frame(p), gold_frame(2), RebuildPolicy(max_synthetic=0.2, keep_rare=None, max_p=0.5))
    reasons = dict(zip(sel.decisions["id"], sel.decisions["reason"]))
    assert reasons["c004"] == "looks-synthetic" and reasons["c000"] == "looks-synthetic"
    assert [r for r in reasons.values() if r == "selected"] == ["selected"] * 4
    assert sel.counts["by_reason"]["looks-synthetic"] == 2
    assert out_share(sel) == pytest.approx((0.05 + 0.1 + 0.2 + 0.3) / 6)  # under the cap, not filled to it


def test_default_policy_does_not_fill_the_cap_with_confident_machine_text():
    p = [0.95, 0.1, 0.3, 0.05, 0.6, 0.9]
    sel = select(frame(p), gold_frame(20), RebuildPolicy(max_synthetic=0.2, keep_rare=None))
    reasons = dict(zip(sel.decisions["id"], sel.decisions["reason"]))
    assert reasons["c000"] == "looks-synthetic"     # 0.95 > max_p 0.9, though the cap had room for it
    assert reasons["c005"] == "selected"            # 0.9 is not above it
    filled = select(frame(p), gold_frame(20), RebuildPolicy(max_synthetic=0.2, keep_rare=None, max_p=1.0))
    assert filled.decisions.filter(pl.col("id") == "c000")["reason"].item() == "selected"


def brute_force_max(p, n_gold, cap):
    best = 0
    for r in range(len(p), 0, -1):
        for subset in itertools.combinations(p, r):
            if sum(subset) / (n_gold + r) <= cap + 1e-12:
                return r
    return best


@settings(max_examples=60, deadline=None)
@given(
    p=st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=1, max_size=9),
    n_gold=st.integers(0, 3),
    cap=st.sampled_from([0.05, 0.1, 0.2, 0.4, 0.7]),
)
def test_greedy_keeps_as_many_as_any_subset(p, n_gold, cap):
    policy = RebuildPolicy(max_synthetic=cap, keep_rare=None, dedup=False, max_p=1.0)
    best = brute_force_max(p, n_gold, cap)
    try:
        sel = select(frame(p), gold_frame(n_gold), policy)
    except ConfigError as exc:
        assert best == 0 and n_gold == 0 and "no record fits" in str(exc)
        return
    assert sel.counts["kept"] - n_gold == best
    assert out_share(sel) <= cap + 1e-9


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    n=st.integers(1, 30),
    n_gold=st.integers(0, 6),
    cap=st.floats(0.0, 1.0),
    keep_rare=st.one_of(st.none(), st.floats(0.5, 1.0)),
    dedup=st.booleans(),
    target=st.one_of(st.none(), st.integers(1, 40)),
    min_gold=st.sampled_from([0.0, 0.0, 0.2, 0.5]),
    max_p=st.sampled_from([0.5, 1.0]),
)
def test_invariants_hold_or_policy_is_refused(data, n, n_gold, cap, keep_rare, dedup, target, min_gold, max_p):
    p = data.draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n))
    rarity = data.draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n))
    clusters = data.draw(st.lists(st.integers(0, 8), min_size=n, max_size=n))
    gold_cl = data.draw(st.lists(st.integers(0, 8), min_size=n_gold, max_size=n_gold))
    policy = RebuildPolicy(max_synthetic=cap, keep_rare=keep_rare, dedup=dedup, target_size=target,
                           min_gold_share=min_gold, max_p=max_p)
    try:
        sel = select(frame(p, rarity, clusters), gold_frame(n_gold, gold_cl), policy)
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    d = sel.decisions
    assert d.height == n + n_gold
    assert d["reason"].null_count() == 0 and (d["reason"].str.len_chars() > 0).all()
    assert sum(sel.counts["by_reason"].values()) == sel.counts["input"] == d.height
    assert sel.counts["kept"] == d["kept"].sum()
    assert d.filter(pl.col("origin") == "gold")["kept"].all()
    assert out_share(sel) <= cap + 1e-9
    kept = d.filter(pl.col("kept"))
    assert (kept.filter(pl.col("reason") == "selected")["p_adjusted"] <= max_p).all()
    if target is not None:
        assert kept.height == target
    if min_gold > 0:
        assert n_gold / kept.height >= min_gold - 1e-9
    if dedup:
        kept_c = kept.filter(pl.col("origin") == "candidate")
        assert kept_c["dup_cluster"].n_unique() == kept_c.height
        assert not set(kept_c["dup_cluster"].to_list()) & set(gold_cl)
    # Kept reasons and dropped reasons never mix.
    assert set(kept["reason"].to_list()) <= {"gold", "selected", "protected-rare"}
    dropped = d.filter(~pl.col("kept"))["reason"].to_list()
    assert all(r.startswith("duplicate-of:") or r in REASON_KEYS for r in dropped)


def test_duplicates_prefer_gold_then_most_human_then_id():
    cands = frame([0.3, 0.1, 0.2, 0.4, 0.1], clusters=[7, 7, 7, 9, 9], ids=["b", "z", "a", "q", "p"])
    gold = gold_frame(2, clusters=[9, 3])
    sel = select(cands, gold, RebuildPolicy(max_synthetic=1.0, keep_rare=None))
    reasons = dict(zip(sel.decisions["id"], sel.decisions["reason"]))
    assert reasons["z"] == "selected"            # lowest p in cluster 7
    assert reasons["a"] == "duplicate-of:z" and reasons["b"] == "duplicate-of:z"
    assert reasons["q"] == "duplicate-of:g00" and reasons["p"] == "duplicate-of:g00"  # gold wins


def test_tie_in_a_cluster_breaks_by_id():
    sel = select(frame([0.1, 0.1], clusters=[1, 1], ids=["m", "k"]), None, RebuildPolicy(keep_rare=None))
    assert dict(zip(sel.decisions["id"], sel.decisions["reason"])) == {"m": "duplicate-of:k", "k": "selected"}


def test_equal_p_breaks_by_synthetic_score_before_id():
    # One isotonic step: equal p, but the raw score still says which looks more human.
    cands = frame([0.5, 0.5, 0.5, 0.5], clusters=[11, 11, 12, 13], ids=["a", "b", "c", "d"]).with_columns(
        synthetic_score=pl.Series([2.0, -1.0, 3.0, 0.5])
    )
    sel = select(cands, gold_frame(3), RebuildPolicy(max_synthetic=0.2, keep_rare=None, dedup=True))
    reasons = dict(zip(sel.decisions["id"], sel.decisions["reason"]))
    assert reasons["a"] == "duplicate-of:b"      # b has the lower score in cluster 1
    # 3 gold + 0.5 * k <= 0.2 * (3 + k) -> k = 2: b (-1.0) and d (0.5), not c (3.0)
    assert reasons["b"] == reasons["d"] == "selected" and reasons["c"] == "over-synthetic-cap"
    without = select(cands.drop("synthetic_score"), gold_frame(3),
                     RebuildPolicy(max_synthetic=0.2, keep_rare=None, dedup=True))
    assert dict(zip(without.decisions["id"], without.decisions["reason"]))["a"] == "selected"  # id order


def test_row_order_does_not_change_decisions():
    rng = np.random.default_rng(0)
    n = 50
    p = np.round(rng.uniform(0, 1, n), 1)  # many ties
    df = frame(p, rarity=rng.uniform(0, 1, n), clusters=rng.integers(0, 30, n))
    policy = RebuildPolicy(max_synthetic=0.15, keep_rare=0.9)
    a = select(df, None, policy).decisions.select("id", "kept", "reason").sort("id")
    b = select(df.sample(fraction=1.0, shuffle=True, seed=3), None, policy).decisions
    assert a.equals(b.select("id", "kept", "reason").sort("id"))


def test_rare_human_looking_is_protected_rare_synthetic_is_not():
    # Cap 0 would keep nothing; the rare human-looking record is kept regardless of size limits
    # but counts against the cap.
    cands = frame([0.01, 0.9, 0.001, 0.001], rarity=[0.99, 0.99, 0.1, 0.1])
    sel = select(cands, gold_frame(10), RebuildPolicy(max_synthetic=0.01, keep_rare=0.95, target_size=11))
    reasons = dict(zip(sel.decisions["id"], sel.decisions["reason"]))
    assert reasons["c000"] == "protected-rare"
    assert reasons["c001"] == "over-synthetic-cap"      # rare but looks synthetic
    assert reasons["c002"] == "over-target-size" and reasons["c003"] == "over-target-size"


def test_target_size_too_large_says_what_fits():
    cands = frame([0.0] * 3 + [0.9] * 97)
    with pytest.raises(ConfigError, match=r"at most 3 records fit under --max-synthetic 0.2 with this pool") as err:
        select(cands, None, RebuildPolicy(max_synthetic=0.2, target_size=50, keep_rare=None))
    assert "\n" not in str(err.value)


def test_target_size_too_small_for_gold():
    with pytest.raises(ConfigError, match="smaller than the 5 records that must be kept"):
        select(frame([0.1] * 4), gold_frame(5), RebuildPolicy(target_size=3, keep_rare=None))


def test_min_gold_share_bounds_size_and_needs_gold():
    sel = select(frame([0.01] * 50), gold_frame(10), RebuildPolicy(min_gold_share=0.25, keep_rare=None))
    assert sel.counts["kept"] == 40
    assert sel.counts["by_reason"]["under-min-gold-share"] == 20
    with pytest.raises(ConfigError, match="needs gold data"):
        select(frame([0.01] * 5), None, RebuildPolicy(min_gold_share=0.1))
    with pytest.raises(ConfigError, match="allows at most 20 records"):
        select(frame([0.01] * 50), gold_frame(10), RebuildPolicy(min_gold_share=0.5, target_size=30, keep_rare=None))


def test_min_gold_share_impossible_with_protected_records():
    cands = frame([0.01] * 30, rarity=[1.0] * 30)
    with pytest.raises(ConfigError, match=r"allows at most 20 records with 10 gold, but the output needs at least 40"):
        select(cands, gold_frame(10), RebuildPolicy(min_gold_share=0.5, keep_rare=0.9))


def test_nothing_fits_without_gold():
    with pytest.raises(ConfigError, match="no record fits under --max-synthetic 0.1"):
        select(frame([0.5, 0.8]), None, RebuildPolicy(max_synthetic=0.1, keep_rare=None))


def test_missing_columns_and_bad_values():
    with pytest.raises(SchemaError, match="p_synthetic"):
        select(pl.DataFrame({"id": ["a"], "rarity": [0.1], "dup_cluster": [0]}), None, RebuildPolicy())
    with pytest.raises(SchemaError, match="outside"):
        select(frame([1.2]), None, RebuildPolicy())
    with pytest.raises(SchemaError, match="rarity"):
        select(frame([0.1]).drop("rarity"), None, RebuildPolicy(keep_rare=0.9))
    with pytest.raises(SchemaError, match="dup_cluster"):
        select(frame([0.1]).drop("dup_cluster"), None, RebuildPolicy(dedup=True, keep_rare=None))
    # Without those needs, the columns are optional.
    select(frame([0.1]).drop("rarity", "dup_cluster"), None, RebuildPolicy(keep_rare=None, dedup=False))


def test_prior_correction_uses_the_share_estimate():
    rng = np.random.default_rng(1)
    cal = ShareCalibration(p_machine=rng.beta(8, 2, 400), p_human=rng.beta(2, 8, 400), base_prior=0.5)
    # A corpus with 10 % machine text: adjusted probabilities shrink towards 0.1.
    p = np.concatenate([rng.beta(8, 2, 100), rng.beta(2, 8, 900)])
    sel = select(frame(p), None, RebuildPolicy(max_synthetic=0.05, keep_rare=None), calibration=cal)
    est = estimate_share(p, cal, seed=0)
    assert sel.candidate_share == est
    expected = adjust_to_prior(p, est.share, 0.5)
    cand = sel.decisions.filter(pl.col("origin") == "candidate")
    np.testing.assert_allclose(cand["p_adjusted"].to_numpy(), expected)
    assert abs(cand["p_adjusted"].mean() - est.share) < 0.05
    assert sel.output_share.share <= 0.05 + 1e-9
    assert sel.output_share.low <= sel.output_share.share <= sel.output_share.high


def test_expected_share_interval():
    est = expected_share(np.array([0.1, 0.2]), 4)
    assert est.share == pytest.approx(0.075)
    sd = np.sqrt(0.1 * 0.9 + 0.2 * 0.8) / 4
    assert est.high == pytest.approx(0.075 + 1.959964 * sd, rel=1e-5)
    assert est.low == 0.0  # clipped
    assert expected_share(np.array([]), 0).share == 0.0
