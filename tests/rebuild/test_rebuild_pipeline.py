"""rebuild() on real frames with the real static encoder and FAISS (no detector needed)."""

import numpy as np
import polars as pl
import pytest

from synthfilter.errors import ConfigError, SchemaError
from synthfilter.rebuild import RebuildPolicy, rebuild
from synthfilter.share import ShareCalibration
from tests.rebuild.conftest import make_texts, near_copy


@pytest.fixture
def frames(corpus_files):
    cpath, gpath = corpus_files
    return pl.read_parquet(cpath), pl.read_parquet(gpath)


def test_joint_dedup_drops_copies_of_gold(frames):
    cands, gold = frames
    result = rebuild(cands, gold, RebuildPolicy(max_synthetic=0.2), model=None, encoder="static")
    reasons = dict(zip(result.decisions["id"], result.decisions["reason"]))
    assert reasons["c120"] == "duplicate-of:g00"     # exact copy of a gold record
    assert reasons["c121"] == "duplicate-of:g01"     # light edit of a gold record
    assert reasons["c122"] == "duplicate-of:c005"    # exact duplicate among candidates, more synthetic-looking
    assert result.info["tails"]["computed"] == "joint"
    assert result.info["tails"]["rarity_against"] == "gold"


def test_training_set_columns_and_gold_unaltered(frames):
    cands, gold = frames
    result = rebuild(cands, gold, RebuildPolicy(max_synthetic=0.2), model=None, encoder="static")
    t = result.training
    assert t.columns[:2] == ["id", "text"]
    assert {"origin", "reason", "p_synthetic", "rarity", "note", "topic"} <= set(t.columns)
    head = t.slice(0, gold.height)
    assert head.select("id", "text").equals(gold.select("id", "text"))
    assert head["note"].to_list() == gold["note"].to_list()
    assert (head["origin"] == "gold").all() and head["p_synthetic"].null_count() == gold.height
    kept = result.decisions.filter(pl.col("kept"))
    assert t.height == kept.height == result.counts["kept"]
    assert t["id"].to_list() == kept["id"].to_list()
    # Expected share of the output, computed from the decisions, is under the cap.
    assert kept["p_adjusted"].sum() / kept.height <= 0.2 + 1e-9


def test_decisions_cover_every_input_row(frames):
    cands, gold = frames
    result = rebuild([cands.slice(0, 70), cands.slice(70)], gold, RebuildPolicy(), model=None,
                     encoder="static", candidate_names=["a.parquet", "b.parquet"], gold_names=["g.parquet"])
    d = result.decisions
    assert d.height == cands.height + gold.height
    assert d.group_by("input").len().sort("input").rows() == [("a.parquet", 70), ("b.parquet", 53), ("g.parquet", 20)]
    assert d.filter(pl.col("input") == "b.parquet")["row"].to_list() == list(range(53))
    assert d["reason"].null_count() == 0
    # Duplicates across the two candidate files are still found.
    reasons = dict(zip(d["id"], d["reason"]))
    assert reasons["c122"] == "duplicate-of:c005"


def test_same_inputs_same_outputs(frames):
    cands, gold = frames
    policy = RebuildPolicy(max_synthetic=0.1, seed=7)
    a = rebuild(cands, gold, policy, model=None, encoder="static")
    b = rebuild(cands, gold, policy, model=None, encoder="static")
    assert a.training.equals(b.training) and a.decisions.equals(b.decisions)


def test_calibration_is_applied(frames):
    cands, gold = frames
    rng = np.random.default_rng(0)
    cal = ShareCalibration(p_machine=rng.uniform(0.6, 1.0, 200), p_human=rng.uniform(0.0, 0.3, 200))
    result = rebuild(cands, gold, RebuildPolicy(), model=None, calibration=cal, encoder="static")
    assert result.info["calibration"] == "model"
    assert result.selection.candidate_share.method == "pacc"


def test_raw_candidates_need_a_model(frames):
    cands, gold = frames
    with pytest.raises(ConfigError, match="no column 'p_synthetic' and no model"):
        rebuild(cands.drop("p_synthetic"), gold, model=None, encoder="static")


def test_id_clash_across_files_is_refused(frames):
    cands, gold = frames
    clash = gold.with_columns(pl.Series("id", ["c000"] + gold["id"].to_list()[1:]))
    with pytest.raises(SchemaError, match="id 'c000' names different texts"):
        rebuild(cands, clash, model=None, encoder="static")


def test_same_id_same_text_is_a_duplicate_not_a_clash():
    texts = make_texts(12, seed=9)
    gold = pl.DataFrame({"text": texts[:6]})          # content-hash ids
    cands = pl.DataFrame({"text": texts[4:], "p_synthetic": [0.1] * 8})
    result = rebuild(cands, gold, RebuildPolicy(keep_rare=None), model=None, encoder="static")
    dup = result.decisions.filter(pl.col("reason").str.starts_with("duplicate-of:"))
    assert dup.height == 2 and (dup["origin"] == "candidate").all()


