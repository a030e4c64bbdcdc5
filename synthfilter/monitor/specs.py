"""What each monitored metric means, its range, and which direction is bad.

:data:`METRICS` is the single registry: the monitor computes these, the CLI
prints them in this order, the HTML report explains them from here.

Metrics are grouped by the failure they signal; an alarm is named after its
group:

``narrowing``
    The batch is less diverse than the reference, or covers less of it
    (lower dispersion, effective dimension, Vendi score, recall, lexical
    variety, length spread).
``tail``
    The batch no longer covers the reference's rare records (tail recall,
    tail mass, tail reach).
``shift``
    The batch's distribution moved away from the reference (precision, MMD,
    Fréchet distance).
``duplication``
    The batch repeats itself (near-duplicate rate).
``synthetic``
    The batch looks machine-written (estimated synthetic share).
``info``
    Reported for context; never alarms.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

__all__ = ["GROUPS", "METRICS", "METRIC_NAMES", "MetricSpec", "get_spec"]

Direction = Literal["low", "high", "none"]


@dataclass(frozen=True)
class MetricSpec:
    """Documentation and alarm settings of one metric.

    Attributes
    ----------
    name : str
        Column name in outputs.
    group : str
        Failure it signals (see module docstring); names the alarm.
    label : str
        Short human-readable name.
    description : str
        What it measures, in one or two sentences.
    value_range : str
        The values it can take.
    bad : {"low", "high", "none"}
        Which direction is bad; ``"none"`` for informational metrics.
    min_scale : float
        Floor on the null spread used for the alarm bound (see
        :class:`~synthfilter.monitor.DiversityMonitor`), so that a metric
        that barely varies between reference samples does not alarm on a
        negligible change.
    needs_reference : bool
        Compares the batch with the reference (else a property of the batch
        alone).
    needs_texts : bool
        Needs the texts, not only the embeddings.
    """

    name: str
    group: str
    label: str
    description: str
    value_range: str
    bad: Direction
    min_scale: float = 0.0
    needs_reference: bool = False
    needs_texts: bool = False

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return asdict(self)


GROUPS = ("narrowing", "tail", "shift", "duplication", "synthetic", "info")

METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "mean_cosine_distance", "narrowing", "dispersion (mean pairwise cosine distance)",
        "Average of 1 - cos(a, b) over all pairs of records in the batch: how far apart records are.",
        "[0, 2]; 0 = all records point the same way", "low", min_scale=0.005,
    ),
    MetricSpec(
        "covariance_trace", "narrowing", "dispersion (trace of covariance)",
        "Total variance of the unit embeddings, i.e. mean squared distance to the batch centroid.",
        "[0, 1]; 0 = all records identical", "low", min_scale=0.005,
    ),
    MetricSpec(
        "participation_ratio", "info", "effective dimensionality (participation ratio)",
        "(sum of covariance eigenvalues)^2 / sum of their squares: how many directions carry the variance. "
        "Low means narrow, but it is reported without an alarm: one long document in a batch can take over "
        "the top direction and move it far more than reference samples suggest (measured with MiniLM); "
        "the effective rank is the alarmed effective dimension.",
        "[0, min(n-1, dim)]; 0 = no variance, 1 = one direction", "none",
    ),
    MetricSpec(
        "effective_rank", "narrowing", "effective rank",
        "exp(entropy of the normalised singular values) of the centred embeddings (Roy & Vetterli 2007).",
        "[0, min(n-1, dim)]; 0 = no variance", "low", min_scale=0.5,
    ),
    MetricSpec(
        "vendi_score", "narrowing", "Vendi score",
        "exp(entropy of the eigenvalues of the cosine-similarity matrix / n): the effective number of "
        "distinct records (Friedman & Dieng 2023).",
        "[1, n]; 1 = one distinct record", "low", min_scale=0.25,
    ),
    MetricSpec(
        "recall", "narrowing", "k-NN recall (support coverage)",
        "Share of reference records inside the batch's k-NN support (Kynkäänniemi et al. 2019): how much "
        "of the reference the batch still covers.",
        "[0, 1]; 1 = covers the whole reference", "low", min_scale=0.01, needs_reference=True,
    ),
    MetricSpec(
        "tail_recall", "tail", "k-NN recall of the rarest decile",
        "Recall over the reference's rarest records only (largest k-NN radius, rarest 10% by default): "
        "does the batch still reach the tail?",
        "[0, 1]; 1 = covers the whole tail", "low", min_scale=0.02, needs_reference=True,
    ),
    MetricSpec(
        "tail_mass", "tail", "share of batch in the reference's tail",
        "Share of batch records whose distance to their k-th nearest reference record reaches the radius of "
        "the reference's rarest decile (a record copied from the reference keeps its own rarity).",
        "[0, 1]; about 0.1 for a fresh reference sample, 0 = no rare records", "low", min_scale=0.01,
        needs_reference=True,
    ),
    MetricSpec(
        "tail_reach", "tail", "reach into the reference's tail",
        "Mean rarity of the batch's rarest tenth (the tail fraction), where a record's rarity is its percentile "
        "among the reference's leave-one-out k-NN radii, taken at its distance to the reference.",
        "[0, 1]; about 0.95 for a fresh reference sample, lower = the batch stops short of the tail", "low",
        min_scale=0.01, needs_reference=True,
    ),
    MetricSpec(
        "precision", "shift", "k-NN precision",
        "Share of batch records inside the reference's k-NN support (Kynkäänniemi et al. 2019): how much "
        "of the batch looks like the reference.",
        "[0, 1]; 1 = every record within the reference", "low", min_scale=0.01, needs_reference=True,
    ),
    MetricSpec(
        "mmd_rbf", "shift", "MMD² (RBF kernel)",
        "Squared maximum mean discrepancy between batch and reference with a Gaussian kernel whose width is "
        "the reference's median pairwise distance (biased V-statistic).",
        "[0, 2]; 0 = same distribution", "high", min_scale=0.0005, needs_reference=True,
    ),
    MetricSpec(
        "frechet_distance", "shift", "Fréchet distance",
        "Squared 2-Wasserstein distance between Gaussians fitted to batch and reference embeddings "
        "(the quantity behind FID).",
        "[0, 4]; 0 = same mean and covariance", "high", min_scale=0.005, needs_reference=True,
    ),
    MetricSpec(
        "near_duplicate_rate", "duplication", "near-duplicate rate",
        "Share of batch records that are redundant: all but one record of each group joined by cosine "
        "similarity >= 0.95 or identical normalised text.",
        "[0, 1 - 1/n]; 0 = no duplicates", "high", min_scale=0.005,
    ),
    MetricSpec(
        "distinct_1", "narrowing", "distinct-1 (type-token ratio of the batch)",
        "Distinct word types over all word tokens of the batch (Li et al. 2016).",
        "(0, 1]; low = small vocabulary", "low", min_scale=0.005, needs_texts=True,
    ),
    MetricSpec(
        "distinct_2", "narrowing", "distinct-2",
        "Distinct word bigrams over all bigrams of the batch.",
        "(0, 1]; low = repeated phrasing", "low", min_scale=0.005, needs_texts=True,
    ),
    MetricSpec(
        "type_token_ratio", "narrowing", "mean type-token ratio",
        "Mean over records of types / tokens within the record (falls with record length).",
        "(0, 1]; low = records repeat their own words", "low", min_scale=0.005, needs_texts=True,
    ),
    MetricSpec(
        "length_cv", "narrowing", "length spread (coefficient of variation)",
        "Standard deviation over mean of record lengths in word tokens.",
        "[0, inf); 0 = every record the same length", "low", min_scale=0.02, needs_texts=True,
    ),
    MetricSpec(
        "length_mean", "info", "mean length (word tokens)",
        "Mean record length in word tokens.",
        "[0, inf)", "none", needs_texts=True,
    ),
    MetricSpec(
        "reference_overlap", "info", "overlap with reference",
        "Share of batch records whose normalised text also occurs in the reference.",
        "[0, 1]", "none", needs_reference=True, needs_texts=True,
    ),
    MetricSpec(
        "synthetic_share", "synthetic", "estimated synthetic share",
        "Estimated share of machine-written records (from the calibrated origin detector), with a 95% "
        "interval; null when no origin model is available.",
        "[0, 1]", "high", min_scale=0.05, needs_texts=True,
    ),
)

METRIC_NAMES: tuple[str, ...] = tuple(spec.name for spec in METRICS)
_BY_NAME = {spec.name: spec for spec in METRICS}


def get_spec(name: str) -> MetricSpec:
    """Look up a metric by name.

    Raises
    ------
    KeyError
        If there is no such metric.
    """
    return _BY_NAME[name]
