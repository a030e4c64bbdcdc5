"""synthfilter: keep training data anchored in human text.

Public API::

    from synthfilter import score, TailScorer, OriginScorer, rebuild, RebuildPolicy

See the README for the command line.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "score": "synthfilter.scoring",
    "score_with_report": "synthfilter.scoring",
    "register_stage": "synthfilter.scoring",
    "TailScorer": "synthfilter.tails",
    "OriginScorer": "synthfilter.origin",
    "load_model": "synthfilter.origin",
    "estimate_share": "synthfilter.share",
    "ShareEstimate": "synthfilter.share",
    "get_encoder": "synthfilter.encoders",
    "read_corpus": "synthfilter.io",
    "rebuild": "synthfilter.rebuild",
    "RebuildPolicy": "synthfilter.rebuild",
    "SynthfilterError": "synthfilter.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    """Import public names lazily, so ``import synthfilter`` stays light."""
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'synthfilter' has no attribute {name!r}")