def test_single_scored_file_without_gold_reuses_its_tail_columns():
    texts = make_texts(10, seed=5)
    cands = pl.DataFrame({
        "id": [str(i) for i in range(10)], "text": texts, "p_synthetic": [0.1] * 10,
        "rarity": [0.5] * 9 + [0.99], "dup_cluster": [0, 0] + list(range(1, 9)),
    })
    result = rebuild(cands, None, RebuildPolicy(), model=None, encoder="static")
    assert result.info["tails"]["computed"] == "from-scores"
    reasons = result.decisions["reason"].to_list()
    assert reasons[1] == "duplicate-of:0" and reasons[9] == "protected-rare"


def test_rare_domain_is_protected_against_gold():
    common = make_texts(60, seed=11)
    # A distinct domain: different words, far from every gold record.
    vocab = [
        "invoice", "refund", "password", "mailbox", "server", "outage", "ticket", "escalation",
        "patch", "kernel", "mirror", "subscribe",
    ]
    rng = np.random.default_rng(12)
    rare = [" ".join(rng.choice(vocab, size=30)) + "." for _ in range(4)]
    gold = pl.DataFrame({"id": [f"g{i}" for i in range(40)], "text": common[:40]})
    cands = pl.DataFrame({
        "id": [f"c{i}" for i in range(24)], "text": common[40:] + rare,
        "p_synthetic": [0.02] * 20 + [0.3] * 4,
    })
    result = rebuild(cands, gold, RebuildPolicy(max_synthetic=0.5, target_size=50, keep_rare=0.95),
                     model=None, encoder="static")
    reasons = dict(zip(result.decisions["id"], result.decisions["reason"]))
    assert all(reasons[f"c{i}"] == "protected-rare" for i in range(20, 24))
    assert result.training.height == 50
    assert result.counts["by_reason"]["over-target-size"] > 0


def test_near_copy_helper_is_a_near_duplicate():
    from synthfilter.encoders import get_encoder

    t = make_texts(1, seed=3)[0]
    x = get_encoder("static").encode([t, near_copy(t)])
    assert float(x[0] @ x[1]) >= 0.95


def test_group_column_widens_the_share_intervals_and_keeps_the_same_records(frames):
    """Records grouped in documents of ten: same decisions, wider intervals over fewer resampling units."""
    cands, gold = frames
    rng = np.random.default_rng(0)
    cal = ShareCalibration(p_machine=rng.uniform(0.6, 1.0, 200), p_human=rng.uniform(0.0, 0.3, 200))
    # Documents of alike records (human ones together, machine ones together), as paragraphs of one page are.
    grouped = cands.with_columns(doc=(pl.int_range(pl.len()) // 10).cast(pl.String))
    kwargs = {"model": None, "calibration": cal, "encoder": "static"}
    by_record = rebuild(grouped, gold, RebuildPolicy(max_synthetic=0.3), **kwargs)
    by_document = rebuild(grouped, gold, RebuildPolicy(max_synthetic=0.3), group_column="doc", **kwargs)
    assert by_document.decisions.equals(by_record.decisions)
    shares = [(r.selection.candidate_share, r.selection.output_share) for r in (by_record, by_document)]
    (cand_r, out_r), (cand_d, out_d) = shares
    assert cand_d.n_documents == 13 and cand_r.n_documents is None
    assert cand_d.share == cand_r.share
    assert cand_d.high - cand_d.low > 1.5 * (cand_r.high - cand_r.low)
    assert out_d.high - out_d.low > out_r.high - out_r.low
    with pytest.raises(SchemaError, match="no group column 'url'"):
        rebuild(grouped, gold, RebuildPolicy(), group_column="url", **kwargs)
    with pytest.raises(SchemaError, match="group column 'doc' is null at row 3"):
        rebuild(grouped.with_columns(doc=pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise("doc")),
                gold, RebuildPolicy(), group_column="doc", **kwargs)


def test_rebuild_takes_pandas_and_arrow_tables(corpus_files):
    """The same records as pandas/pyarrow tables give the same selection as polars frames."""
    from synthfilter.rebuild import RebuildPolicy, rebuild

    cand_path, gold_path = corpus_files[0], corpus_files[1]
    cands, gold = pl.read_parquet(cand_path), pl.read_parquet(gold_path)
    policy = RebuildPolicy(max_synthetic=0.2)
    expected = rebuild(cands, gold, policy, model=None, encoder="static")
    got = rebuild(cands.to_pandas(), [gold.to_arrow()], policy, model=None, encoder="static")
    assert got.training.equals(expected.training)
    assert got.decisions.equals(expected.decisions)
