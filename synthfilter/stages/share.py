"""Global stage: the corpus's synthetic share from the per-record probabilities.

When the run has a gold reference (``score --reference``) whose records went
through the origin record stage too, the reference's ``p_synthetic`` column
re-estimates the human side of the share correction
(:meth:`~synthfilter.share.ShareCalibration.with_gold_human`): the reference
is the user's own human text, so what human text of the corpus's domain
scores is measured there instead of on the detector's calibration split.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from synthfilter.engine.base import Columns, GlobalContext, RecordSet
from synthfilter.share import MIN_GOLD


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
        of the correction from it; ``False`` keeps the calibration split's.
    """

    name = "share"

    def __init__(self, model: Any = "default", trusted: bool = False, gold_correction: bool = True,
                 detector: str = "fast", cascade: Any = None) -> None:
        self.model, self.trusted, self.gold_correction = model, trusted, gold_correction
        self.detector, self.cascade = detector, cascade

    def run(self, records: RecordSet, ctx: GlobalContext) -> Columns:
        """Estimate the share; adds no column."""
        from synthfilter.origin import OriginScorer, load_model
        from synthfilter.share import estimate_share

        scorer = self.model if isinstance(self.model, OriginScorer) else load_model(self.model, trusted=self.trusted)
        calibration = scorer.share_calibration_ if self.detector == "fast" else self.cascade.share_calibration(
            self.detector)
        note = None
        gold_p = _reference_probabilities(ctx.reference)
        if gold_p is not None and self.gold_correction:
            if gold_p.size >= MIN_GOLD:
                calibration = calibration.with_gold_human(gold_p)
            else:
                note = (f"the reference has {gold_p.size} records, fewer than the {MIN_GOLD} the gold-human "
                        "correction needs: the calibration split's was used")
        share = estimate_share(records.columns["p_synthetic"], calibration, groups=ctx.groups, seed=ctx.seed)
        ctx.info["origin"] = {
            "model": scorer.model_id_,
            "encoder": getattr(scorer, "encoder_id_", None),
            "synthetic_share": share.to_dict(),
        }
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


def _reference_probabilities(reference: RecordSet | None) -> np.ndarray | None:
    """The reference's ``p_synthetic`` when it was scored by the origin record stage."""
    if reference is None or "p_synthetic" not in reference.columns:
        return None
    return np.asarray(reference.columns["p_synthetic"], dtype=np.float64)


def gold_calibration(scorer: Any, gold_texts: list[str], groups: Any = None) -> tuple[Any, str | None]:
    """The detector's share calibration with its human side taken from gold texts, where there are enough.

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

    Returns
    -------
    calibration : ShareCalibration
        ``correction="gold-human"``, or the model's own with fewer than
        :data:`~synthfilter.share.MIN_GOLD` gold texts.
    note : str or None
        Why the gold was not used, when it was not.
    """
    from synthfilter.cache import CachedDetector

    base = scorer.share_calibration_
    if len(gold_texts) < MIN_GOLD:
        return base, (f"{len(gold_texts)} gold records, fewer than the {MIN_GOLD} the gold-human correction needs: "
                      "the calibration split's was used")
    raw = np.asarray(CachedDetector(scorer).decision_function(list(gold_texts)), dtype=np.float64)
    return base.with_gold_human(scorer.calibrate(raw), groups=groups), None
