"""Diversity monitor: catch a narrowing source before it collapses a model.

Measures each incoming batch of text against a gold (human) reference on
embeddings and on plain text statistics, and raises alarms when the batch
falls outside what reference samples of the same size give:

>>> from synthfilter.monitor import DiversityMonitor            # doctest: +SKIP
>>> monitor = DiversityMonitor(encoder="minilm").fit(gold_texts) # doctest: +SKIP
>>> run = monitor.run([{"texts": batch, "name": "batch-1"}])     # doctest: +SKIP
>>> run.has_alarm, run.batches[0].alarm_groups                   # doctest: +SKIP

:func:`batch_metrics` computes the metrics of one batch against one reference
without a null distribution; :data:`METRICS` documents each metric (meaning,
range, bad direction).
"""

from synthfilter.monitor.metrics import (
    EmbeddedSet,
    MetricParams,
    batch_metrics,
    compute_metrics,
)
from synthfilter.monitor.monitor import (
    ALARM_EXIT_CODE,
    MONITOR_SCHEMA,
    Alarm,
    BatchResult,
    DiversityMonitor,
    MonitorRun,
    NullSummary,
)
from synthfilter.monitor.origin_link import OriginLink, resolve_origin
from synthfilter.monitor.specs import (
    GROUPS,
    METRIC_NAMES,
    METRICS,
    MetricSpec,
    get_spec,
)

__all__ = [
    "ALARM_EXIT_CODE",
    "GROUPS",
    "METRICS",
    "METRIC_NAMES",
    "MONITOR_SCHEMA",
    "Alarm",
    "BatchResult",
    "DiversityMonitor",
    "EmbeddedSet",
    "MetricParams",
    "MetricSpec",
    "MonitorRun",
    "NullSummary",
    "OriginLink",
    "batch_metrics",
    "compute_metrics",
    "get_spec",
    "resolve_origin",
]
