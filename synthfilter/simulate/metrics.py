"""Per-generation measures of collapse for the text simulation.

All of them compare a generation with generation 0 or describe one
generation's samples; none needs a model beyond token counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from synthfilter.ngram import tokenize

__all__ = ["distinct_n", "survival", "token_counts", "tv_distance"]


def token_counts(texts: Iterable[str]) -> Counter:
    """Count the tokens (:func:`~synthfilter.ngram.tokenize`) of ``texts``."""
    return Counter(tok for text in texts for tok in tokenize(text))


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct-n: distinct n-grams over all n-grams of ``texts`` (within paragraphs).

    Li et al. (2016). It depends on the amount of text, so compare values over
    equally many samples. Returns 0.0 when there is no n-gram.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    grams: Counter = Counter()
    for text in texts:
        toks = tokenize(text)
        grams.update(tuple(toks[i : i + n]) for i in range(len(toks) - n + 1))
    total = sum(grams.values())
    return len(grams) / total if total else 0.0


def tv_distance(a: Counter, b: Counter) -> float:
    """Total-variation distance between the normalised distributions of two counters.

    :math:`\\frac12 \\sum_w |a(w)/|a| - b(w)/|b||`, in [0, 1]; 1.0 if either is empty.
    """
    na, nb = sum(a.values()), sum(b.values())
    if na == 0 or nb == 0:
        return 1.0
    keys = list(set(a) | set(b))
    pa = np.fromiter((a.get(k, 0) for k in keys), dtype=np.float64, count=len(keys)) / na
    pb = np.fromiter((b.get(k, 0) for k in keys), dtype=np.float64, count=len(keys)) / nb
    return float(0.5 * np.abs(pa - pb).sum())


def survival(types: set[str], counts: Counter) -> float:
    """Share of ``types`` that still occur in ``counts`` (1.0 for an empty set)."""
    if not types:
        return 1.0
    return sum(1 for t in types if counts.get(t, 0) > 0) / len(types)
