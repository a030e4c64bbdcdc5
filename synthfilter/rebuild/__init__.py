"""Rebuild a training set: cap the synthetic share, keep gold and rare records, log every decision.

The mitigations against model collapse, as one stage:

* gold (trusted human) records are always kept and never altered, and their
  files are hashed before reading and after writing;
* near-duplicate clusters, computed jointly over candidates and gold, keep one
  representative (gold first, then the most human-looking);
* rare records that look human are protected; rare records that look
  synthetic are not;
* the rest are chosen, most human-looking first, so that the *expected*
  synthetic share of the output (gold included, at 0) stays under a cap;
* ``min_gold_share`` and ``target_size`` bound the size; a policy that cannot
  be met is an error that says what is possible, never a silent shortfall.

The cap is a statistical guarantee under the detector's calibrated
probabilities and is exactly as good as the detector; see
:mod:`synthfilter.rebuild.selection`.

Examples
--------
>>> from synthfilter.rebuild import RebuildPolicy, rebuild, write_rebuild   # doctest: +SKIP
>>> result = rebuild(scored, gold=human, policy=RebuildPolicy(max_synthetic=0.2))
>>> write_rebuild(result, "train.parquet")
"""

from synthfilter.rebuild.outputs import check_output_paths, default_paths, write_rebuild
from synthfilter.rebuild.pipeline import RebuildResult, rebuild
from synthfilter.rebuild.policy import RebuildPolicy
from synthfilter.rebuild.selection import Selection, expected_share, select

__all__ = [
    "RebuildPolicy",
    "RebuildResult",
    "Selection",
    "check_output_paths",
    "default_paths",
    "expected_share",
    "rebuild",
    "select",
    "write_rebuild",
]
