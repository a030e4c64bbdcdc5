"""Cheap text statistics of a batch: lexical variety and length spread.

Tokens are runs of word characters (``\\w+``, Unicode-aware) of the
case-folded text, so ``"Don't"`` gives ``don`` and ``t``. A run of characters
from a script written without spaces counts as one token; these statistics are
meant for space-separated languages.

All statistics depend on the number of records (corpus-level distinct-n falls
as a batch grows), which is why the monitor compares a batch only with
reference subsamples of the same size.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

__all__ = ["distinct_n", "length_stats", "mean_type_token_ratio", "tokenize"]

_TOKEN = re.compile(r"\w+", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Split a text into case-folded word tokens.

    Parameters
    ----------
    text : str

    Returns
    -------
    list of str

    Examples
    --------
    >>> tokenize("The cat, the HAT.")
    ['the', 'cat', 'the', 'hat']
    """
    return _TOKEN.findall(text.casefold())


def distinct_n(tokenized: Sequence[Sequence[str]], n: int) -> float:
    """Distinct-n (Li et al., 2016): unique n-grams over all n-grams of a batch.

    N-grams do not cross record boundaries.

    Parameters
    ----------
    tokenized : sequence of token lists
        One token list per record (see :func:`tokenize`).
    n : int
        N-gram order, at least 1.

    Returns
    -------
    float
        In (0, 1]; ``nan`` when the batch has no n-gram at all. Low means the
        batch repeats the same words or phrases (bad).

    Examples
    --------
    >>> distinct_n([["a", "b"], ["a", "b"]], 1)
    0.5
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    seen: set = set()
    total = 0
    for tokens in tokenized:
        count = len(tokens) - n + 1
        if count <= 0:
            continue
        total += count
        seen.update(tokens if n == 1 else zip(*(tokens[i:] for i in range(n))))
    return len(seen) / total if total else float("nan")


def mean_type_token_ratio(tokenized: Sequence[Sequence[str]]) -> float:
    """Mean over records of each record's type-token ratio (types / tokens).

    Parameters
    ----------
    tokenized : sequence of token lists

    Returns
    -------
    float
        In (0, 1]; ``nan`` when no record has a token. Low means records repeat
        their own words (bad). It falls with record length, so it is only
        comparable between batches of similar lengths.

    Examples
    --------
    >>> mean_type_token_ratio([["a", "a"], ["a", "b"]])
    0.75
    """
    ratios = [len(set(tokens)) / len(tokens) for tokens in tokenized if tokens]
    return float(np.mean(ratios)) if ratios else float("nan")


def length_stats(tokenized: Sequence[Sequence[str]]) -> dict[str, float]:
    """Mean and coefficient of variation of record lengths in tokens.

    Parameters
    ----------
    tokenized : sequence of token lists

    Returns
    -------
    dict
        ``length_mean`` (tokens, >= 0) and ``length_cv`` (standard deviation
        over mean, >= 0; 0 when every record has the same length, ``nan`` for
        an empty batch or one with no tokens).

    Examples
    --------
    >>> length_stats([["a"], ["a", "b", "c"]])
    {'length_mean': 2.0, 'length_cv': 0.5}
    """
    lengths = np.array([len(tokens) for tokens in tokenized], dtype=np.float64)
    if lengths.size == 0 or lengths.sum() == 0:
        return {"length_mean": float(lengths.mean()) if lengths.size else float("nan"), "length_cv": float("nan")}
    mean = float(lengths.mean())
    return {"length_mean": mean, "length_cv": float(lengths.std() / mean)}
