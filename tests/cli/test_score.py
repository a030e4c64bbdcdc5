from __future__ import annotations

import json

import polars as pl
import pytest

from tests.conftest import run_cli as run


@pytest.fixture()
def corpus(tmp_path, tails_sample):
    path = tmp_path / "corpus.parquet"
    tails_sample.head(80).select("id", "text", "category").write_parquet(path)
    return path


def test_score_writes_scores_and_manifest(corpus):
    before = corpus.read_bytes()
    result = run("score", corpus, "--model", "none", "--encoder", "static", "--keep", "category", "--quiet")
    assert result.exit_code == 0, result.output
    scores = pl.read_parquet(corpus.with_name("corpus.scores.parquet"))
    assert scores.height == 80
    assert scores.columns == ["id", "category", "knn_distance", "rarity", "dup_cluster", "is_near_duplicate"]
    assert scores["id"].to_list() == pl.read_parquet(corpus)["id"].to_list()
    manifest = json.loads(corpus.with_name("corpus.scores.manifest.json").read_text())
    assert manifest["command"] == "score"
    assert manifest["inputs"][0]["sha256"] and manifest["parameters"]["seed"] == 0
    assert manifest["encoder"].startswith("static:") and manifest["counts"]["records"] == 80
    assert corpus.read_bytes() == before


def test_same_input_and_seed_give_byte_identical_scores(corpus, tmp_path):
    outs = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    for out in outs:
        assert run("score", corpus, "--model", "none", "--encoder", "static", "-o", out, "--quiet").exit_code == 0
    assert outs[0].read_bytes() == outs[1].read_bytes()


def _write(path, frame):
    frame.write_parquet(path)
    return path


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (lambda p: _write(p, pl.DataFrame({"body": ["x", "y"]})), [], "no column 'text'"),
        (lambda p: _write(p, pl.DataFrame({"text": ["x", None]})), [], "null at row 1"),
        (lambda p: _write(p, pl.DataFrame({"text": ["x", ""]})), [], "empty at row 1"),
        (lambda p: _write(p, pl.DataFrame({"text": ["x", "y"], "id": ["a", "a"]})), [], "repeats ids"),
        (lambda p: _write(p, pl.DataFrame({"text": [1, 2]})), [], "not text"),
        ((lambda p: (p.write_bytes(b"PAR1garbage"), p)[1]), [], "cannot read as PARQUET"),
        (lambda p: p, [], "no such file"),
    ],
)
def test_bad_input_gives_one_line_error_and_no_output(tmp_path, make, args, message):
    path = make(tmp_path / "bad.parquet")
    result = run("score", path, "--model", "none", "--encoder", "static", *args)
    assert result.exit_code == 2
    assert message in result.output
    assert result.output.strip().count("\n") == 0
    assert not list(tmp_path.glob("*.scores.*"))


def test_refuses_to_overwrite_input_and_unwritable_paths(corpus, tmp_path):
    result = run("score", corpus, "-o", corpus, "--model", "none")
    assert result.exit_code == 2 and "overwrite an input" in result.output
    result = run("score", corpus, "-o", tmp_path / "missing" / "x.parquet", "--model", "none")
    assert result.exit_code == 2 and "does not exist" in result.output


def test_text_near_duplicates_are_joined_unless_turned_off(tmp_path, tails_sample):
    texts = [t for t in tails_sample["text"].to_list() if len(t.split()) >= 40][:40]
    words = texts[0].split(" ")
    texts.append(" ".join(words[:10] + words[11:]).upper())  # one word dropped, all upper case
    path = tmp_path / "c.jsonl"
    pl.DataFrame({"id": [f"r{i}" for i in range(len(texts))], "text": texts}).write_ndjson(path)
    common = ("score", path, "--model", "none", "--encoder", "static", "--dup-threshold", "1.0", "--quiet")
    assert run(*common, "-o", tmp_path / "on.parquet").exit_code == 0
    assert run(*common, "--text-dup-threshold", "0", "-o", tmp_path / "off.parquet").exit_code == 0
    on, off = pl.read_parquet(tmp_path / "on.parquet"), pl.read_parquet(tmp_path / "off.parquet")
    assert on["dup_cluster"][40] == on["dup_cluster"][0] and on["is_near_duplicate"].sum() == 1
    assert off["dup_cluster"][40] != off["dup_cluster"][0] and off["is_near_duplicate"].sum() == 0
    manifest = json.loads((tmp_path / "off.manifest.json").read_text())
    assert manifest["parameters"]["text_dup_threshold"] == 0.0


