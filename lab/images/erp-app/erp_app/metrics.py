"""A minimal Prometheus registry and text exposition format 0.0.4 renderer.

Written here rather than taken from prometheus_client to keep the image to Debian
packages only. Counters, gauges and histograms with fixed label names are all the
app needs; every metric is safe to update from several threads.
"""

import math
import threading
from collections.abc import Iterable, Sequence

# Starlette appends "; charset=utf-8" to text/* media types.
CONTENT_TYPE = "text/plain; version=0.0.4"
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Sample = tuple[str, dict[str, str], float]  # (name suffix, labels, value)


class _Metric:
    type = ""

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.labelnames = tuple(labelnames)
        self._lock = threading.Lock()

    def _key(self, labels: Sequence[str]) -> tuple[str, ...]:
        if len(labels) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {tuple(labels)}")
        return tuple(str(value) for value in labels)

    def _labels(self, key: tuple[str, ...]) -> dict[str, str]:
        return dict(zip(self.labelnames, key, strict=True))

    def samples(self) -> list[Sample]:
        raise NotImplementedError


class Counter(_Metric):
    type = "counter"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labelnames)
        self._values: dict[tuple[str, ...], float] = {}

    def inc(self, labels: Sequence[str] = (), amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def samples(self) -> list[Sample]:
        with self._lock:
            return [("", self._labels(key), value) for key, value in sorted(self._values.items())]


class Gauge(_Metric):
    type = "gauge"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labelnames)
        self._values: dict[tuple[str, ...], float] = {}

    def set(self, value: float, labels: Sequence[str] = ()) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)

    def replace(self, value: float, labels: Sequence[str] = ()) -> None:
        """Set ``value`` as the only series, dropping series with other labels."""
        key = self._key(labels)
        with self._lock:
            self._values = {key: float(value)}

    def samples(self) -> list[Sample]:
        with self._lock:
            return [("", self._labels(key), value) for key, value in sorted(self._values.items())]


class Histogram(_Metric):
    type = "histogram"

    def __init__(
        self,
        name: str,
        help_text: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        if "le" in labelnames:
            raise ValueError("'le' is reserved for histogram buckets")
        if list(buckets) != sorted(set(buckets)) or not buckets:
            raise ValueError("buckets must be non-empty, unique and increasing")
        super().__init__(name, help_text, labelnames)
        self.buckets = tuple(float(b) for b in buckets if not math.isinf(b))
        # per label set: [count per bucket (not cumulative), total count, sum]
        self._series: dict[tuple[str, ...], list] = {}

    def observe(self, value: float, labels: Sequence[str] = ()) -> None:
        key = self._key(labels)
        with self._lock:
            counts, _, _ = series = self._series.setdefault(key, [[0] * len(self.buckets), 0, 0.0])
            for index, bound in enumerate(self.buckets):
                if value <= bound:
                    counts[index] += 1
                    break
            series[1] += 1
            series[2] += value

    def samples(self) -> list[Sample]:
        out: list[Sample] = []
        with self._lock:
            for key, (counts, count, total) in sorted(self._series.items()):
                labels = self._labels(key)
                cumulative = 0
                for bound, bucket_count in zip(self.buckets, counts, strict=True):
                    cumulative += bucket_count
                    out.append(("_bucket", {**labels, "le": format_value(bound)}, cumulative))
                out.append(("_bucket", {**labels, "le": "+Inf"}, count))
                out.append(("_sum", labels, total))
                out.append(("_count", labels, count))
        return out


def render(metrics: Iterable[_Metric]) -> str:
    """The exposition text for ``metrics``: HELP, TYPE, then samples, per family."""
    lines: list[str] = []
    for metric in metrics:
        lines.append(f"# HELP {metric.name} {_escape_help(metric.help)}")
        lines.append(f"# TYPE {metric.name} {metric.type}")
        for suffix, labels, value in metric.samples():
            lines.append(f"{metric.name}{suffix}{_render_labels(labels)} {format_value(value)}")
    return "\n".join(lines) + "\n"


def format_value(value: float) -> str:
    """Numbers as Prometheus parses them: integers without '.0', +Inf/-Inf/NaN."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _render_labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    body = ",".join(f'{name}="{_escape_label(value)}"' for name, value in labels.items())
    return "{" + body + "}"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")
