"""The text simulation: recursive training of an n-gram language model on its own output.

Set-up (all sizes in paragraphs, see :class:`TextSimulationConfig`):

1. Human paragraphs (Brown corpus by default) are shuffled with the seed and
   split into the **gold** set (``n_gold``: generation 0's training data, the
   trusted human set every regime may use), a **held-out test** set
   (``n_test``: perplexity only, never trained on) and a **fresh human pool**.
2. Generation 0 fits an interpolated Kneser-Ney trigram model
   (:class:`~synthfilter.ngram.NGramLM`) on gold.
3. Generation ``t >= 1``: each regime's previous model writes
   ``n_synthetic`` paragraphs (kept only if 200-600 characters long, like the
   human ones); ``n_fresh`` fresh human paragraphs arrive from the pool (the
   same ones for every regime; new ones each generation until the pool runs
   out, then it is reshuffled and reused). Synthetic and human candidates are
   shuffled together under opaque ids. The regime
   (:mod:`synthfilter.simulate.regimes`) picks the training set and a fresh
   model is fitted on it.

Measures per regime and generation ``t`` (model ``M_t``):

``perplexity``
    Per-token perplexity of ``M_t`` on the held-out human paragraphs. The
    vocabulary is closed: every token of the loaded human paragraphs; ``M_t``
    gives words it never saw only the uniform floor of Kneser-Ney smoothing.
``perplexity_ratio``
    ``perplexity / perplexity at generation 0``.
``types_kept``, ``rare_kept``
    Share of the types of generation 0's training data (gold), and of its
    rare types (seen 1..``rare_max_count`` times in gold), that occur in
    ``M_t``'s training data, i.e. that ``M_t`` can still write.
``distinct_1``, ``distinct_2``
    Distinct-n of ``n_eval_samples`` paragraphs sampled from ``M_t``.
``tv_unigram``
    Total-variation distance between the unigram distribution of ``M_t``'s
    training data (its maximum-likelihood unigram model) and gold's.
``synthetic_share``
    True share of model-written paragraphs in ``M_t``'s training data
    (the simulation knows the labels; filtering regimes never see them).
``n_train``
    Paragraphs in ``M_t``'s training data.
``detector_auroc``
    For regimes that score candidates (``synthfilter``): AUROC of the
    detector's ``p_synthetic`` on this generation's candidates, against the
    truth. Null otherwise.
``monitor_recall``, ``monitor_tail_recall``, ``monitor_mmd_rbf``
    Only with ``monitor=True``: :func:`synthfilter.monitor.batch_metrics` of
    the ``n_eval_samples`` samples against gold, on static-encoder
    embeddings (k-NN recall of gold's support, of its rarest decile, and
    MMD squared).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl

from synthfilter.errors import ConfigError
from synthfilter.ngram import NGramLM, Vocabulary
from synthfilter.simulate.metrics import distinct_n, survival, token_counts, tv_distance
from synthfilter.simulate.regimes import (
    DEFAULT_TEXT_REGIMES,
    GenerationContext,
    make_regime,
)

__all__ = ["TextSimulationConfig", "TextSimulationResult", "run_text_simulation", "sample_paragraphs"]

#: Columns added by ``monitor=True`` (from :func:`synthfilter.monitor.batch_metrics`).
MONITOR_COLUMNS = ("monitor_recall", "monitor_tail_recall", "monitor_mmd_rbf")
#: Columns of :attr:`TextSimulationResult.table`, in order (then :data:`MONITOR_COLUMNS` if asked for).
TEXT_COLUMNS = (
    "regime", "generation", "perplexity", "perplexity_ratio", "types_kept", "rare_kept", "distinct_1",
    "distinct_2", "tv_unigram", "synthetic_share", "n_train", "detector_auroc",
)


@dataclass(frozen=True)
class TextSimulationConfig:
    """Sizes and settings of a text simulation; the seed is part of it.

    Parameters
    ----------
    generations : int, default 10
        Generations after generation 0.
    n_gold : int, default 2000
        Gold (generation-0 training) paragraphs.
    n_test : int, default 500
        Held-out human paragraphs for perplexity.
    n_holdout : int, default 400
        Human paragraphs set aside for detector calibration
        (:attr:`GenerationContext.holdout`): no model trains on them and they
        are never candidates. 0 turns this off.
    n_fresh : int, default 400
        Fresh human candidates per generation.
    n_synthetic : int, default 2000
        Synthetic candidates per generation (the natural synthetic share of
        the candidates is ``n_synthetic / (n_synthetic + n_fresh)``).
    n_eval_samples : int, default 500
        Samples per generation for distinct-n.
    order : int, default 3
        n-gram order.
    sampling : {"backoff", "kn"}, default "backoff"
        How the model writes (see :class:`~synthfilter.ngram.NGramLM`).
    rare_max_count : int, default 5
        Gold types seen at most this often are rare.
    min_chars, max_chars : int, default 200, 600
        Length range a synthetic paragraph must fall in (that of the human ones).
    monitor : bool, default False
        Add the diversity monitor's metrics of each generation's samples
        against gold (``monitor_*`` columns; about 3 s per generation).
    seed : int, default 0
        Seed of the split, the sampling and the detectors.
    """

    generations: int = 10
    n_gold: int = 2000
    n_test: int = 500
    n_holdout: int = 400
    n_fresh: int = 400
    n_synthetic: int = 2000
    n_eval_samples: int = 500
    order: int = 3
    sampling: str = "backoff"
    rare_max_count: int = 5
    min_chars: int = 200
    max_chars: int = 600
    monitor: bool = False
    seed: int = 0

    def check(self, n_paragraphs: int) -> None:
        """Raise :class:`ConfigError` if the settings are invalid for ``n_paragraphs`` human paragraphs."""
        for name in ("generations", "n_fresh", "n_holdout"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("n_gold", "n_test", "n_synthetic", "n_eval_samples", "order", "rare_max_count"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.min_chars < self.max_chars:
            raise ConfigError(f"need 0 <= min_chars < max_chars, got {self.min_chars} and {self.max_chars}")
        need = self.n_gold + self.n_test + self.n_holdout + self.n_fresh
        if need > n_paragraphs:
            raise ConfigError(
                f"n_gold + n_test + n_holdout + n_fresh = {need} paragraphs, but only {n_paragraphs} human paragraphs "
                "are available; lower the sizes"
            )


@dataclass
class TextSimulationResult:
    """Outcome of :func:`run_text_simulation`.

    Attributes
    ----------
    table : polars.DataFrame
        One row per regime and generation, columns :data:`TEXT_COLUMNS`.
    info : dict
        Configuration, data sizes, per-regime timings and rebuild diagnostics.
    """

    table: pl.DataFrame
    info: dict[str, Any] = field(default_factory=dict)


def sample_paragraphs(
    model: NGramLM, n: int, rng: np.random.Generator, min_chars: int = 200, max_chars: int = 600,
    max_rounds: int = 20,
) -> list[str]:
    """Draw ``n`` paragraphs whose length lies in ``[min_chars, max_chars]``.

    Draws in batches sized by the acceptance rate seen so far. If after
    ``max_rounds`` batches too few qualify (a degenerate model), the shortfall
    is filled with any non-empty samples, so the call always returns ``n``
    paragraphs.
    """
    out: list[str] = []
    spare: list[str] = []
    drawn = accepted = 0
    for _ in range(max_rounds):
        need = n - len(out)
        if need <= 0:
            break
        rate = (accepted + 1) / (drawn + 2)
        batch = model.sample(min(max(int(need / rate * 1.2) + 8, 16), 50 * n + 16), rng)
        drawn += len(batch)
        for text in batch:
            if min_chars <= len(text) <= max_chars:
                out.append(text)
                accepted += 1
            elif text:
                spare.append(text)
    out.extend(spare[: max(n - len(out), 0)])
    return out[:n]


def _rng(seed: int, *keys: int | str) -> np.random.Generator:
    words = [seed] + [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in keys]
    return np.random.default_rng(np.random.SeedSequence(words))


def _auroc(p: np.ndarray, y: np.ndarray) -> float | None:
    if len(np.unique(y)) < 2:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


def run_text_simulation(
    regimes: Sequence[str | Any] = DEFAULT_TEXT_REGIMES,
    config: TextSimulationConfig | None = None,
    *,
    paragraphs: Sequence[str] | None = None,
    regime_options: dict[str, dict[str, Any]] | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> TextSimulationResult:
    """Run the text simulation for several regimes from one shared generation 0.

    Parameters
    ----------
    regimes : sequence of str or regime objects
        Registered names (see :data:`~synthfilter.simulate.regimes.REGIMES`) or
        objects following the :class:`~synthfilter.simulate.regimes.Regime`
        protocol (used once; they may keep state).
    config : TextSimulationConfig, optional
        Sizes and seed; defaults otherwise.
    paragraphs : sequence of str, optional
        Human paragraphs; the Brown corpus
        (:func:`~synthfilter.simulate.corpus.load_human_paragraphs`) by default.
    regime_options : dict, optional
        Constructor options per regime name, e.g.
        ``{"synthfilter": {"detector": "shipped"}}``.
    progress : callable, optional
        Called as ``progress(regime_name, generation)`` after each generation.

    Returns
    -------
    TextSimulationResult

    Raises
    ------
    ConfigError
        If the sizes do not fit the data, a regime is unknown, or a regime
        returns an empty or foreign training set.
    """
    config = config or TextSimulationConfig()
    regime_options = regime_options or {}
    if paragraphs is None:
        from synthfilter.simulate.corpus import load_human_paragraphs

        paragraphs = load_human_paragraphs()
    paragraphs = list(paragraphs)
    config.check(len(paragraphs))
    built = [make_regime(r, **regime_options.get(r, {})) if isinstance(r, str) else r for r in regimes]
    names = [r.name for r in built]
    if len(set(names)) != len(names):
        raise ConfigError(f"regime names must be unique, got {names}")

    started = time.perf_counter()
    order = _rng(config.seed, "split").permutation(len(paragraphs))
    gold_texts = [paragraphs[i] for i in order[: config.n_gold]]
    test_texts = [paragraphs[i] for i in order[config.n_gold : config.n_gold + config.n_test]]
    n_seen = config.n_gold + config.n_test
    holdout = tuple(paragraphs[i] for i in order[n_seen : n_seen + config.n_holdout])
    pool = [paragraphs[i] for i in order[n_seen + config.n_holdout :]]
    gold = pl.DataFrame({"id": [f"gold-{i:05d}" for i in range(len(gold_texts))], "text": gold_texts})

    vocab = Vocabulary.from_texts(paragraphs)
    gold_counts = token_counts(gold_texts)
    gold_types = set(gold_counts)
    rare_types = {t for t, c in gold_counts.items() if c <= config.rare_max_count}

    def fit(texts: Sequence[str]) -> NGramLM:
        return NGramLM(vocab, order=config.order, sampling=config.sampling).fit(texts)

    def sample(model: NGramLM, n: int, rng: np.random.Generator) -> list[str]:
        return sample_paragraphs(model, n, rng, config.min_chars, config.max_chars)

    def fresh_batch(t: int) -> list[str]:
        if config.n_fresh == 0:
            return []
        start = (t - 1) * config.n_fresh
        out: list[str] = []
        while len(out) < config.n_fresh:
            cycle, offset = divmod(start + len(out), len(pool))
            perm = _rng(config.seed, "fresh", cycle).permutation(len(pool))
            take = min(config.n_fresh - len(out), len(pool) - offset)
            out.extend(pool[i] for i in perm[offset : offset + take])
        return out

    monitor_fn = None
    if config.monitor:
        from synthfilter.encoders import get_encoder
        from synthfilter.monitor import batch_metrics

        encoder = get_encoder("static", cache=False)
        gold_emb = encoder.encode(gold_texts)

        def monitor_fn(samples: list[str]) -> dict[str, Any]:
            values = batch_metrics(encoder.encode(samples), gold_emb, texts=samples, reference_texts=gold_texts)
            return {f"monitor_{name}": values[name] for name in ("recall", "tail_recall", "mmd_rbf")}

    def measure(model: NGramLM, train_texts: Sequence[str], rng: np.random.Generator) -> dict[str, Any]:
        counts = token_counts(train_texts)
        samples = sample(model, config.n_eval_samples, rng)
        extra = monitor_fn(samples) if monitor_fn is not None else {}
        return {
            **extra,
            "perplexity": model.perplexity(test_texts),
            "types_kept": survival(gold_types, counts),
            "rare_kept": survival(rare_types, counts),
            "distinct_1": distinct_n(samples, 1),
            "distinct_2": distinct_n(samples, 2),
            "tv_unigram": tv_distance(counts, gold_counts),
            "n_train": len(train_texts),
        }

    model0 = fit(gold_texts)
    base = measure(model0, gold_texts, _rng(config.seed, "eval", 0))
    ppl0 = base["perplexity"]
    rows: list[dict[str, Any]] = []
    info: dict[str, Any] = {
        "config": asdict(config),
        "data": {"paragraphs": len(paragraphs), "gold": len(gold_texts), "test": len(test_texts),
                 "holdout": len(holdout),
                 "fresh_pool": len(pool), "vocabulary": len(vocab), "gold_types": len(gold_types),
                 "rare_types": len(rare_types)},
        "regimes": {},
    }

    for regime in built:
        name = regime.name
        rows.append({"regime": name, "generation": 0, **base, "perplexity_ratio": 1.0,
                     "synthetic_share": 0.0, "detector_auroc": None})
        model = model0
        regime_info: dict[str, Any] = {"seconds": [], "rebuild": []}
        for t in range(1, config.generations + 1):
            t_start = time.perf_counter()
            synth = sample(model, config.n_synthetic, _rng(config.seed, "synthetic", name, t))
            fresh = fresh_batch(t)
            texts = synth + fresh
            truth = np.array([True] * len(synth) + [False] * len(fresh))
            perm = _rng(config.seed, "shuffle", name, t).permutation(len(texts))
            candidates = pl.DataFrame({
                "id": [f"g{t:03d}-{j:06d}" for j in range(len(texts))],
                "text": [texts[i] for i in perm],
                "generation": [t] * len(texts),
                "is_synthetic": truth[perm],
            })
            view = candidates if getattr(regime, "uses_labels", False) else candidates.drop("is_synthetic")
            previous = model
            context = GenerationContext(
                generation=t, seed=config.seed, holdout=holdout,
                sample_previous=lambda n, rng, m=previous: sample(m, n, rng),
            )
            chosen = regime.select(view, gold, _rng(config.seed, "regime", name, t), context)
            if not isinstance(chosen, pl.DataFrame) or "text" not in chosen.columns or "id" not in chosen.columns:
                raise ConfigError(f"regime '{name}' must return a polars DataFrame with 'id' and 'text'")
            if chosen.height == 0:
                raise ConfigError(f"regime '{name}' chose an empty training set at generation {t}")
            known = set(candidates.get_column("id").to_list()) | set(gold.get_column("id").to_list())
            known |= set(regime_info.get("_ids", set()))
            ids = chosen.get_column("id").to_list()
            if not set(ids) <= known:
                raise ConfigError(f"regime '{name}' returned ids that are neither candidates nor gold")
            synthetic_ids = regime_info.setdefault("_synthetic_ids", set())
            synthetic_ids.update(candidates.filter(pl.col("is_synthetic")).get_column("id").to_list())
            regime_info.setdefault("_ids", set()).update(candidates.get_column("id").to_list())
            train_texts = chosen.get_column("text").to_list()
            model = fit(train_texts)
            row = measure(model, train_texts, _rng(config.seed, "eval", name, t))
            decisions = getattr(regime, "last_decisions_", None)
            auroc = None
            if decisions is not None:
                scored = decisions.join(candidates.select("id", "is_synthetic"), on="id", how="inner")
                auroc = _auroc(scored.get_column("p_synthetic").to_numpy(), scored.get_column("is_synthetic").to_numpy())
                regime_info["rebuild"].append(dict(getattr(regime, "info", {})))
            rows.append({
                "regime": name, "generation": t, **row, "perplexity_ratio": row["perplexity"] / ppl0,
                "synthetic_share": sum(i in synthetic_ids for i in ids) / len(ids), "detector_auroc": auroc,
            })
            regime_info["seconds"].append(round(time.perf_counter() - t_start, 3))
            if progress is not None:
                progress(name, t)
        regime_info.pop("_ids", None)
        regime_info.pop("_synthetic_ids", None)
        info["regimes"][name] = regime_info
    info["seconds"] = round(time.perf_counter() - started, 3)
    columns = TEXT_COLUMNS + (MONITOR_COLUMNS if config.monitor else ())
    overrides = {c: pl.Float64 for c in ("detector_auroc", *MONITOR_COLUMNS) if c in columns}
    table = pl.DataFrame(rows, schema_overrides=overrides).select(columns)
    return TextSimulationResult(table=table, info=info)
