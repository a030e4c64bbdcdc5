"""Sharded corpora: resolving, reading, id numbering across shards, atomic folders of score shards."""

from __future__ import annotations

import polars as pl
import pytest

from synthfilter.errors import InputError, OutputError, SchemaError
from synthfilter.io import content_ids
from synthfilter.shards import (
    MANIFEST_NAME,
    ShardSource,
    is_sharded,
    read_sharded,
    resolve_shards,
    write_score_shards,
)

TEXTS = ["the cat sat", "a dog ran", "the cat sat", "rain fell", "a dog ran", "the cat sat", "snow"]


@pytest.fixture()
def folder(tmp_path):
    d = tmp_path / "shards"
    d.mkdir()
    pl.DataFrame({"text": TEXTS[:3]}).write_parquet(d / "a.parquet")
    pl.DataFrame({"text": TEXTS[3:5]}).write_ndjson(d / "b.jsonl")
    pl.DataFrame({"text": TEXTS[5:]}).write_parquet(d / "c.parquet")
    (d / "notes.txt").write_text("not a shard")
    return d


def test_resolve_folder_glob_and_file(folder):
    assert [p.name for p in resolve_shards(folder)] == ["a.parquet", "b.jsonl", "c.parquet"]
    assert [p.name for p in resolve_shards(folder / "*.parquet")] == ["a.parquet", "c.parquet"]
    assert resolve_shards(folder / "b.jsonl") == [folder / "b.jsonl"]
    assert is_sharded(folder) and is_sharded(folder / "*.parquet") and not is_sharded(folder / "a.parquet")


def test_resolve_nothing_is_a_one_line_error(tmp_path):
    (tmp_path / "empty").mkdir()
    for bad in (tmp_path / "empty", tmp_path / "*.parquet", tmp_path / "missing.parquet"):
        with pytest.raises(InputError) as err:
            resolve_shards(bad)
        assert "\n" not in str(err.value)


def test_content_ids_are_numbered_over_the_whole_corpus(folder):
    frame = read_sharded(folder)
    assert frame["text"].to_list() == TEXTS
    assert frame["id"].to_list() == content_ids(pl.Series(TEXTS)).to_list()


def test_an_id_repeated_across_shards_is_refused(tmp_path):
    pl.DataFrame({"id": ["x", "y"], "text": ["one", "two"]}).write_parquet(tmp_path / "a.parquet")
    pl.DataFrame({"id": ["z", "x"], "text": ["three", "four"]}).write_parquet(tmp_path / "b.parquet")
    with pytest.raises(SchemaError, match=r"b\.parquet: ids seen in an earlier shard at row 1"):
        read_sharded(tmp_path)


def test_a_bad_shard_names_itself(folder):
    pl.DataFrame({"text": ["fine", None]}).write_parquet(folder / "d.parquet")
    with pytest.raises(SchemaError, match=r"d\.parquet: column 'text' is null at row 1"):
        read_sharded(folder)


def test_source_of_paths_frames_and_texts(folder):
    assert ShardSource.of(folder).paths == resolve_shards(folder)
    src = ShardSource.of(["a b", "c d"])
    assert src.paths is None and src.frame["text"].to_list() == ["a b", "c d"]


def test_score_shards_written_by_one_rename(tmp_path):
    table = pl.DataFrame({"id": ["a", "b", "c"], "shard": [0, 0, 1], "x": [1.0, 2.0, 3.0]})
    out = tmp_path / "scores"
    paths = write_score_shards(table, ["part-0.parquet", "part-1.parquet"], out,
                               lambda final, written: f"{[p.name for p in final]}")
    assert [pl.read_parquet(p)["id"].to_list() for p in paths] == [["a", "b"], ["c"]]
    assert "shard" not in pl.read_parquet(paths[0]).columns
    assert (out / MANIFEST_NAME).read_text() == "['part-0.parquet', 'part-1.parquet']"
    assert [p.name for p in tmp_path.iterdir()] == ["scores"]  # no temporary folder left


def test_a_failed_write_leaves_the_old_folder_and_no_temporary(tmp_path):
    table = pl.DataFrame({"id": ["a"], "shard": [0]})
    out = tmp_path / "scores"
    write_score_shards(table, ["part-0.parquet"], out, lambda f, w: "first")

    def boom(final, written):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_score_shards(table, ["part-0.parquet"], out, boom)
    assert (out / MANIFEST_NAME).read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["scores"]


def test_a_foreign_folder_is_not_replaced(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    with pytest.raises(OutputError, match="not empty"):
        write_score_shards(pl.DataFrame({"id": ["a"], "shard": [0]}), ["p.parquet"], out)
    assert (out / "keep.txt").read_text() == "precious"
