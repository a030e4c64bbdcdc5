from __future__ import annotations

import polars as pl
import pytest

from synthfilter.data.schema import RECORD_SCHEMA
from synthfilter.data.spamassassin import clean_body, iter_ham_messages, thread_key

BODY = """Hi all,

On Tue, 3 Sep 2002, Joe Bloggs wrote:
> I think the kernel patch is broken.
> Anyone else?

I tried it on two machines and
it works for me.
http://example.com/patch.diff

--\x20
Jane Doe, sysadmin
"""


def test_clean_body_drops_quotes_attribution_urls_and_signature():
    out = clean_body(BODY)
    assert "wrote:" not in out and ">" not in out
    assert "http://" not in out
    assert "Jane Doe" not in out
    assert "I tried it on two machines and\nit works for me." in out


def test_clean_body_cuts_list_footer():
    body = "Real text here.\n\n_______________________________________________\nSome-list mailing list\n"
    assert "mailing list" not in clean_body(body)


def test_thread_key_strips_reply_prefixes():
    assert thread_key("Re: [SAtalk] Re: Fwd: Spam filters") == "spam filters"
    assert thread_key(None) == ""


def test_spam_folders_are_refused(spamassassin_root):
    with pytest.raises(ValueError, match="not a ham folder"):
        next(iter_ham_messages(spamassassin_root, folders=["spam-1"]))


def test_load_spamassassin_columns_and_content(spamassassin_frame):
    frame = spamassassin_frame
    assert frame.schema == pl.Schema(RECORD_SCHEMA)
    assert frame.height > 300
    assert set(frame["label"].unique()) == {0}
    assert set(frame["source"].unique()) == {"spamassassin"}
    assert frame["group"].str.starts_with("spamassassin:").all()
    assert not frame["text"].str.starts_with(">").any()
    assert not frame["text"].str.contains("http://|Received: |Message-Id:").any()
    lengths = frame["text"].str.len_chars()
    assert lengths.min() >= 200 and lengths.max() <= 600
