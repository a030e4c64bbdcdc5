"""Data regimes of the text simulation: how each generation's training set is made.

A regime is any object with a ``name``, a ``uses_labels`` flag and a method
``select(candidates, gold, rng, context=None) -> polars.DataFrame``:

* ``candidates`` holds this generation's candidate records: ``id``, ``text``,
  ``generation``, and, only when ``uses_labels`` is true, the truth
  ``is_synthetic``. The simulation removes the truth column before it calls a
  regime that does not declare it needs labels, so a filtering regime cannot
  peek at them.
* ``gold`` is the trusted human set (``id``, ``text``): generation 0's
  training data.
* ``rng`` is a :class:`numpy.random.Generator` seeded per regime and generation.
* ``context`` (:class:`GenerationContext`) gives the generation number and a
  way to draw fresh samples from the previous generation's model, the one
  that produced the synthetic candidates.

It returns the training set for this generation's model: a frame with at
least ``id`` and ``text``, whose ids are candidate or gold ids. A regime may
keep state between generations (``accumulate`` does); the simulation builds a
fresh one per run through :func:`make_regime`.

Built-in regimes
----------------
``replace``
    The model's own samples only (a reference scenario; it reads labels to
    drop the human candidates).
``naive_mix``
    Every candidate, synthetic and fresh human at their natural ratio, no filter.
``gold_mix``
    Gold plus every candidate, no filter: what keeping the gold set buys
    without a detector.
``accumulate``
    Gold plus every candidate of every generation so far.
``synthfilter``
    :func:`synthfilter.rebuild.rebuild` over the candidates with the gold set
    and a :class:`~synthfilter.rebuild.RebuildPolicy` (cap on the expected
    synthetic share, protection of rare human-looking records, dedup). The
    probabilities come from a real detector, never from the labels: by default
    an :class:`~synthfilter.origin.OriginScorer` fitted in the loop on gold
    (human) against fresh samples of the previous model (machine) (see
    :class:`SynthfilterRegime`), or the shipped detector.
``oracle``
    The same rebuild and policy, with ``p_synthetic`` set to the true label:
    the best any detector could do under this policy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import polars as pl

from synthfilter.errors import ConfigError

__all__ = [
    "DEFAULT_TEXT_REGIMES",
    "REGIMES",
    "AccumulateRegime",
    "GenerationContext",
    "GoldMixRegime",
    "NaiveMixRegime",
    "OracleRegime",
    "Regime",
    "ReplaceRegime",
    "SynthfilterRegime",
    "make_regime",
]


@dataclass(frozen=True)
class GenerationContext:
    """What a regime may know about the generation it is building data for.

    Attributes
    ----------
    generation : int
        The generation whose training set is being chosen (1, 2, ...).
    sample_previous : callable
        ``sample_previous(n, rng) -> list[str]`` draws ``n`` new paragraphs from
        the previous generation's model (the generator of the synthetic candidates).
    seed : int
        The simulation's seed.
    holdout : sequence of str
        Human paragraphs that no generation's model ever trained on (the
        simulation sets them aside at the start). A detector calibrated on
        gold, which every generator has seen, rates unseen human text as more
        human than its calibration set and so underestimates the candidates'
        synthetic share (with the default sizes and seed 0: 0.786 instead of
        0.833 at generation 1, and a realised output share of 0.21-0.24 under
        a 0.2 cap); calibrating on these paragraphs removes that bias.
    """

    generation: int
    sample_previous: Callable[[int, np.random.Generator], list[str]]
    seed: int = 0
    holdout: tuple[str, ...] = ()


class Regime(Protocol):
    """The regime protocol (see the module docstring)."""

    name: str
    uses_labels: bool

    def select(
        self,
        candidates: pl.DataFrame,
        gold: pl.DataFrame,
        rng: np.random.Generator,
        context: GenerationContext | None = None,
    ) -> pl.DataFrame:
        """Return this generation's training set (``id``, ``text``, ...)."""
        ...


