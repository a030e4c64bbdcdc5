"""Global stage: the corpus's synthetic share from the per-record probabilities."""

from __future__ import annotations

from typing import Any

from synthfilter.engine.base import Columns, GlobalContext, RecordSet


class ShareStage:
    """The synthetic share with its 95 % interval; reports the detector's ids.

    Parameters
    ----------
    model : "default", path or OriginScorer
        The detector whose share calibration corrects the probabilities.
    trusted : bool, default False
        Allow pickle/joblib model files.
    """

    name = "share"

    def __init__(self, model: Any = "default", trusted: bool = False) -> None:
        self.model, self.trusted = model, trusted

    def run(self, records: RecordSet, ctx: GlobalContext) -> Columns:
        """Estimate the share; adds no column."""
        from synthfilter.origin import OriginScorer, load_model

        scorer = self.model if isinstance(self.model, OriginScorer) else load_model(self.model, trusted=self.trusted)
        share = scorer.estimate_share(records.columns["p_synthetic"], groups=ctx.groups, seed=ctx.seed)
        ctx.info["origin"] = {
            "model": scorer.model_id_,
            "encoder": getattr(scorer, "encoder_id_", None),
            "synthetic_share": share.to_dict(),
        }
        return {}
