"""The gold-human share correction: the human side of PACC from the user's gold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from synthfilter.errors import ConfigError
from synthfilter.share import (
    CALIBRATION_SPLIT,
    GOLD_HUMAN,
    MIN_GOLD,
    ShareCalibration,
    estimate_share,
    machine_side_check,
)

ROOT = Path(__file__).resolve().parent.parent
HELDOUT = ROOT / "models" / "origin-v3" / "heldout_test.parquet"
HELDOUT_SCORES = ROOT / "tests" / "fixtures" / "heldout_scores_static.parquet"


def _calibration(rng: np.random.Generator) -> ShareCalibration:
    return ShareCalibration(p_machine=rng.beta(8, 2, 800), p_human=rng.beta(2, 8, 800), base_prior=0.5)


def test_with_gold_human_replaces_the_human_side_only():
    rng = np.random.default_rng(0)
    cal = _calibration(rng)
    gold = rng.beta(1, 12, 200)
    out = cal.with_gold_human(gold, groups=[f"d{i // 4}" for i in range(200)])
    assert out.correction == GOLD_HUMAN and out.n_gold == 200 and cal.n_gold is None
    np.testing.assert_array_equal(out.p_machine, cal.p_machine)
    np.testing.assert_array_equal(out.p_human, gold)
    assert out.base_prior == cal.base_prior and out.groups_human.max() == 49
    assert ShareCalibration.from_dict(out.to_dict()).correction == GOLD_HUMAN
    assert "correction" not in cal.to_dict()  # the shipped model's content hash reads this form


@pytest.mark.parametrize("gold", [np.full(MIN_GOLD - 1, 0.1), np.r_[np.full(30, 0.1), 1.5], np.r_[np.full(30, 0.1), np.nan]])
def test_with_gold_human_refuses_too_little_or_invalid_gold(gold):
    with pytest.raises(ConfigError):
        _calibration(np.random.default_rng(0)).with_gold_human(gold)


def test_without_gold_the_estimate_is_unchanged():
    """Pinned before the gold correction existed (origin-v3, its held-out scores)."""
    from synthfilter.origin import load_model

    model = load_model(HELDOUT.parent)
    p = pl.read_parquet(HELDOUT_SCORES).get_column("p_synthetic").to_numpy()
    est = model.estimate_share(p)
    assert (est.share, est.low, est.high) == pytest.approx((0.390021, 0.368572, 0.409757), abs=5e-7)
    assert est.correction == CALIBRATION_SPLIT and est.n_gold is None and "n_gold" not in est.to_dict()
    groups = pl.read_parquet(HELDOUT).get_column("group").to_list()
    est = model.estimate_share(p, groups=groups, seed=3)
    assert (est.low, est.high) == pytest.approx((0.349425, 0.429442), abs=5e-7)


def test_gold_corrects_a_shifted_human_domain_and_a_small_gold_widens_the_interval():
    rng = np.random.default_rng(1)
    cal = _calibration(rng)  # calibration humans: mean 0.2
    truth = 0.3
    human = rng.beta(1, 12, 1400)  # the corpus's humans score lower (mean 0.077)
    corpus = np.r_[human, rng.beta(8, 2, 600)]
    plain = estimate_share(corpus, cal)
    big = estimate_share(corpus, cal.with_gold_human(rng.beta(1, 12, 2000)))
    small = estimate_share(corpus, cal.with_gold_human(rng.beta(1, 12, 30)))
    assert not plain.low <= truth <= plain.high and plain.share < truth - 0.05
    assert abs(big.share - truth) < 0.03 and big.low <= truth <= big.high
    assert (small.high - small.low) > 1.5 * (big.high - big.low)
    assert big.correction == GOLD_HUMAN and big.n_gold == 2000 and big.to_dict()["n_gold"] == 2000


def test_machine_side_check_flags_a_generator_the_calibration_does_not_know():
    """Machine text scoring about 0.5 (an unseen generator) makes gold-human read low; the mixture says so."""
    rng = np.random.default_rng(4)
    cal = _calibration(rng)
    gold = rng.beta(1, 12, 500)
    humans = rng.beta(1, 12, 1400)
    unseen = np.r_[humans, rng.beta(4, 4, 600)]
    seen = np.r_[humans, rng.beta(8, 2, 600)]
    for corpus, expected in ((unseen, True), (seen, False)):
        estimate = estimate_share(corpus, cal.with_gold_human(gold))
        check = machine_side_check(corpus, estimate, cal, gold)
        mixture = check["gold_mixture"]
        assert check["disagrees"] is expected and ("warning" in check) is expected
        assert mixture["low"] <= mixture["share"] <= mixture["high"]
    assert estimate_share(unseen, cal.with_gold_human(gold)).high < 0.3  # the truth, missed by gold-human
    assert check["gold_mixture"]["low"] <= 0.3 <= check["gold_mixture"]["high"]  # (seen) the mixture covers it


@pytest.fixture(scope="module")
def chitchat_mix():
    """A real mix at true share 0.3: chitchat humans, held-out machine text; gold from other conversations."""
    pytest.importorskip("chitchat_dataset", reason="pip install 'synthfilter[data]'")
    from synthfilter.data.chitchat import load_chitchat

    chats = load_chitchat()
    groups = np.array(sorted(set(chats.get_column("group").to_list())))
    np.random.default_rng(0).shuffle(groups)
    gold = chats.filter(pl.col("group").is_in(groups[:400].tolist())).sample(500, seed=0)
    human = chats.filter(pl.col("group").is_in(groups[400:].tolist())).sample(700, seed=1)
    machine = pl.read_parquet(HELDOUT).filter(pl.col("label") == 1).sample(300, seed=2)
    corpus = pl.concat([human.select("text"), machine.select("text")])
    return corpus, gold.select("text")


def test_score_with_a_gold_reference_from_the_shifted_domain_is_closer_to_the_truth(chitchat_mix):
    from synthfilter.scoring import score_with_report

    corpus, gold = chitchat_mix
    plain_info = score_with_report(corpus, encoder="static", stages=["origin"]).info["origin"]
    plain = plain_info["synthetic_share"]
    with_gold = score_with_report(corpus, encoder="static", stages=["origin"], reference=gold)
    share = with_gold.info["origin"]["synthetic_share"]
    assert plain["correction"] == CALIBRATION_SPLIT and share["correction"] == GOLD_HUMAN
    assert share["n_gold"] == gold.height
    assert abs(share["share"] - 0.3) < abs(plain["share"] - 0.3)
    assert share["low"] <= 0.3 <= share["high"]
    assert plain["naive_mean"] == share["naive_mean"]  # the corpus's own scores do not change
    check = with_gold.info["origin"]["share_check"]  # generators the detector knows: no disagreement
    assert check["disagrees"] is False and "warning" not in check and "share_check" not in plain_info
    assert check["gold_mixture"]["low"] <= 0.3 <= check["gold_mixture"]["high"]


def test_a_reference_smaller_than_min_gold_keeps_the_calibration_split(chitchat_mix):
    from synthfilter.scoring import score_with_report

    corpus, gold = chitchat_mix
    info = score_with_report(corpus.head(200), encoder="static", stages=["origin"], reference=gold.head(MIN_GOLD - 1)).info
    assert info["origin"]["synthetic_share"]["correction"] == CALIBRATION_SPLIT
    assert "fewer than" in info["origin"]["share_correction_note"]


def test_rebuild_with_gold_takes_the_human_side_from_it(chitchat_mix, tmp_path, monkeypatch):
    from synthfilter.rebuild import RebuildPolicy, rebuild

    monkeypatch.setenv("SYNTHFILTER_CACHE", str(tmp_path / "cache"))
    corpus, gold = chitchat_mix
    cands, gold = corpus.sample(400, seed=3), gold.head(200)
    policy = RebuildPolicy(max_synthetic=0.5, dedup=False, keep_rare=None)
    with_gold = rebuild(cands, gold, policy, encoder="static")
    without = rebuild(cands, gold, policy, encoder="static", gold_correction=False)
    assert with_gold.info["share_correction"] == {"correction": GOLD_HUMAN, "n_gold": 200}
    assert with_gold.selection.candidate_share.correction == GOLD_HUMAN and with_gold.selection.candidate_share.n_gold == 200
    assert without.selection.candidate_share.correction == CALIBRATION_SPLIT
    assert with_gold.selection.candidate_share.share > without.selection.candidate_share.share  # chitchat humans score below m0
    assert with_gold.info["share_check"]["disagrees"] is False and "share_check" not in without.info


def test_cli_manifests_name_the_correction_and_the_gold_size(chitchat_mix, tmp_path):
    import json

    from tests.conftest import run_cli

    corpus, gold = chitchat_mix
    corpus.head(300).write_parquet(tmp_path / "corpus.parquet")
    gold.head(120).write_parquet(tmp_path / "gold.parquet")
    out = tmp_path / "corpus.scores.parquet"
    result = run_cli("score", tmp_path / "corpus.parquet", "--encoder", "static", "--reference", tmp_path / "gold.parquet",
                     "--keep", "text", "-o", out)
    assert result.exit_code == 0, result.output
    share = json.loads((tmp_path / "corpus.scores.manifest.json").read_text())["origin"]["synthetic_share"]
    assert share["correction"] == GOLD_HUMAN and share["n_gold"] == 120
    result = run_cli("rebuild", out, "--gold", tmp_path / "gold.parquet", "--encoder", "static",
                     "--max-synthetic", "0.5", "-o", tmp_path / "train.parquet")
    assert result.exit_code == 0, result.output
    manifest = json.loads(next(tmp_path.glob("train*manifest.json")).read_text())
    assert manifest["synthetic_share"]["candidates"]["correction"] == GOLD_HUMAN
    assert manifest["synthetic_share"]["candidates"]["n_gold"] == 120
    check = manifest["synthetic_share"]["check"]  # the gold-human estimate checked against the gold-mixture one
    assert check["disagrees"] is False and 0 <= check["gold_mixture"]["low"] <= check["gold_mixture"]["high"] <= 1


def test_share_correction_chooses_the_correction_and_a_gold_one_needs_gold(chitchat_mix):
    from synthfilter.scoring import score_with_report

    corpus, gold = chitchat_mix
    corpus = corpus.sample(400, seed=4)
    shares = {c: score_with_report(corpus, encoder="static", stages=["origin"], reference=gold,
                                   share_correction=c).info["origin"]["synthetic_share"]
              for c in ("auto", "calibration-split", "gold-mixture")}
    assert shares["auto"]["correction"] == GOLD_HUMAN and shares["calibration-split"]["correction"] == CALIBRATION_SPLIT
    mixture = shares["gold-mixture"]
    assert mixture["correction"] == "gold-mixture" and mixture["n_gold"] == gold.height and mixture["method"] == "bbe"
    assert 0 <= mixture["low"] <= mixture["share"] <= mixture["high"] <= 1 and "threshold" in mixture
    with pytest.raises(ConfigError, match="needs gold"):
        score_with_report(corpus, encoder="static", stages=["origin"], share_correction="gold-mixture")
    with pytest.raises(ConfigError, match=f"at least {MIN_GOLD}"):
        score_with_report(corpus, encoder="static", stages=["origin"], reference=gold.head(5),
                          share_correction="gold-human")
    with pytest.raises(ConfigError, match="must be one of"):
        score_with_report(corpus, encoder="static", stages=["origin"], share_correction="gold")


def test_a_reused_run_does_not_answer_for_another_share_correction(chitchat_mix, tmp_path, monkeypatch):
    from synthfilter.scoring import score_with_report

    monkeypatch.setenv("SYNTHFILTER_CACHE", str(tmp_path / "cache"))
    corpus, gold = chitchat_mix
    corpus = corpus.head(150)
    first = score_with_report(corpus, encoder="static", stages=["origin"], reference=gold, reuse=True)
    again = score_with_report(corpus, encoder="static", stages=["origin"], reference=gold, reuse=True)
    other = score_with_report(corpus, encoder="static", stages=["origin"], reference=gold, reuse=True,
                              share_correction="gold-mixture")
    assert "reused_run" in again.info and "reused_run" not in other.info
    assert first.info["origin"]["synthetic_share"]["correction"] == GOLD_HUMAN
    assert other.info["origin"]["synthetic_share"]["correction"] == "gold-mixture"


def test_cli_share_correction(chitchat_mix, tmp_path):
    import json

    from tests.conftest import run_cli

    corpus, gold = chitchat_mix
    corpus.head(300).write_parquet(tmp_path / "corpus.parquet")
    gold.head(120).write_parquet(tmp_path / "gold.parquet")
    out = tmp_path / "corpus.scores.parquet"
    result = run_cli("score", tmp_path / "corpus.parquet", "--encoder", "static", "--share-correction", "gold-mixture",
                     "-o", out)
    assert result.exit_code != 0 and "needs gold human records" in result.output and not out.exists()
    result = run_cli("score", tmp_path / "corpus.parquet", "--encoder", "static", "--reference",
                     tmp_path / "gold.parquet", "--share-correction", "gold-mixture", "--keep", "text", "-o", out)
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "corpus.scores.manifest.json").read_text())
    assert manifest["origin"]["synthetic_share"]["correction"] == "gold-mixture"
    assert manifest["parameters"]["share_correction"] == "gold-mixture"
    result = run_cli("rebuild", out, "--gold", tmp_path / "gold.parquet", "--encoder", "static", "--share-correction",
                     "gold-mixture", "--max-synthetic", "0.5", "-o", tmp_path / "train.parquet")
    assert result.exit_code == 0, result.output
    manifest = json.loads(next(tmp_path.glob("train*manifest.json")).read_text())
    assert manifest["synthetic_share"]["candidates"]["correction"] == "gold-mixture"
    result = run_cli("rebuild", out, "--encoder", "static", "--share-correction", "gold-human", "--dry-run")
    assert result.exit_code != 0 and "needs gold human records" in result.output
