from __future__ import annotations

import polars as pl

from synthfilter.data.brown import detokenize, iter_brown_paragraphs, strip_tags
from synthfilter.data.schema import RECORD_SCHEMA

CA01_FIRST = (
    "The/at Fulton/np-tl County/nn-tl Grand/jj-tl Jury/nn-tl said/vbd Friday/nr an/at investigation/nn "
    "of/in Atlanta's/np$ recent/jj primary/nn election/nn produced/vbd ``/`` no/at evidence/nn ''/'' "
    "that/cs any/dti irregularities/nns took/vbd place/nn ./."
)


def test_detokenize_known_snippet():
    assert detokenize(strip_tags(CA01_FIRST)) == (
        "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary "
        'election produced "no evidence" that any irregularities took place.'
    )


def test_detokenize_brackets_dashes_and_repeated_punctuation():
    words = strip_tags("He/pps came/vbd (/( late/rb )/) --/-- tired/jj ;/. ;/. she/pps left/vbd ?/.")
    assert detokenize(words) == "He came (late)--tired; she left?"


def test_first_brown_paragraph_is_detokenised(brown_root):
    file_id, text = next(iter_brown_paragraphs(brown_root))
    assert file_id == "ca01"
    assert text.startswith(
        'The Fulton County Grand Jury said Friday an investigation of Atlanta\'s recent primary election produced "no evidence"'
    )
    assert "/" not in text and "``" not in text and "''" not in text


def test_load_brown_columns_labels_groups(brown_frame):
    assert brown_frame.schema == pl.Schema(RECORD_SCHEMA)
    assert brown_frame.height > 5000
    assert set(brown_frame["label"].unique()) == {0}
    assert set(brown_frame["source"].unique()) == {"brown"}
    assert brown_frame["group"].str.contains(r"^brown:c[a-r]\d\d$").all()
    assert brown_frame["id"].is_unique().all()
    lengths = brown_frame["text"].str.len_chars()
    assert lengths.min() >= 200 and lengths.max() <= 600
    assert not brown_frame["text"].str.contains(r"\w/(?:at|nn|nns|np|vbd|vbn|in|jj|rb|cc)(?:-tl|-hl)?(?:\s|$)").any()
    assert brown_frame["gen_temperature"].is_null().all()