class ReplaceRegime:
    """Train on the previous model's samples only."""

    name = "replace"
    uses_labels = True

    def select(self, candidates, gold, rng, context=None):
        return candidates.filter(pl.col("is_synthetic"))


class NaiveMixRegime:
    """Train on every candidate (synthetic and fresh human), unfiltered."""

    name = "naive_mix"
    uses_labels = False

    def select(self, candidates, gold, rng, context=None):
        return candidates


class GoldMixRegime:
    """Train on gold plus every candidate, unfiltered."""

    name = "gold_mix"
    uses_labels = False

    def select(self, candidates, gold, rng, context=None):
        return pl.concat([gold.select("id", "text"), candidates.select("id", "text")])


class AccumulateRegime:
    """Train on gold plus all candidates of all generations so far (the data only grows)."""

    name = "accumulate"
    uses_labels = False

    def __init__(self) -> None:
        self._seen: list[pl.DataFrame] = []

    def select(self, candidates, gold, rng, context=None):
        self._seen.append(candidates.select("id", "text"))
        return pl.concat([gold.select("id", "text"), *self._seen])


@dataclass
class _RebuildRegime:
    """Shared part of ``synthfilter`` and ``oracle``: call rebuild, keep its diagnostics."""

    policy: Any = None
    encoder: str = "static"
    k: int = 10
    info: dict[str, Any] = field(default_factory=dict)

    def _policy(self):
        from synthfilter.rebuild import RebuildPolicy

        return self.policy if self.policy is not None else RebuildPolicy(max_synthetic=0.2)

    def _rebuild(self, candidates: pl.DataFrame, gold: pl.DataFrame, model: Any) -> pl.DataFrame:
        from synthfilter.encoders import get_encoder
        from synthfilter.rebuild import rebuild

        result = rebuild(
            candidates, gold.select("id", "text"), self._policy(), model=model,
            encoder=get_encoder(self.encoder, cache=False), k=self.k,
        )
        sel = result.selection
        self.info = {
            "estimated_candidate_share": float(sel.candidate_share.share),
            "expected_output_share": float(sel.output_share.share),
            "by_reason": dict(result.counts.get("by_reason", {})),
        }
        self.last_decisions_ = result.decisions
        return result.training.select("id", "text")


