"""Where the monitor gets ``p_synthetic`` and the synthetic-share estimate from.

The monitor takes any scorer ``p_synthetic(texts) -> numpy.ndarray`` and any
share estimator ``share(p) -> ShareEstimate | (share, low, high)``. Without
them it tries the shipped origin detector
(:func:`synthfilter.origin.load_default_model`); when that is missing or
cannot load, the ``synthetic_share`` metric is reported as null and the reason
is kept as a note: the diversity metrics do not depend on it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from synthfilter.errors import SynthfilterError

__all__ = ["OriginLink", "resolve_origin"]

Scorer = Callable[[Sequence[str]], np.ndarray]


def _as_triple(result: Any) -> tuple[float, float | None, float | None]:
    if hasattr(result, "share"):
        return float(result.share), _opt(getattr(result, "low", None)), _opt(getattr(result, "high", None))
    if isinstance(result, (tuple, list)) and len(result) == 3:
        return float(result[0]), _opt(result[1]), _opt(result[2])
    return float(result), None, None


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass
class OriginLink:
    """A resolved scorer and share function, or the reason there is none.

    Attributes
    ----------
    scorer : callable or None
        ``scorer(texts) -> (n,) array`` of calibrated machine probabilities.
    share_fn : callable or None
        ``share_fn(p) -> (share, low, high)``.
    source : str
        ``"callable"``, the model id, or ``"none"``.
    note : str or None
        Why there is no scorer, or how the share is estimated.
    """

    scorer: Scorer | None
    share_fn: Callable[[np.ndarray], tuple[float, float | None, float | None]] | None
    source: str
    note: str | None = None

    @property
    def available(self) -> bool:
        """Whether ``p_synthetic`` can be computed."""
        return self.scorer is not None

    def p_synthetic(self, texts: Sequence[str]) -> np.ndarray | None:
        """Probabilities for ``texts`` (``None`` when no scorer is available)."""
        if self.scorer is None:
            return None
        p = np.asarray(self.scorer(list(texts)), dtype=np.float64).ravel()
        if p.shape[0] != len(texts):
            raise SynthfilterError(
                f"the p_synthetic scorer returned {p.shape[0]} values for {len(texts)} texts; "
                "it must return one probability per text"
            )
        return np.clip(p, 0.0, 1.0)


def _mean_share(seed: int) -> Callable[[np.ndarray], tuple[float, float, float]]:
    def share(p: np.ndarray) -> tuple[float, float, float]:
        rng = np.random.default_rng(seed)
        boots = p[rng.integers(0, p.size, size=(1000, p.size))].mean(axis=1)
        low, high = np.quantile(boots, [0.025, 0.975])
        return float(p.mean()), float(low), float(high)

    return share


def resolve_origin(
    p_synthetic: Scorer | None = None,
    share_estimator: Callable[[np.ndarray], Any] | None = None,
    *,
    model: Any = "default",
    trusted: bool = False,
    seed: int = 0,
) -> OriginLink:
    """Build the monitor's origin link.

    Parameters
    ----------
    p_synthetic : callable, optional
        ``p_synthetic(texts) -> array`` of calibrated machine probabilities.
        Takes precedence over ``model``.
    share_estimator : callable, optional
        ``share_estimator(p)`` returning a
        :class:`~synthfilter.share.ShareEstimate` (or anything with ``share``,
        ``low``, ``high``) or a ``(share, low, high)`` tuple. By default the
        model's own prior-shift-corrected estimate, else the mean probability
        with a bootstrap interval.
    model : "default", str, Path, OriginScorer or None, default "default"
        The origin detector when no callable is given: ``"default"`` is the
        shipped one, a path loads a model folder, ``None`` disables the metric.
    trusted : bool, default False
        Allow loading pickle/joblib model files.
    seed : int, default 0
        Seed of the share bootstrap.

    Returns
    -------
    OriginLink
    """
    share_fn = None
    if share_estimator is not None:
        def share_fn(p: np.ndarray) -> tuple[float, float | None, float | None]:
            return _as_triple(share_estimator(p))

    if p_synthetic is not None:
        note = None if share_fn else "share = mean p_synthetic (uncorrected) with a bootstrap 95% interval"
        return OriginLink(p_synthetic, share_fn or _mean_share(seed), "callable", note)
    if model is None:
        return OriginLink(None, None, "none", "synthetic_share not computed: no origin model requested")
    if hasattr(model, "predict_proba"):
        scorer_obj = model
    else:
        try:
            from synthfilter.origin import load_model
        except ImportError as exc:  # pragma: no cover - origin ships with the package
            return OriginLink(None, None, "none", f"synthetic_share not computed: origin detector unavailable ({exc})")
        try:
            scorer_obj = load_model(None if str(model) == "default" else model, trusted=trusted)
        except SynthfilterError as exc:
            if str(model) != "default":
                raise
            return OriginLink(None, None, "none", f"synthetic_share not computed: {exc}")
    if share_fn is None and getattr(scorer_obj, "share_calibration_", None) is not None:
        def share_fn(p: np.ndarray) -> tuple[float, float | None, float | None]:
            return _as_triple(scorer_obj.estimate_share(np.asarray(p, dtype=np.float64), seed=seed))

    note = None if share_fn else "share = mean p_synthetic (uncorrected) with a bootstrap 95% interval"
    source = str(getattr(scorer_obj, "model_id_", type(scorer_obj).__name__))
    return OriginLink(
        lambda texts: scorer_obj.predict_proba(list(texts))[:, 1], share_fn or _mean_share(seed), source, note
    )
