"""The on-disk caches: the generic store, the detector's result cache, remembered hashes.

Subprocesses are real: a run killed with SIGKILL, two runs sharing one cache,
and the command line's warnings and errors.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from synthfilter.cache import (
    ArrayStore,
    CachedDetector,
    cached_rows,
    file_sha256,
    remembered_digest,
    text_key,
)
from synthfilter.encoders import CachedEncoder, get_encoder

ROOT = Path(__file__).resolve().parent.parent
HELDOUT = ROOT / "models" / "origin-v3" / "heldout_test.parquet"
#: The ``synthfilter`` command in a fresh interpreter.
CLI = [sys.executable, "-c", "from synthfilter.cli import run; run()"]


def _env(cache: Path) -> dict[str, str]:
    env = dict(os.environ, SYNTHFILTER_CACHE=str(cache), PYTHONPATH=str(ROOT))
    env.pop("SYNTHFILTER_MODEL", None)
    return env


def _cli(*args, cache: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True,
                          text=True, env=_env(cache), cwd=ROOT, timeout=timeout)


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """Real held-out paragraphs."""
    return pl.read_parquet(HELDOUT)["text"].to_list()


# ------------------------------------------------------------------------------ the store
def test_store_round_trips_and_ignores_bad_entries(tmp_path):
    store = ArrayStore(tmp_path / "s.sqlite", width=3)
    keys = [text_key(t) for t in ("a", "b", "c")]
    store.store(keys, np.arange(9, dtype=np.float32).reshape(3, 3))
    store.close()
    con = sqlite3.connect(tmp_path / "s.sqlite")
    with con:  # a wrong-width row and a NaN row, as an older or damaged run might leave
        con.execute("UPDATE rows SET value = ? WHERE key = ?", (np.zeros(5, np.float32).tobytes(), keys[1]))
        con.execute("UPDATE rows SET value = ? WHERE key = ?", (np.full(3, np.nan, np.float32).tobytes(), keys[2]))
    con.close()
    found = store.lookup(keys)
    assert set(found) == {keys[0]}
    np.testing.assert_array_equal(found[keys[0]], [0, 1, 2])
    calls = []
    rows, hits, misses = cached_rows(["a", "b", "c", "b"], store,
                                     lambda part: calls.extend(part) or np.ones((len(part), 3)))
    assert calls == ["b", "c"] and (hits, misses) == (1, 2)  # the bad entries are recomputed, once each
    np.testing.assert_array_equal(rows[1:], np.ones((3, 3)))
    assert set(store.lookup(keys)) == set(keys)  # ... and overwritten
    with pytest.raises(ValueError, match="4 values"):
        store.store(keys[:1], np.zeros((1, 4)))


def test_lookup_reads_the_same_rows_key_by_key_and_by_scanning_the_table(tmp_path):
    """A few keys of a large store are looked up one by one, most of them by one pass: same rows, same misses."""
    store = ArrayStore(tmp_path / "s.sqlite", width=2)
    keys = [text_key(str(i)) for i in range(300)]
    store.store(keys, np.arange(600, dtype=np.float32).reshape(300, 2))
    store.store([keys[7]], np.full((1, 2), np.inf, dtype=np.float32))  # a non-finite row is left out
    absent = [text_key("absent")]
    few = keys[:10] + absent  # 300 rows > 2 x 11 keys: key by key
    most = keys[:250] + absent  # 300 rows <= 2 x 251 keys: one pass
    for asked in (few, most):
        found = store.lookup(asked)
        assert set(found) == set(asked[:-1]) - {keys[7]}
        for key in found:
            i = keys.index(key)
            np.testing.assert_array_equal(found[key], [2 * i, 2 * i + 1])


def test_a_wrong_length_vector_in_the_embedding_cache_is_recomputed(tmp_path):
    """Item: a cache holding a wrong-length vector crashed every later run until deleted by hand."""
    base = get_encoder("static", cache=False)
    cached = CachedEncoder(base, tmp_path)
    texts = ["one paragraph of text", "another paragraph"]
    expected = base.encode(texts)
    cached.encode(texts)
    con = sqlite3.connect(cached.path)
    with con:
        con.execute("UPDATE rows SET value = ? WHERE key = ?", (b"\x00" * 12, text_key(texts[0])))
    con.close()
    np.testing.assert_array_equal(cached.encode(texts), expected)
    assert (cached.hits, cached.misses) == (1, 1)
    np.testing.assert_array_equal(cached.encode(texts), expected)
    assert cached.misses == 0


def test_an_unusable_cache_warns_once_and_the_run_goes_on(tmp_path, capsys):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    store = ArrayStore(not_a_folder / "s.sqlite", width=2)
    assert store.lookup([b"k"]) == {}
    store.store([b"k"], np.zeros((1, 2)))
    assert not store.usable
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"this is not a database" * 100)
    rows, hits, misses = cached_rows(["x", "y"], ArrayStore(corrupt, width=1), lambda p: np.zeros((len(p), 1)))
    assert rows.shape == (2, 1) and misses == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("synthfilter: warning: cache ") for line in err)
    assert corrupt.read_bytes() == b"this is not a database" * 100  # left as it was


def test_cache_env_naming_a_file_gives_one_warning_line_through_the_cli(tmp_path, texts):
    corpus = tmp_path / "c.parquet"
    pl.DataFrame({"text": texts[:30]}).write_parquet(corpus)
    cache_file = tmp_path / "cache-is-a-file"
    cache_file.write_text("not a folder")
    result = _cli("score", corpus, "--encoder", "static", "--model", "none", "--quiet", cache=cache_file)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"synthfilter: warning: cache folder {cache_file} is unusable")
    assert "Traceback" not in result.stderr
    assert pl.read_parquet(tmp_path / "c.scores.parquet").height == 30
    assert cache_file.read_text() == "not a folder"


# ------------------------------------------------------------------------------ detector results
class _CountingScorer:
    """The shipped detector, counting the texts it is asked to score."""

    def __init__(self, scorer):
        self.scorer, self.model_id_, self.scored = scorer, scorer.model_id_, 0

    def decision_function(self, texts, show_progress=False):
        self.scored += len(texts)
        return self.scorer.decision_function(texts)


@pytest.fixture(scope="module")
def shipped():
    from synthfilter.origin import load_model

    return load_model()


def test_warm_rescore_runs_the_detector_on_no_text_and_on_new_texts_only(tmp_path, texts, shipped):
    corpus = texts[:400]
    counting = _CountingScorer(shipped)
    detector = CachedDetector(counting, tmp_path)
    cold = detector.decision_function(corpus)
    assert counting.scored == len(set(corpus))
    np.testing.assert_array_equal(cold, shipped.decision_function(corpus))
    counting.scored = 0
    warm = detector.decision_function(corpus)
    assert counting.scored == 0 and detector.hits == len(corpus) and detector.misses == 0
    np.testing.assert_array_equal(warm, cold)
    grown = corpus + texts[400:420]  # 5 % new records
    scores = CachedDetector(counting, tmp_path).decision_function(grown)
    assert counting.scored == 20
    np.testing.assert_array_equal(scores, shipped.decision_function(grown))


def test_the_result_cache_is_keyed_by_model_id(tmp_path, texts, shipped):
    counting = _CountingScorer(shipped)
    CachedDetector(counting, tmp_path).decision_function(texts[:10])
    counting.model_id_ = "origin-v3@000000000000"  # another model: nothing is shared
    counting.scored = 0
    CachedDetector(counting, tmp_path).decision_function(texts[:10])
    assert counting.scored == 10


# ------------------------------------------------------------------------------ crashes and concurrency
_SLOW_ENCODING = textwrap.dedent("""
    import sys, time
    import polars as pl
    from synthfilter.encoders import CachedEncoder, get_encoder

    class Slow:
        def __init__(self, base):
            self.base, self.id, self.dim = base, base.id, base.dim
        def encode(self, texts, batch_size=32, show_progress=False):
            out = self.base.encode(texts)
            print("chunk", flush=True)
            time.sleep(0.4)
            return out

    texts = pl.read_parquet(sys.argv[1])["text"].to_list()[:1000]
    CachedEncoder(Slow(get_encoder("static", cache=False)), sys.argv[2], chunk_size=100).encode(texts)
    print("finished", flush=True)