@dataclass
class SynthfilterRegime(_RebuildRegime):
    """Rebuild each generation with a real detector in the loop.

    Parameters
    ----------
    policy : RebuildPolicy, optional
        ``RebuildPolicy(max_synthetic=0.2)`` (which protects rare records at
        ``keep_rare=0.95``, dedups, and fills the training set up to the cap
        with the most human-looking candidates whose adjusted ``p`` is at most
        ``max_p=0.9``) by default; ``max_p=1.0`` fills the cap with model
        samples even when the detector is sure of them.
    detector : {"inloop", "shipped"} or OriginScorer, default "inloop"
        ``"inloop"``: each generation fits an
        :class:`~synthfilter.origin.OriginScorer` on gold paragraphs
        (label 0) against as many *fresh* samples of the
        previous model (label 1), drawn through ``context.sample_previous``;
        the candidates and their labels are never used for fitting. This is
        the setting of a trainer who owns the model whose output pollutes its
        data. ``"shipped"``: the packaged detector, trained on other
        generators (a zero-shot test on n-gram text). A fitted scorer is used
        as given. Measured with the defaults (seed 0): the in-loop detector
        reaches AUROC 0.997-0.999 on the candidates (its n-gram likelihood
        block recognises n-gram text); ``origin-v3`` (shipped then) scores the
        n-gram samples about as human as fresh Brown paragraphs (mean AUROC
        0.43; 0.47 with ``origin-v2``), so under it the rebuild filters
        almost nothing.
        That is why the in-loop detector is the default: the pollutant here is
        a generator the shipped model never saw, and its training data (Brown
        included) is what the n-gram model imitates.
    encoder : str, default "static"
        Encoder of the detector's embedding block and of rebuild's tail stage.
    n_detector_samples : int, optional
        Paragraphs per class for each in-loop fit: that many gold paragraphs
        and as many model samples; all of gold by default.
    detector_params : dict, optional
        Further :class:`~synthfilter.origin.OriginScorer` parameters of the
        in-loop detector (``encoder`` and ``seed`` are set by the regime).
        Its classifier is ``"linear"`` unless these say otherwise: one fit per
        generation, and already at AUROC 0.997-0.999 on n-gram text.
    k : int, default 10
        Neighbours of the tail stage.
    """

    detector: Any = "inloop"
    n_detector_samples: int | None = None
    detector_params: dict[str, Any] = field(default_factory=dict)
    name: str = "synthfilter"
    uses_labels: bool = False

    def _scorer(self, gold: pl.DataFrame, rng: np.random.Generator, context: GenerationContext | None):
        from synthfilter.origin import OriginScorer, load_model

        if isinstance(self.detector, OriginScorer):
            return self.detector
        if self.detector == "shipped":
            return load_model()
        if self.detector != "inloop":
            raise ConfigError(f"detector must be 'inloop', 'shipped' or an OriginScorer, not {self.detector!r}")
        if context is None:
            raise ConfigError("the in-loop detector needs a GenerationContext to sample the previous model")
        texts = gold.get_column("text").to_list()
        n = len(texts) if self.n_detector_samples is None else min(self.n_detector_samples, len(texts))
        human = [texts[i] for i in np.sort(rng.choice(len(texts), size=n, replace=False))]
        machine = context.sample_previous(n, rng)
        seed = int(rng.integers(2**31 - 1))
        scorer = OriginScorer(**{"classifier": "linear", **self.detector_params, "encoder": self.encoder, "seed": seed})
        holdout = list(context.holdout)
        if not holdout:
            return scorer.fit(human + machine, [0] * len(human) + [1] * len(machine))
        # Calibrate on human text no generator has seen, against as many fresh samples.
        calib_machine = context.sample_previous(len(holdout), rng)
        return scorer.fit(
            human + machine, [0] * len(human) + [1] * len(machine),
            calib_texts=holdout + calib_machine, calib_y=[0] * len(holdout) + [1] * len(calib_machine),
        )

    def select(self, candidates, gold, rng, context=None):
        if "is_synthetic" in candidates.columns:
            raise ConfigError("the synthfilter regime must not see the true labels; drop 'is_synthetic'")
        scorer = self._scorer(gold, rng, context)
        return self._rebuild(candidates.select("id", "text"), gold, scorer)


@dataclass
class OracleRegime(_RebuildRegime):
    """Rebuild each generation with the true labels as ``p_synthetic`` (same policy)."""

    name: str = "oracle"
    uses_labels: bool = True

    def select(self, candidates, gold, rng, context=None):
        scored = candidates.select("id", "text", pl.col("is_synthetic").cast(pl.Float64).alias("p_synthetic"))
        return self._rebuild(scored, gold, None)


#: Registered regime factories by name.
REGIMES: dict[str, Callable[..., Any]] = {
    "replace": ReplaceRegime,
    "naive_mix": NaiveMixRegime,
    "gold_mix": GoldMixRegime,
    "accumulate": AccumulateRegime,
    "synthfilter": SynthfilterRegime,
    "oracle": OracleRegime,
}
#: Regimes the text comparison runs by default.
DEFAULT_TEXT_REGIMES = ("replace", "naive_mix", "gold_mix", "accumulate", "synthfilter", "oracle")


def make_regime(regime: str, /, **options: Any) -> Any:
    """Build a fresh regime by registered name; ``options`` go to its constructor.

    ``options`` may include ``name`` to run a second copy under another label,
    e.g. ``make_regime("synthfilter", detector="shipped", name="synthfilter_shipped")``.

    Raises
    ------
    ConfigError
        If the name is not registered.
    """
    if regime not in REGIMES:
        raise ConfigError(f"unknown text regime '{regime}'; choose one of {', '.join(REGIMES)}")
    return REGIMES[regime](**options)
