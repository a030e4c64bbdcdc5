"""The diversity monitor on real text: alarms for machine text and lost tails, silence for fresh human text."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest
from sklearn.base import clone

from synthfilter.errors import ConfigError, InputError
from synthfilter.monitor import METRIC_NAMES, METRICS, DiversityMonitor, batch_metrics
from synthfilter.monitor.neighbours import SupportSet

LOW_IS_BAD = {spec.name for spec in METRICS if spec.bad == "low"}


def minus_rarest(texts: list[str], embeddings: np.ndarray, share: float = 0.2, k: int = 5):
    """The reference without its rarest ``share`` (largest leave-one-out k-NN radius)."""
    radii = SupportSet(embeddings, k).radii_sq
    keep = np.sort(np.argsort(radii, kind="stable")[: round((1 - share) * len(texts))])
    return [texts[i] for i in keep], embeddings[keep]


@pytest.fixture(scope="module")
def whole_reference(human, machine, static_encoder):
    """Static-encoder monitor on every human record, with the machine batch and the tail-less batch."""
    texts = human["text"].to_list()
    emb = static_encoder.encode(texts)
    monitor = DiversityMonitor(encoder=static_encoder, origin_model=None, seed=0)
    monitor.fit(texts, emb, groups=human["group"].to_list(), name="human")
    minus_texts, minus_emb = minus_rarest(texts, emb)
    results = monitor.check_many([
        {"texts": machine["text"].to_list(), "name": "machine"},
        {"texts": minus_texts, "embeddings": minus_emb, "name": "minus-rarest-20"},
    ])
    return monitor, {r.name: r for r in results}


def test_machine_only_batch_triggers_narrowing(whole_reference, mixed_sources):
    if not mixed_sources:
        pytest.skip("needs the mixed-source origin fixture: ChatGPT text is not narrower than ShareGPT prompts alone")
    result = whole_reference[1]["machine"]
    assert "narrowing" in result.alarm_groups
    # What narrows is the wording: lexical variety falls below every reference sample.
    fired = {a.metric for a in result.alarms if a.group == "narrowing"}
    assert fired & {"distinct_1", "distinct_2", "type_token_ratio"}
    assert result.values["distinct_2"] < result.null["distinct_2"].q05


def test_machine_only_batch_is_farther_from_the_reference_than_any_reference_sample(whole_reference):
    result = whole_reference[1]["machine"]
    assert result.values["mmd_rbf"] > result.null["mmd_rbf"].q95
    assert result.values["frechet_distance"] > result.null["frechet_distance"].q95


def test_reference_without_its_rarest_fifth_triggers_tail_alarm(whole_reference):
    result = whole_reference[1]["minus-rarest-20"]
    assert "tail" in result.alarm_groups
    assert result.values["tail_mass"] < result.null["tail_mass"].q05
    assert result.values["tail_reach"] < result.null["tail_reach"].bound
    assert result.values["reference_overlap"] == 1.0  # every record is a reference record
    assert result.n == round(0.8 * len(whole_reference[0].reference_))


def test_fresh_human_batch_from_the_same_sources_is_healthy(human_split, static_encoder):
    reference, fresh = human_split
    monitor = DiversityMonitor(encoder=static_encoder, origin_model=None, seed=0)
    monitor.fit(reference["text"].to_list(), groups=reference["group"].to_list())
    result = monitor.check(fresh["text"].to_list(), name="fresh")
    assert result.status == "ok", [a.message for a in result.alarms]
    bad_side = [(-s.z if name in LOW_IS_BAD else s.z) for name, s in result.null.items() if s.z is not None]
    assert max(bad_side) < 4
    assert set(reference["group"]).isdisjoint(fresh["group"])


def test_default_minilm_path_on_real_text(human, machine, mixed_sources):
    monitor = DiversityMonitor(origin_model=None, seed=0)
    texts = human["text"].to_list()
    monitor.fit(texts, groups=human["group"].to_list())
    assert monitor.encoder_id_.startswith("minilm:")
    minus_texts, _ = minus_rarest(texts, monitor.reference_.embeddings)
    machine_result, minus_result = monitor.check_many([
        {"texts": machine["text"].to_list(), "name": "machine"},
        {"texts": minus_texts, "name": "minus"},
    ])
    assert machine_result.values["mmd_rbf"] > machine_result.null["mmd_rbf"].q95
    if mixed_sources:
        assert "narrowing" in machine_result.alarm_groups
    assert "tail" in minus_result.alarm_groups


# --------------------------------------------------------------------------- known answers
def test_batch_metrics_identical_batch():
    x = np.random.default_rng(0).normal(size=(60, 16))
    m = batch_metrics(x, x.copy())
    assert m["precision"] == m["recall"] == m["tail_recall"] == 1.0
    assert m["mmd_rbf"] == 0.0 and m["frechet_distance"] == pytest.approx(0.0, abs=1e-6)
    assert m["tail_mass"] == pytest.approx(0.1, abs=0.02)  # the batch is the reference: its own decile


def test_batch_metrics_single_repeated_record():
    texts = ["The same sentence, again and again."] * 12
    x = np.tile(np.random.default_rng(1).normal(size=(1, 8)), (12, 1))
    m = batch_metrics(x, texts=texts)
    assert m["mean_cosine_distance"] == 0.0 and m["covariance_trace"] == pytest.approx(0.0, abs=1e-12)
    assert m["vendi_score"] == pytest.approx(1.0)
    assert m["participation_ratio"] == 0.0 and m["effective_rank"] == 0.0
    assert m["near_duplicate_rate"] == pytest.approx(11 / 12)
    assert m["distinct_1"] == pytest.approx(5 / 72) and m["length_cv"] == 0.0
    assert m["recall"] is None and m["synthetic_share"] is None


def test_batch_metrics_orthogonal_clusters():
    x = np.repeat(np.eye(10)[:4], 6, axis=0)
    m = batch_metrics(x)
    assert m["vendi_score"] == pytest.approx(4.0)
    assert m["participation_ratio"] == pytest.approx(3.0)
    assert m["near_duplicate_rate"] == pytest.approx(20 / 24)


# --------------------------------------------------------------------------- behaviour
@pytest.fixture(scope="module")
def small(human_split, static_encoder):
    reference, fresh = human_split
    ref_emb = static_encoder.encode(reference["text"].to_list())
    fresh_emb = static_encoder.encode(fresh["text"].to_list())
    return reference, fresh, ref_emb, fresh_emb


def test_same_seed_same_result_and_batches_do_not_interact(small, static_encoder):
    reference, fresh, ref_emb, fresh_emb = small
    runs = []
    for extra in ([], [{"embeddings": ref_emb[:50], "texts": reference["text"].to_list()[:50], "name": "x"}]):
        monitor = DiversityMonitor(encoder=static_encoder, origin_model=None, seed=3, n_null=10)
        monitor.fit(reference["text"].to_list(), ref_emb, groups=reference["group"].to_list())
        results = monitor.check_many([{"texts": fresh["text"].to_list(), "embeddings": fresh_emb}, *extra])
        runs.append(results[0].to_dict())
    assert runs[0] == runs[1]
    other = DiversityMonitor(encoder=static_encoder, origin_model=None, seed=4, n_null=10)
    other.fit(reference["text"].to_list(), ref_emb, groups=reference["group"].to_list())
    assert other.check(fresh["text"].to_list(), fresh_emb).to_dict()["null"] != runs[0]["null"]


def test_thresholds_override_the_null_rule(small, static_encoder):
    reference, fresh, ref_emb, fresh_emb = small
    monitor = DiversityMonitor(encoder=static_encoder, origin_model=None, n_null=10,
                               thresholds={"vendi_score": 1e6, "mmd_rbf": None})
    monitor.fit(reference["text"].to_list(), ref_emb)
    result = monitor.check(fresh["text"].to_list(), fresh_emb)
    assert [a.metric for a in result.alarms] == ["vendi_score"]
    assert result.null["vendi_score"].source == "override" and result.null["mmd_rbf"].bound is None
    assert "user threshold" in result.alarms[0].message
    with pytest.raises(ConfigError, match="unknown metric"):
        DiversityMonitor(thresholds={"vendy": 1.0}).fit(embeddings=ref_emb)
    with pytest.raises(ConfigError, match="informational"):
        DiversityMonitor(thresholds={"length_mean": 1.0}).fit(embeddings=ref_emb)


def test_sigma_controls_sensitivity(small, static_encoder):
    reference, fresh, ref_emb, fresh_emb = small
    loose = DiversityMonitor(encoder=static_encoder, origin_model=None, n_null=10, sigma=1e-3)
    loose.fit(reference["text"].to_list(), ref_emb)
    result = loose.check(fresh["text"].to_list(), fresh_emb)
    # With a tiny margin, about half the metrics land on their bad side by chance.
    assert result.alarms and all(
        (a.value < a.bound) if a.bad == "low" else (a.value > a.bound) for a in result.alarms)


def test_scorer_callable_gives_synthetic_share_and_alarm(small, machine, static_encoder):
    from synthfilter.origin import OriginScorer

    reference, fresh, ref_emb, _ = small
    train = pl.concat([fresh, machine.head(len(machine) // 2)])
    scorer = OriginScorer(encoder="static", use_char_ngrams=False, seed=0).fit(
        train["text"].to_list(), train["label"].to_numpy())
    monitor = DiversityMonitor(encoder=static_encoder, n_null=10, origin_model=scorer)
    monitor.fit(reference["text"].to_list(), ref_emb)
    held_out = machine.tail(len(machine) - len(machine) // 2)["text"].to_list()
    result = monitor.check(held_out, name="machine")
    share = result.values["synthetic_share"]
    assert share is not None and result.values["synthetic_share_low"] <= share <= result.values["synthetic_share_high"]
    assert share > 0.5 and share > result.null["synthetic_share"].q95
    assert "synthetic" in result.alarm_groups

    calls = []
    custom = DiversityMonitor(encoder=static_encoder, n_null=5,
                              p_synthetic=lambda texts: calls.append(len(texts)) or scorer.predict_proba(texts)[:, 1],
                              share_estimator=lambda p: (float(np.median(p)), 0.0, 1.0))
    custom.fit(reference["text"].to_list(), ref_emb)
    out = custom.check(held_out)
    assert out.values["synthetic_share_low"] == 0.0 and calls == [len(reference), len(held_out)]


def test_missing_origin_model_leaves_a_note(small, static_encoder, monkeypatch, tmp_path):
    monkeypatch.setenv("SYNTHFILTER_MODEL", str(tmp_path / "no-model"))
    reference, fresh, ref_emb, fresh_emb = small
    monitor = DiversityMonitor(encoder=static_encoder, n_null=5).fit(reference["text"].to_list(), ref_emb)
    result = monitor.check(fresh["text"].to_list(), fresh_emb)
    assert result.values["synthetic_share"] is None
    assert any("synthetic_share not computed" in note for note in result.notes)


def test_large_batch_is_subsampled_to_half_the_reference(small, static_encoder):
    reference, _, ref_emb, _ = small
    monitor = DiversityMonitor(encoder=static_encoder, origin_model=None, n_null=5)
    monitor.fit(reference["text"].to_list(), ref_emb)
    result = monitor.check(reference["text"].to_list(), ref_emb)
    assert result.n == len(reference) and result.n_compared == len(reference) // 2
    assert any("subsampled" in note for note in result.notes)
    assert result.status == "ok"


def test_run_serialises_to_strict_json_and_one_row_per_batch(small, static_encoder):
    reference, fresh, ref_emb, fresh_emb = small
    monitor = DiversityMonitor(encoder=static_encoder, origin_model=None, n_null=5)
    monitor.fit(reference["text"].to_list(), ref_emb)
    run = monitor.run([{"texts": fresh["text"].to_list(), "embeddings": fresh_emb, "name": "b1"},
                       {"embeddings": ref_emb[:40], "name": "b2"}])
    data = json.loads(run.to_json())
    assert data["schema"] == "synthfilter.monitor/1"
    assert [b["name"] for b in data["batches"]] == ["b1", "b2"]
    assert [m["name"] for m in data["metrics"]] == list(METRIC_NAMES)
    assert data["batches"][1]["values"]["distinct_1"] is None  # no texts
    assert len(data["reference"]["projection"]) == min(600, len(reference))
    frame = run.to_frame()
    assert frame["batch"].to_list() == ["b1", "b2"] and frame.height == 2
    for spec in METRICS:
        assert spec.name in frame.columns and spec.description and spec.value_range


def test_bad_input_is_refused(small, static_encoder):
    _, _, ref_emb, _ = small
    with pytest.raises(InputError, match="at least"):
        DiversityMonitor(encoder=static_encoder).fit(embeddings=ref_emb[:10])
    with pytest.raises(InputError, match="groups"):
        DiversityMonitor(encoder=static_encoder).fit(embeddings=ref_emb, groups=["a"] * 3)
    bad = ref_emb.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        DiversityMonitor(encoder=static_encoder).fit(embeddings=bad)
    with pytest.raises(ConfigError, match="not fitted"):
        DiversityMonitor().check(embeddings=ref_emb)
    monitor = DiversityMonitor(encoder=static_encoder, origin_model=None, n_null=5).fit(embeddings=ref_emb)
    with pytest.raises(InputError, match="dimensions"):
        monitor.check(embeddings=np.ones((20, 3)))
    with pytest.raises(InputError, match="records"):
        monitor.check(embeddings=ref_emb[:4])
    with pytest.raises(InputError, match="one group holds"):
        DiversityMonitor(encoder=static_encoder).fit(embeddings=ref_emb, groups=["g"] * len(ref_emb))
    with pytest.raises(ConfigError, match="n_null"):
        DiversityMonitor(n_null=2).fit(embeddings=ref_emb)


def test_estimator_contract():
    monitor = DiversityMonitor(k=7, sigma=3.0, seed=5)
    assert monitor.get_params()["k"] == 7
    twin = clone(monitor)
    assert twin.get_params() == monitor.get_params() and not hasattr(twin, "reference_")
    assert monitor.set_params(sigma=2.0).sigma == 2.0
    with pytest.raises(ConfigError):
        monitor.set_params(bogus=1)
    assert not math.isnan(monitor.sigma)


def test_shipped_origin_model_is_used_by_default(human_split, machine, static_encoder):
    from synthfilter.origin import default_model_path

    if not (default_model_path() / "model.json").is_file():
        pytest.skip("no shipped origin model in this checkout")
    reference, fresh = human_split
    monitor = DiversityMonitor(encoder=static_encoder, n_null=10, seed=0)
    monitor.fit(reference["text"].to_list(), groups=reference["group"].to_list())
    assert monitor.origin_.available and monitor.origin_.source != "none"
    human_result, machine_result = monitor.check_many([
        {"texts": fresh["text"].to_list(), "name": "fresh"},
        {"texts": machine["text"].to_list(), "name": "machine"},
    ])
    assert "synthetic" not in human_result.alarm_groups
    assert "synthetic" in machine_result.alarm_groups
    assert machine_result.values["synthetic_share_low"] > human_result.values["synthetic_share_high"]