def test_help_lists_options():
    result = run("score", "--help")
    assert result.exit_code == 0
    for option in ("--text-column", "--id-column", "--encoder", "--reference", "--model", "--seed", "--keep",
                   "--dup-threshold", "--text-dup-threshold"):
        assert option in result.output


def test_default_run_uses_the_shipped_detector_offline(tmp_path, monkeypatch):
    # The bundled example corpus, scored with every default: the packaged MiniLM and the shipped model.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from tests.conftest import FIXTURES

    corpus = tmp_path / "mixed.parquet"
    corpus.write_bytes((FIXTURES.parent.parent / "examples" / "mixed_corpus.parquet").read_bytes())
    result = run("score", corpus, "--keep", "label", "--quiet")
    assert result.exit_code == 0, result.output
    scores = pl.read_parquet(tmp_path / "mixed.scores.parquet")
    source = pl.read_parquet(corpus)
    assert scores.height == source.height
    assert {"p_synthetic", "synthetic_score", "rarity", "dup_cluster", "is_near_duplicate"} <= set(scores.columns)
    assert scores["p_synthetic"].is_between(0, 1).all()
    # The score ranks exactly as p_synthetic does (p is a monotone map of it).
    ordered = scores.sort("synthetic_score")["p_synthetic"].to_numpy()
    assert (ordered[1:] >= ordered[:-1]).all()
    # Machine-written records score higher on average than human ones.
    by_label = scores.group_by("label").agg(pl.col("p_synthetic").mean()).sort("label")["p_synthetic"].to_list()
    assert by_label[1] > by_label[0] + 0.3
    # The 20 planted copies are flagged.
    assert scores["is_near_duplicate"].sum() >= 20
    manifest = json.loads((tmp_path / "mixed.scores.manifest.json").read_text())
    share = manifest["origin"]["synthetic_share"]
    true_share = source["label"].mean()
    assert share["low"] - 0.05 <= true_share <= share["high"] + 0.05
    assert manifest["origin"]["model"].startswith("origin-v4@")
    assert manifest["encoder"].startswith("minilm:")


def test_group_column_makes_the_share_interval_resample_documents(tmp_path):
    """Real held-out paragraphs with their document ids: the interval counts documents, and is wider."""
    from tests.conftest import FIXTURES

    corpus = tmp_path / "heldout.parquet"
    pl.read_parquet(FIXTURES / "origin_sample.parquet").select("id", "text", "group").write_parquet(corpus)
    shares = {}
    for name, args in (("records", []), ("documents", ["--group-column", "group"])):
        out = tmp_path / f"{name}.parquet"
        result = run("score", corpus, "--encoder", "static", "-o", out, "--quiet", *args)
        assert result.exit_code == 0, result.output
        manifest = json.loads((tmp_path / f"{name}.manifest.json").read_text())
        shares[name] = manifest["origin"]["synthetic_share"]
    n_docs = pl.read_parquet(corpus)["group"].n_unique()
    assert shares["documents"]["n_documents"] == n_docs and shares["records"]["n_documents"] is None
    assert shares["documents"]["share"] == shares["records"]["share"]
    width = {k: v["high"] - v["low"] for k, v in shares.items()}
    assert width["documents"] > width["records"]
    result = run("score", corpus, "--encoder", "static", "--model", "none", "--group-column", "doc", "--quiet")
    assert result.exit_code == 2 and "no group column 'doc'" in result.output
