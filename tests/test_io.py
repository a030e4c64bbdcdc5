from __future__ import annotations

import json

import polars as pl
import pytest

from synthfilter.errors import InputError, OutputError, SchemaError
from synthfilter.io import (
    atomic_path,
    atomic_write_parquet,
    check_output_path,
    content_ids,
    read_corpus,
    validate_corpus,
)


def test_reads_parquet_jsonl_csv_alike(tmp_path):
    frame = pl.DataFrame({"doc": ["a", "b"], "body": ["first text", "second, text"]})
    frame.write_parquet(tmp_path / "c.parquet")
    frame.write_ndjson(tmp_path / "c.jsonl")
    frame.write_csv(tmp_path / "c.csv")
    tables = [read_corpus(tmp_path / f"c.{ext}", text_column="body", id_column="doc")
              for ext in ("parquet", "jsonl", "csv")]
    for table in tables:
        assert table.columns == ["id", "text"]
        assert table["id"].to_list() == ["a", "b"]
        assert table["text"].to_list() == ["first text", "second, text"]


def test_content_ids_are_stable_and_unique_for_repeats():
    ids = content_ids(pl.Series(["x", "y", "x"]))
    assert ids[0] != ids[1]
    assert ids[2] == ids[0] + "-1"
    assert content_ids(pl.Series(["y"]))[0] == ids[1]


@pytest.mark.parametrize(
    ("frame", "kwargs", "pattern"),
    [
        (pl.DataFrame({"body": ["x"]}), {}, r"no column 'text'.*--text-column"),
        (pl.DataFrame({"text": [1, 2]}), {}, r"holds Int64, not text"),
        (pl.DataFrame({"text": ["ok", None, "ok2"]}), {}, r"null at row 1;"),
        (pl.DataFrame({"text": ["ok", "  ", ""]}), {}, r"empty at rows 1, 2;"),
        (pl.DataFrame({"text": ["ok", "x" * 50]}), {"max_text_chars": 10}, r"over 10 characters at row 1;.*--max-text-chars"),
        (pl.DataFrame({"text": ["a", "b"], "k": ["1", "1"]}), {"id_column": "k"}, r"repeats ids at rows 0, 1"),
        (pl.DataFrame({"text": ["a"]}), {"id_column": "k"}, r"no id column 'k'"),
        (pl.DataFrame({"text": ["a", "b"], "id": [None, "x"]}), {}, r"id column 'id' is null at row 0"),
    ],
)
def test_bad_corpora_give_one_line_errors(frame, kwargs, pattern):
    with pytest.raises(SchemaError, match=pattern) as info:
        validate_corpus(frame, source="c.parquet", **kwargs)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("c.parquet:")


def test_unreadable_files(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_corpus(tmp_path / "missing.parquet")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="empty"):
        read_corpus(tmp_path / "empty.csv")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InputError, match="cannot read as PARQUET"):
        read_corpus(tmp_path / "bad.parquet")
    (tmp_path / "latin.csv").write_bytes("text\ncaf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(InputError, match="UTF-8"):
        read_corpus(tmp_path / "latin.csv")
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{"text": \n')
    with pytest.raises(InputError, match="line 2 is not valid JSON"):
        read_corpus(tmp_path / "bad.jsonl")
    with pytest.raises(InputError, match="unsupported file type"):
        read_corpus(tmp_path / "corpus.xlsx")


def test_output_checks(tmp_path):
    src = tmp_path / "in.parquet"
    src.write_bytes(b"x")
    with pytest.raises(OutputError, match="overwrite an input"):
        check_output_path(src, [src])
    with pytest.raises(OutputError, match="does not exist"):
        check_output_path(tmp_path / "nope" / "out.parquet")
    with pytest.raises(OutputError, match="is a directory"):
        check_output_path(tmp_path)


def test_atomic_write_leaves_nothing_on_interrupt(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_text(json.dumps({"half": "written"}))
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_parquet_bytes_are_deterministic(tmp_path):
    frame = pl.DataFrame({"id": ["a", "b"], "x": [0.1, 0.2]})
    atomic_write_parquet(frame, tmp_path / "a.parquet")
    atomic_write_parquet(frame, tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_as_frame_takes_users_tables_and_gives_their_type_back():
    import pandas as pd
    import pyarrow as pa

    from synthfilter.io import as_frame, like_input

    expected = pl.DataFrame({"text": ["one text", "two texts"], "n": [1, 2]})
    for data in (expected, expected.to_pandas(), expected.to_arrow()):
        assert as_frame(data).equals(expected)
    assert as_frame(["one text", "two texts"], "body").equals(pl.DataFrame({"body": ["one text", "two texts"]}))
    result = pl.DataFrame({"id": ["a", "b"], "p": [0.1, 0.9]})
    assert isinstance(like_input(result, expected.to_pandas()), pd.DataFrame)
    assert isinstance(like_input(result, expected.to_arrow()), pa.Table)
    assert like_input(result, ["x", "y"]) is result


def test_as_frame_refuses_other_things_in_one_line():
    from synthfilter.errors import ConfigError
    from synthfilter.io import as_frame

    with pytest.raises(ConfigError, match="list of strings"):
        as_frame({"text": ["a"]})
    with pytest.raises(ConfigError, match="row 1 hold"):
        as_frame(["fine", 3])


def test_as_frame_takes_a_hugging_face_dataset():
    datasets = pytest.importorskip("datasets")
    from synthfilter.io import as_frame, like_input

    data = datasets.Dataset.from_dict({"text": ["one text", "two texts"]})
    frame = as_frame(data)
    assert frame["text"].to_list() == ["one text", "two texts"]
    assert isinstance(like_input(frame, data), datasets.Dataset)
