"""The stages of a scoring pipeline, independent of the engine that runs them.

Per-record stages (:mod:`synthfilter.stages.records`) and global stages
(:mod:`synthfilter.stages.tails`, :mod:`synthfilter.stages.share`); see
:mod:`synthfilter.engine.base` for the two contracts.
"""

from synthfilter.stages.records import EncodeStage, OriginRecordStage, SketchStage
from synthfilter.stages.share import ShareStage
from synthfilter.stages.tails import TailGlobalStage

__all__ = ["EncodeStage", "OriginRecordStage", "ShareStage", "SketchStage", "TailGlobalStage"]
