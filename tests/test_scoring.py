from __future__ import annotations

import polars as pl
import pytest

from synthfilter import score
from synthfilter.errors import ConfigError, SchemaError
from synthfilter.scoring import available_stages, register_stage, score_with_report


def test_score_on_strings_and_frames_gives_the_same_columns(tails_sample):
    texts = tails_sample["text"].to_list()[:60]
    from_list = score(texts, model=None, encoder="static")
    frame = pl.DataFrame({"doc": [f"d{i}" for i in range(60)], "body": texts, "extra": list(range(60))})
    from_frame = score(frame, text_column="body", id_column="doc", keep_columns=["extra"], model=None,
                       encoder="static")
    assert from_list.columns == ["id", "knn_distance", "rarity", "dup_cluster", "is_near_duplicate"]
    assert from_frame.columns == ["id", "extra", "knn_distance", "rarity", "dup_cluster", "is_near_duplicate"]
    assert from_frame["id"].to_list() == frame["doc"].to_list()
    assert from_frame["extra"].to_list() == list(range(60))
    assert from_list.drop("id").equals(from_frame.drop("id", "extra"))


def test_report_names_encoder_and_index(tails_sample):
    result = score_with_report(tails_sample["text"].to_list()[:50], model=None, encoder="static")
    assert result.info["encoder"].startswith("static:")
    assert result.info["tails"]["index"]["kind"] == "flat"
    assert result.info["tails"]["rarity_against"] == "corpus"
    assert result.info["records"] == 50


def test_stage_registry_accepts_new_stages(tails_sample):
    @register_stage("length")
    class LengthStage:
        name, columns = "length", ("n_chars",)

        def __init__(self, **_):
            pass

        def run(self, ctx):
            return pl.DataFrame({"n_chars": [len(t) for t in ctx.texts]})

    assert "length" in available_stages()
    table = score(["abc", "hello"], stages=["length"], model=None, encoder="static")
    assert table["n_chars"].to_list() == [3, 5]


def test_score_rejects_bad_input():
    with pytest.raises(SchemaError, match="empty at row 1"):
        score(["fine", " "], model=None, encoder="static")
    with pytest.raises(ConfigError, match="unknown scoring stage"):
        score(["a", "b"], stages=["nope"], model=None, encoder="static")
    with pytest.raises(ConfigError, match="DataFrame or a list"):
        score("just one string", model=None)


def test_score_returns_the_users_table_type(tails_sample):
    """pandas in, pandas out; pyarrow in, pyarrow out; the same scores as polars."""
    import pandas as pd
    import pyarrow as pa

    frame = tails_sample.select("text").head(30)
    expected = score(frame, model=None, encoder="static")
    from_pandas = score(frame.to_pandas(), model=None, encoder="static")
    from_arrow = score(frame.to_arrow(), model=None, encoder="static")
    assert isinstance(from_pandas, pd.DataFrame) and isinstance(from_arrow, pa.Table)
    assert pl.from_pandas(from_pandas).equals(expected)
    assert pl.from_arrow(from_arrow).equals(expected)
