"""Reference simulation: recursive fitting of a unigram model on a Zipf vocabulary.

The true distribution puts probability :math:`p_i \\propto i^{-s}` on types
``i = 1..vocab_size``. Generation 0 draws ``n_tokens`` tokens from it (the
*real* data) and fits the maximum-likelihood unigram model (counts divided by
the total). Generation ``t`` draws tokens from the generation ``t - 1`` model
and refits; ``t`` counts refits after generation 0. A type whose count drops
to zero has probability zero from then on and can only come back through real
data. Runs are simulated together (one multinomial draw per run and
generation over the whole vocabulary).

Definitions (they reproduce the published reference figures quoted in the README):

* **Types kept** is the share of the types *seen in the generation-0 sample*
  (count >= 1) that still have non-zero probability in the generation-``t``
  model. (About a quarter of the 10k types never appear in 100k tokens, so
  dividing by the vocabulary size would give 29 % / 11 % / 4 % instead of
  39 % / 15 % / 5 %.)
* **Rare types** are the types seen 1 to ``rare_max_count`` (default 5) times
  in the generation-0 sample; **rare kept** is the share of them alive at ``t``.
* **TV to generation 0** is the total-variation distance
  :math:`\\frac12 \\sum_i |q_t(i) - q_0(i)|` between the generation-``t``
  model and the generation-0 model ("the original"); ``tv_to_true`` compares
  with the true Zipf distribution instead.
* **Real data is the original data.** The real share of a generation is a
  fixed subsample (without replacement) of the generation-0 tokens, drawn once
  and reused in every generation.
* Reported values are means over runs.

Regimes
-------
``replace``
    Each generation fits only ``n_tokens`` tokens sampled from the previous model.
``fixed_real``
    ``round(real_share * n_tokens)`` real tokens (the fixed subsample) plus
    synthetic tokens for the rest.
``accumulate``
    Each generation adds ``n_tokens`` synthetic tokens to all tokens so far,
    generation-0 real tokens included, and fits the union.
``cap_keep_rare``
    ``fixed_real`` where the real part also holds *every* generation-0 token of
    a rare type (each rare type at its generation-0 count, so none is
    duplicated); synthetic tokens fill up to ``n_tokens``, so the synthetic
    share is at most ``1 - real_share``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from synthfilter.errors import ConfigError

__all__ = ["UNIGRAM_REGIMES", "simulate_unigram", "zipf_probabilities"]

#: Regimes understood by :func:`simulate_unigram`.
UNIGRAM_REGIMES = ("replace", "fixed_real", "accumulate", "cap_keep_rare")


def zipf_probabilities(vocab_size: int, exponent: float) -> np.ndarray:
    """Return the Zipf distribution :math:`p_i \\propto i^{-s}` over ``vocab_size`` types.

    Parameters
    ----------
    vocab_size : int
        Number of types.
    exponent : float
        Zipf exponent ``s`` (> 0).

    Returns
    -------
    numpy.ndarray
        Probabilities, shape ``(vocab_size,)``, decreasing, summing to 1.
    """
    if vocab_size < 1:
        raise ConfigError(f"vocab_size must be >= 1, got {vocab_size}")
    if not exponent > 0:
        raise ConfigError(f"the Zipf exponent must be > 0, got {exponent}")
    p = np.arange(1, vocab_size + 1, dtype=np.float64) ** -float(exponent)
    return p / p.sum()


def _normalise(counts: np.ndarray) -> np.ndarray:
    q = counts / counts.sum(axis=1, keepdims=True)
    # multinomial() insists that the first k-1 probabilities sum to <= 1.
    return np.clip(q, 0.0, 1.0)


def _row(t: int, q: np.ndarray, q0: np.ndarray, p: np.ndarray, seen0: np.ndarray, rare0: np.ndarray) -> dict:
    alive = q > 0
    return {
        "generation": t,
        "types_kept": float(np.mean(alive.sum(axis=1, where=seen0) / seen0.sum(axis=1))),
        "rare_kept": float(np.mean(alive.sum(axis=1, where=rare0) / np.maximum(rare0.sum(axis=1), 1))),
        "vocab_alive": float(np.mean(alive.mean(axis=1))),
        "tv_to_gen0": float(np.mean(0.5 * np.abs(q - q0).sum(axis=1))),
        "tv_to_true": float(np.mean(0.5 * np.abs(q - p[None, :]).sum(axis=1))),
    }


def simulate_unigram(
    regime: str = "replace",
    *,
    generations: int = 200,
    vocab_size: int = 10_000,
    exponent: float = 1.1,
    n_tokens: int = 100_000,
    n_runs: int = 20,
    real_share: float = 0.8,
    rare_max_count: int = 5,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> pl.DataFrame:
    """Simulate recursive unigram fitting under one data regime.

    Parameters
    ----------
    regime : {"replace", "fixed_real", "accumulate", "cap_keep_rare"}, default "replace"
        How each generation's training tokens are made (see the module docstring).
    generations : int, default 200
        Number of refits after generation 0.
    vocab_size : int, default 10000
        Number of types of the true Zipf distribution.
    exponent : float, default 1.1
        Zipf exponent.
    n_tokens : int, default 100000
        Tokens per generation (for ``accumulate``: new tokens per generation).
    n_runs : int, default 20
        Independent runs; type shares are averaged over runs. Each run already
        averages over thousands of types, so 20 runs give a standard error
        below half a percentage point.
    real_share : float, default 0.8
        Share of real tokens per generation (``fixed_real``, ``cap_keep_rare``).
    rare_max_count : int, default 5
        A type is rare when seen 1..``rare_max_count`` times in generation 0.
    seed : int, default 0
        Seed of the numpy generator; same seed, same table.
    progress : callable, optional
        Called with the generation number after each refit.

    Returns
    -------
    polars.DataFrame
        One row per generation ``0..generations`` with columns ``regime``,
        ``generation``, ``types_kept``, ``rare_kept``, ``vocab_alive`` (alive
        share of the whole vocabulary), ``tv_to_gen0`` and ``tv_to_true``.

    Raises
    ------
    ConfigError
        If a parameter is out of range or the regime is unknown.
    """
    if regime not in UNIGRAM_REGIMES:
        raise ConfigError(f"unknown unigram regime '{regime}'; choose one of {', '.join(UNIGRAM_REGIMES)}")
    for name, value, low in (("generations", generations, 0), ("n_tokens", n_tokens, 1), ("n_runs", n_runs, 1)):
        if value < low:
            raise ConfigError(f"{name} must be >= {low}, got {value}")
    if not 0.0 <= real_share <= 1.0:
        raise ConfigError(f"real_share must be in [0, 1], got {real_share}")
    if rare_max_count < 1:
        raise ConfigError(f"rare_max_count must be >= 1, got {rare_max_count}")

    rng = np.random.default_rng(seed)
    p = zipf_probabilities(vocab_size, exponent)
    c0 = rng.multinomial(n_tokens, np.broadcast_to(p, (n_runs, vocab_size)))
    q0 = c0 / n_tokens
    seen0 = c0 > 0
    rare0 = seen0 & (c0 <= rare_max_count)
    q = q0
    rows = [_row(0, q, q0, p, seen0, rare0)]

    if regime == "accumulate":
        counts = c0.astype(np.int64)
        for t in range(1, generations + 1):
            counts = counts + rng.multinomial(n_tokens, q)
            q = _normalise(counts)
            rows.append(_row(t, q, q0, p, seen0, rare0))
            if progress is not None:
                progress(t)
        return pl.DataFrame(rows).insert_column(0, pl.lit(regime).alias("regime"))

    n_real = 0 if regime == "replace" else round(real_share * n_tokens)
    kept = np.stack([rng.multivariate_hypergeometric(row, n_real) for row in c0]) if n_real else np.zeros_like(c0)
    if regime == "cap_keep_rare":
        kept = np.where(rare0, c0, kept)
    n_synth = n_tokens - kept.sum(axis=1)
    for t in range(1, generations + 1):
        counts = rng.multinomial(n_synth, q) + kept
        q = _normalise(counts)
        rows.append(_row(t, q, q0, p, seen0, rare0))
    return pl.DataFrame(rows).insert_column(0, pl.lit(regime).alias("regime"))
