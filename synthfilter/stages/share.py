"""Global stage: the corpus's synthetic share from the per-record probabilities.

When the run has a gold reference (``score --reference``) whose records went
through the origin record stage too, the reference's ``p_synthetic`` column
re-estimates the human side of the share correction
(:meth:`~synthfilter.share.ShareCalibration.with_gold_human`): the reference
is the user's own human text, so what human text of the corpus's domain
scores is measured there instead of on the detector's calibration split.
``correction`` chooses otherwise (``score --share-correction``): the
calibration split's correction whatever the reference, or the gold-mixture
correction (:meth:`~synthfilter.share.ShareCalibration.with_gold_mixture`),
which reads the share as a mixture proportion against the reference. A
gold-human estimate is checked against the gold-mixture one
(:func:`~synthfilter.share.machine_side_check`, the manifest's
``origin.share_check``): when the latter's whole interval lies above it, the
corpus probably holds a generator the detector has not seen.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from synthfilter.engine.base import Columns, GlobalContext, RecordSet
from synthfilter.errors import ConfigError
from synthfilter.share import (
    CALIBRATION_SPLIT,
    CORRECTIONS,
    GOLD_HUMAN,
    GOLD_MIXTURE,
    MIN_GOLD,
    machine_side_check,
)

#: Share corrections a run can ask for: ``auto`` (gold-human with enough gold, else the calibration split's) or one.
SHARE_CORRECTIONS = ("auto", *CORRECTIONS)


def check_share_correction(correction: str, n_gold: int | None) -> None:
    """Refuse a share correction the run cannot apply, before any work.

    Parameters
    ----------
    correction : str
        One of :data:`SHARE_CORRECTIONS`.
    n_gold : int or None
        Gold (reference) records the run has; ``None`` when it has none,
        ``-1`` when it has some but their number is not known yet.

    Raises
    ------
    ConfigError
        For an unknown correction, or a gold correction without gold or with
        fewer than :data:`~synthfilter.share.MIN_GOLD` gold records.
    """
    if correction not in SHARE_CORRECTIONS:
        raise ConfigError(f"share correction must be one of {', '.join(SHARE_CORRECTIONS)}, not {correction!r}")
    if correction in (GOLD_HUMAN, GOLD_MIXTURE):
        if n_gold is None:
            raise ConfigError(f"the {correction} share correction needs gold human records: give a reference "
                              "(score --reference, rebuild --gold), or choose --share-correction calibration-split")
        if 0 <= n_gold < MIN_GOLD:
            raise ConfigError(f"the {correction} share correction needs at least {MIN_GOLD} gold records, got "
                              f"{n_gold}; give more, or choose --share-correction calibration-split")


def apply_share_correction(base: Any, correction: str, gold_p: np.ndarray | None,
                           groups: Any = None) -> tuple[Any, str | None]:
    """The share calibration a run's correction asks for, and why the gold was left out when it was.

    Parameters
    ----------
    base : ShareCalibration
        The detector's own share calibration.
    correction : str
        One of :data:`SHARE_CORRECTIONS`. ``"auto"`` takes the gold-human
        correction with at least :data:`~synthfilter.share.MIN_GOLD` gold
        records and the calibration split's otherwise (with a note).
    gold_p : numpy.ndarray or None
        Calibrated probabilities of the gold records, if any.
    groups : sequence, optional
        Document id of each gold record.

    Returns
    -------
    calibration : ShareCalibration
    note : str or None

    Raises
    ------
    ConfigError
        Where a gold correction was asked for without enough gold.
    """
    check_share_correction(correction, None if gold_p is None else int(gold_p.size))
    if correction == CALIBRATION_SPLIT or gold_p is None:
        return base, None
    if correction == GOLD_MIXTURE:
        return base.with_gold_mixture(gold_p, groups=groups), None
    if gold_p.size < MIN_GOLD:  # auto
        return base, (f"{gold_p.size} gold records, fewer than the {MIN_GOLD} the gold-human correction needs: "
                      "the calibration split's was used")
    return base.with_gold_human(gold_p, groups=groups), None


class ShareStage:
    """The synthetic share with its 95 % interval; reports the detector's ids.

    Parameters
    ----------
    model : "default", path or OriginScorer
        The detector whose share calibration corrects the probabilities.
    trusted : bool, default False
        Allow pickle/joblib model files.
    gold_correction : bool, default True
        With a scored reference (``ctx.reference`` has ``p_synthetic``) of at
        least :data:`~synthfilter.share.MIN_GOLD` records, take the human side
        of the correction from it; ``False`` keeps the calibration split's
        (as ``correction="calibration-split"``).
    correction : {"auto", "calibration-split", "gold-human", "gold-mixture"}, default "auto"
        The share correction (see :func:`apply_share_correction`); a gold
        one needs a scored reference of at least ``MIN_GOLD`` records.
    """

    name = "share"

    def __init__(self, model: Any = "default", trusted: bool = False, gold_correction: bool = True,
                 detector: str = "fast", cascade: Any = None, correction: str = "auto") -> None:
        check_share_correction(correction, -1)
        self.model, self.trusted, self.gold_correction = model, trusted, gold_correction
        self.detector, self.cascade, self.correction = detector, cascade, correction

    def run(self, records: RecordSet, ctx: GlobalContext) -> Columns:
        """Estimate the share; adds no column."""
        from synthfilter.origin import OriginScorer, load_model
        from synthfilter.share import estimate_share

        scorer = self.model if isinstance(self.model, OriginScorer) else load_model(self.model, trusted=self.trusted)
        calibration = scorer.share_calibration_ if self.detector == "fast" else self.cascade.share_calibration(
            self.detector)
        gold_p = _reference_probabilities(ctx.reference)
        correction = CALIBRATION_SPLIT if not self.gold_correction and self.correction == "auto" else self.correction
        calibration, note = apply_share_correction(calibration, correction, gold_p)
        if note is not None:
            note = f"the reference has {note}"  # e.g. "12 gold records, fewer than the 20 ..."
        p = records.columns["p_synthetic"]
        share = estimate_share(p, calibration, groups=ctx.groups, seed=ctx.seed)
        ctx.info["origin"] = {
            "model": scorer.model_id_,
            "encoder": getattr(scorer, "encoder_id_", None),
            "synthetic_share": share.to_dict(),
        }
        check = share_check(p, share, calibration, groups=ctx.groups, seed=ctx.seed)
        if check is not None:
            ctx.info["origin"]["share_check"] = check
        if self.detector != "fast":
            sent = np.asarray(records.columns["lm_scored"], dtype=bool)
            ctx.info["origin"]["detector"] = {**self.cascade.describe(self.detector), "lm_records": int(sent.sum()),
                                              "lm_fraction": round(float(sent.mean()) if sent.size else 0.0, 6),
                                              "lm_seconds": getattr(self.cascade, "last_stats_", {}).get("lm_seconds")}
        else:
            ctx.info["origin"]["detector"] = {"mode": "fast", "model": scorer.model_id_}
        if note is not None:
            ctx.info["origin"]["share_correction_note"] = note
        return {}


def share_check(p_synthetic: np.ndarray, estimate: Any, calibration: Any, *, groups: Any = None,
                seed: int = 0) -> dict | None:
    """For a gold-human estimate, :func:`~synthfilter.share.machine_side_check` against its gold; else ``None``.

    Parameters
    ----------
    p_synthetic : numpy.ndarray
        The probabilities the estimate was made from.
    estimate : ShareEstimate
    calibration : ShareCalibration
        The calibration it was made with (its ``p_human`` is the gold's).
    groups : sequence, optional
        Document id of each record.
    seed : int, default 0

    Returns
    -------
    dict or None
        What :func:`~synthfilter.share.machine_side_check` returns, for the
        manifest's ``share_check``.
    """
    if estimate.correction != GOLD_HUMAN:
        return None
    return machine_side_check(np.asarray(p_synthetic, dtype=np.float64), estimate, calibration,
                              calibration.p_human, groups=groups, seed=seed)


def _reference_probabilities(reference: RecordSet | None) -> np.ndarray | None:
    """The reference's ``p_synthetic`` when it was scored by the origin record stage."""
    if reference is None or "p_synthetic" not in reference.columns:
        return None
    return np.asarray(reference.columns["p_synthetic"], dtype=np.float64)


def gold_calibration(scorer: Any, gold_texts: list[str], groups: Any = None,
                     correction: str = "auto") -> tuple[Any, str | None]:
    """The detector's share calibration corrected with gold texts, where there are enough.

    The gold is scored through the detector's score cache
    (:class:`~synthfilter.cache.CachedDetector`), so a run that scored it
    already (the rebuild's gold check) does not pay again.

    Parameters
    ----------
    scorer : OriginScorer
        The detector that scored (or scores) the corpus.
    gold_texts : list of str
        Trusted human texts.
    groups : sequence, optional
        Document id of each gold text, for a cluster bootstrap.
    correction : {"auto", "calibration-split", "gold-human", "gold-mixture"}, default "auto"
        As for :func:`apply_share_correction`.

    Returns
    -------
    calibration : ShareCalibration
        ``correction="gold-human"`` (``auto``), or the model's own with fewer
        than :data:`~synthfilter.share.MIN_GOLD` gold texts; what
        ``correction`` names otherwise.
    note : str or None
        Why the gold was not used, when it was not.

    Raises
    ------
    ConfigError
        Where a gold correction was asked for without enough gold.
    """
    from synthfilter.cache import CachedDetector

    base = scorer.share_calibration_
    check_share_correction(correction, len(gold_texts))
    if correction == CALIBRATION_SPLIT:
        return base, None
    if len(gold_texts) < MIN_GOLD:  # auto
        return apply_share_correction(base, correction, np.zeros(len(gold_texts)))
    raw = np.asarray(CachedDetector(scorer).decision_function(list(gold_texts)), dtype=np.float64)
    return apply_share_correction(base, correction, scorer.calibrate(raw), groups=groups)
