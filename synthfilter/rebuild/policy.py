"""The rebuild policy: what a training set must satisfy, with its seed inside."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from numbers import Integral, Real
from typing import Any

from synthfilter.errors import ConfigError

#: Reasons a record is kept.
GOLD = "gold"
PROTECTED_RARE = "protected-rare"
SELECTED = "selected"
#: Reasons a record is dropped (``duplicate-of:<id>`` carries the kept record's id).
DUPLICATE_PREFIX = "duplicate-of:"
OVER_SYNTHETIC_CAP = "over-synthetic-cap"
LOOKS_SYNTHETIC = "looks-synthetic"
OVER_TARGET_SIZE = "over-target-size"
UNDER_MIN_GOLD_SHARE = "under-min-gold-share"

KEPT_REASONS = (GOLD, PROTECTED_RARE, SELECTED)
DROPPED_REASONS = (
    DUPLICATE_PREFIX + "<id>", LOOKS_SYNTHETIC, OVER_SYNTHETIC_CAP, OVER_TARGET_SIZE, UNDER_MIN_GOLD_SHARE
)


def _fraction(name: str, option: str, value: Any, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise ConfigError(f"{option} must be a number between 0 and 1, not {value!r}")
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{option} must be between 0 and 1, not {value:g}")
    return value


@dataclass(frozen=True)
class RebuildPolicy:
    """What a rebuilt training set must satisfy.

    The policy is validated on construction and is immutable; the seed is part
    of it, so one object fully describes a run's configuration.

    Parameters
    ----------
    max_synthetic : float, default 0.2
        Cap on the *expected* synthetic share of the output, gold included in
        the denominator (gold counts as 0). In [0, 1].
    min_gold_share : float, default 0.0
        Least share of gold records in the output; it bounds the output size
        by ``n_gold / min_gold_share``. In [0, 1].
    target_size : int, optional
        Exact number of records in the output (gold included). ``None`` keeps
        as many records as the other constraints allow.
    keep_rare : float or None, default 0.95
        Rarity level to protect: a candidate whose ``rarity`` (the percentile
        of its k-NN distance among the reference's own, the gold set when one
        is given) is at least this, and which looks human (see
        ``rare_max_p``), is kept whatever the size limits, and counts against
        the cap. ``None`` protects nothing.
    rare_max_p : float, default 0.5
        A rare record looks human when its prior-adjusted probability of being
        synthetic is at most this. Rare records that look synthetic are not
        protected: a generator's odd outputs are not the real tail.
    max_p : float, default 0.9
        Candidates whose prior-adjusted probability of being synthetic is
        above this are never selected (``looks-synthetic``): the cap is a
        tolerance for the detector's uncertainty, not a quota to fill with
        text it is sure a model wrote. Under it the output is filled, most
        human-looking records first. Measured: on real held-out pools
        (``benchmarks/rebuild``) 0.9 keeps the same human and rare records as
        1.0 at caps up to 0.2 (at 0.4 the cap is left unfilled); in the
        collapse simulation, filling a 0.2 cap with confidently machine text
        (1.0) raised held-out perplexity by 12 % at the first generation even
        with true labels, 0.9 kept it within 4 %. 1.0 fills up to the cap
        whatever the records look like; 0.5 adds no record the detector takes
        for machine text (less synthetic text, fewer human records).
    dedup : bool, default True
        Keep one representative per near-duplicate cluster (gold first, then
        the most human-looking, then the smallest id).
    seed : int, default 0
        Seed for every random step (scoring raw inputs, the share bootstrap).

    Raises
    ------
    ConfigError
        If a value is out of range or of the wrong type.

    Examples
    --------
    >>> RebuildPolicy(max_synthetic=0.1, seed=3).max_synthetic
    0.1
    """

    max_synthetic: float = 0.2
    min_gold_share: float = 0.0
    target_size: int | None = None
    keep_rare: float | None = 0.95
    rare_max_p: float = 0.5
    max_p: float = 0.9
    dedup: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "max_synthetic", _fraction("max_synthetic", "--max-synthetic", self.max_synthetic))
        set_(self, "min_gold_share", _fraction("min_gold_share", "--min-gold-share", self.min_gold_share))
        set_(self, "keep_rare", _fraction("keep_rare", "--keep-rare", self.keep_rare, allow_none=True))
        set_(self, "rare_max_p", _fraction("rare_max_p", "--rare-max-p", self.rare_max_p))
        set_(self, "max_p", _fraction("max_p", "--max-p", self.max_p))
        if self.target_size is not None:
            if isinstance(self.target_size, bool) or not isinstance(self.target_size, Integral):
                raise ConfigError(f"--target-size must be a whole number, not {self.target_size!r}")
            if self.target_size < 1:
                raise ConfigError(f"--target-size must be at least 1, not {self.target_size}")
            set_(self, "target_size", int(self.target_size))
        if not isinstance(self.dedup, bool):
            raise ConfigError(f"dedup must be True or False, not {self.dedup!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, Integral) or self.seed < 0:
            raise ConfigError(f"--seed must be a non-negative whole number, not {self.seed!r}")
        set_(self, "seed", int(self.seed))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as recorded in the manifest."""
        return asdict(self)