""")


def test_a_run_killed_mid_encoding_keeps_the_chunks_it_committed(tmp_path, texts):
    cache = tmp_path / "emb"
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_ENCODING, str(HELDOUT), str(cache)],
                            stdout=subprocess.PIPE, text=True, env=_env(tmp_path), cwd=ROOT)
    seen = 0
    try:
        while seen < 4:
            line = proc.stdout.readline()
            assert line, "the encoding process ended early"
            seen += line.startswith("chunk")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    base = get_encoder("static", cache=False)
    cached = CachedEncoder(base, cache)
    vectors = cached.encode(texts[:1000])
    assert 300 <= cached.hits < 1000  # chunks 1-3 were committed before the 4th was reported
    assert cached.hits + cached.misses == 1000 == len(set(texts[:1000]))
    np.testing.assert_array_equal(vectors, base.encode(texts[:1000]))


def test_two_concurrent_runs_share_one_cache_and_agree(tmp_path, texts):
    corpus = tmp_path / "corpus.parquet"
    pl.DataFrame({"id": [f"r{i}" for i in range(3000)], "text": texts[:3000]}).write_parquet(corpus)
    cache = tmp_path / "cache"
    env = _env(cache)
    runs = [subprocess.Popen([*CLI, "score", str(corpus), "--encoder", "static",
                              "--quiet", "-o", str(tmp_path / f"out{i}.parquet")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
            for i in range(2)]
    outputs = [run.communicate(timeout=600) for run in runs]
    for run, (_, err) in zip(runs, outputs):
        assert run.returncode == 0, err
        assert "warning" not in err
    first, second = (pl.read_parquet(tmp_path / f"out{i}.parquet") for i in range(2))
    assert first.equals(second) and first.height == 3000
    with ArrayStore(next((cache / "scores").glob("*.sqlite")), width=1, dtype=np.float64) as store:
        assert len(store) == len(set(texts[:3000]))


# ------------------------------------------------------------------------------ remembered hashes
def test_a_tampered_file_with_a_new_mtime_is_rehashed(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"a" * 1000)
    calls = []

    def compute():
        calls.append(1)
        return file_sha256(path)

    first = remembered_digest(path, compute)
    assert remembered_digest(path, compute) == first and len(calls) == 1  # remembered
    stat = path.stat()
    path.write_bytes(b"b" * 1000)  # same size, new mtime
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert remembered_digest(path, compute) == file_sha256(path) != first and len(calls) == 2


def test_verify_rehashes_a_file_whose_size_and_mtime_did_not_change(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"a" * 1000)
    first = remembered_digest(path, lambda: file_sha256(path))
    stat = path.stat()
    path.write_bytes(b"b" * 1000)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the key is unchanged
    assert remembered_digest(path, lambda: file_sha256(path)) == first  # trusted without --verify
    assert remembered_digest(path, lambda: file_sha256(path), verify=True) == file_sha256(path) != first


def test_verify_flag_catches_a_model_corrupted_behind_an_unchanged_mtime(tmp_path, texts):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(ROOT / "models" / "origin-v3", model, ignore=shutil.ignore_patterns("*.png", "*.parquet"))
    corpus = tmp_path / "c.parquet"
    pl.DataFrame({"text": texts[:20]}).write_parquet(corpus)
    args = ("score", corpus, "--encoder", "static", "--model", model, "--quiet")
    assert _cli(*args, cache=tmp_path / "cache").returncode == 0  # remembers the weights' hash
    weights = model / "weights.npz"
    stat = weights.stat()
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    result = _cli(*args, "--verify", cache=tmp_path / "cache")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "weights.npz does not match" in result.stderr


def test_the_static_path_never_imports_torch(tmp_path):
    code = textwrap.dedent("""
        import sys
        import synthfilter.cli.score
        from synthfilter.encoders import get_encoder
        from synthfilter.origin import load_model
        encoder = get_encoder("static")
        model = load_model()
        model.decision_function(["A paragraph to score, so that the whole model runs."])
        print(encoder.id, encoder.dim, model.model_id_)
        print(sorted(m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=_env(tmp_path), cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_text_keys_are_remembered_only_inside_the_block(monkeypatch):
    from synthfilter import cache

    calls = []
    real = cache.text_key
    monkeypatch.setattr(cache, "text_key", lambda t: calls.append(t) or real(t))
    texts = ["a", "b", "a"]
    with cache.remembered_text_keys():
        first = cache.text_keys(texts)
        with cache.remembered_text_keys():  # nested: the same memory
            second = cache.text_keys(texts)
    assert first == second == [real("a"), real("b"), real("a")]
    assert calls == ["a", "b"]
    assert cache._KEY_MEMO is None  # released with the outermost block
    cache.text_keys(["a"])
    assert calls == ["a", "b", "a"]
