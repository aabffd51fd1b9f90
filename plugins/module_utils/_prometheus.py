# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

"""Prometheus text exposition format 0.0.4: parsing, and the arithmetic canary analysis needs.

``parse_samples`` turns scraped text into ``Sample`` tuples. The helpers take samples
(or raw text, or dicts with ``name``, ``labels`` and ``value``) and a PromQL-like
selector such as ``http_requests_total{status=~"5.."}``: ``sum_samples`` adds matching
values, ``counter_increase`` and ``error_rate`` compare two scrapes with counter-reset
handling, and ``histogram_quantile`` interpolates a quantile from bucket increases the
way Prometheus' ``histogram_quantile`` does.
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

METRIC_TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
DEFAULT_ERRORS_SELECTOR = 'http_requests_total{status=~"5.."}'
DEFAULT_TOTAL_SELECTOR = "http_requests_total"

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_FLOAT = re.compile(
    r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?)|nan",
    re.IGNORECASE,
)
_TIMESTAMP = re.compile(r"-?\d+")
_BLANKS = " \t"
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}
_SAMPLE_OPERATORS = ("=",)
_SELECTOR_OPERATORS = ("=~", "!=", "!~", "=")


class Sample(NamedTuple):
    """One sample line: metric name, labels, value and optional timestamp (ms since epoch)."""

    name: str
    labels: dict
    value: float
    timestamp: int | None = None


class _LineError(Exception):
    """A parse error inside one line; turned into a ValueError naming the line number."""


class _Scanner:
    def __init__(self, text):
        self.text = text
        self.pos = 0

    def at_end(self):
        return self.pos >= len(self.text)

    def peek(self):
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_blanks(self):
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in _BLANKS:
            self.pos += 1
        return self.pos > start

    def match(self, pattern, what):
        found = pattern.match(self.text, self.pos)
        if not found:
            raise _LineError(f"expected {what} at column {self.pos + 1}")
        self.pos = found.end()
        return found.group(0)

    def token(self):
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _BLANKS:
            self.pos += 1
        return self.text[start:self.pos]

    def quoted(self):
        if self.peek() != '"':
            raise _LineError(f'expected " to open a label value at column {self.pos + 1}')
        self.pos += 1
        chars = []
        while True:
            if self.at_end():
                raise _LineError("unterminated label value")
            char = self.text[self.pos]
            self.pos += 1
            if char == '"':
                return "".join(chars)
            if char == "\\":
                escaped = self.peek()
                if escaped not in _ESCAPES:
                    raise _LineError(f"invalid escape sequence \\{escaped} in label value at column {self.pos}")
                chars.append(_ESCAPES[escaped])
                self.pos += 1
            else:
                chars.append(char)

    def operator(self, operators):
        for operator in operators:
            if self.text.startswith(operator, self.pos):
                self.pos += len(operator)
                return operator
        raise _LineError(f"expected {' or '.join(operators)} at column {self.pos + 1}")

    def label_block(self, operators):
        """Parse ``{name<op>"value", ...}``; returns a list of (name, operator, value)."""
        self.pos += 1  # the opening brace
        pairs = []
        seen = set()
        while True:
            self.skip_blanks()
            if self.peek() == "}":
                self.pos += 1
                return pairs
            name = self.match(_LABEL_NAME, "a label name")
            if name in seen and operators == _SAMPLE_OPERATORS:
                raise _LineError(f"duplicate label {name}")
            seen.add(name)
            self.skip_blanks()
            operator = self.operator(operators)
            self.skip_blanks()
            pairs.append((name, operator, self.quoted()))
            self.skip_blanks()
            if self.peek() == ",":
                self.pos += 1
            elif self.peek() != "}":
                raise _LineError(f"expected , or }} after a label at column {self.pos + 1}")


def parse_float(text):
    """Parse a sample value the way the exposition format spells it (+Inf, -Inf, NaN, 1e3...).

    :raises ValueError: for anything else (Python-only spellings like ``1_000`` included).
    """
    if not _FLOAT.fullmatch(text or ""):
        raise ValueError(f"invalid sample value {text!r}")
    return float(text)


def _parse_sample(line):
    scanner = _Scanner(line)
    scanner.skip_blanks()
    name = scanner.match(_METRIC_NAME, "a metric name")
    blank = scanner.skip_blanks()
    labels = {}
    if scanner.peek() == "{":
        for label, _operator, value in scanner.label_block(_SAMPLE_OPERATORS):
            if label == "__name__":
                raise _LineError("label name __name__ is reserved")
            labels[label] = value
        scanner.skip_blanks()
    elif not blank and not scanner.at_end():
        raise _LineError(f"expected a blank or {{ after the metric name at column {scanner.pos + 1}")
    if scanner.at_end():
        raise _LineError("missing sample value")
    value_text = scanner.token()
    try:
        value = parse_float(value_text)
    except ValueError as exc:
        raise _LineError(str(exc)) from exc
    timestamp = None
    if scanner.skip_blanks() and not scanner.at_end():
        stamp = scanner.token()
        if not _TIMESTAMP.fullmatch(stamp):
            raise _LineError(f"invalid timestamp {stamp!r}")
        timestamp = int(stamp)
        scanner.skip_blanks()
    if not scanner.at_end():
        raise _LineError(f"unexpected text after the sample at column {scanner.pos + 1}")
    return Sample(name, labels, value, timestamp)


def _unescape_help(text):
    return re.sub(r"\\(\\|n)", lambda m: "\n" if m.group(1) == "n" else "\\", text)


def _parse_comment(line, metadata):
    parts = line.lstrip(_BLANKS)[1:].lstrip(_BLANKS).split(None, 2)
    if not parts or parts[0] not in ("HELP", "TYPE"):
        return  # a plain comment
    if len(parts) < 2 or not _METRIC_NAME.fullmatch(parts[1]):
        raise _LineError(f"{parts[0]} needs a valid metric name")
    entry = metadata.setdefault(parts[1], {"type": None, "help": None})
    if parts[0] == "HELP":
        entry["help"] = _unescape_help(parts[2].strip()) if len(parts) > 2 else ""
        return
    metric_type = parts[2].strip() if len(parts) > 2 else ""
    if metric_type not in METRIC_TYPES:
        raise _LineError(f"TYPE {metric_type!r} is not one of {', '.join(METRIC_TYPES)}")
    entry["type"] = metric_type


def parse_exposition(text):
    """Parse exposition text into ``(samples, metadata)``.

    ``metadata`` maps metric family names to ``{"type", "help"}`` from HELP/TYPE lines.

    :raises ValueError: naming the 1-based line number and the offending line.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if not isinstance(text, str):
        raise TypeError(f"exposition text must be a string, got {type(text).__name__}")
    samples = []
    metadata = {}
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        stripped = line.strip(_BLANKS)
        if not stripped:
            continue
        try:
            if stripped.startswith("#"):
                _parse_comment(stripped, metadata)
            else:
                samples.append(_parse_sample(stripped))
        except _LineError as exc:
            shown = stripped if len(stripped) <= 120 else stripped[:117] + "..."
            raise ValueError(f"line {number}: {exc}: {shown!r}") from None
    return samples, metadata


def parse_samples(text):
    """Parse exposition text into a list of ``Sample``; see ``parse_exposition``."""
    return parse_exposition(text)[0]


def coerce_samples(samples):
    """Accept exposition text, ``Sample`` tuples or dicts with name/labels/value; return Samples.

    :raises ValueError: on anything else.
    """
    if isinstance(samples, (str, bytes)):
        return parse_samples(samples)
    if not isinstance(samples, (list, tuple)):
        raise TypeError(f"expected exposition text or a list of samples, got {type(samples).__name__}")
    coerced = []
    for index, sample in enumerate(samples):
        if isinstance(sample, Sample):
            coerced.append(sample)
            continue
        if not isinstance(sample, dict) or "name" not in sample or "value" not in sample:
            raise ValueError(f"sample {index} must have name and value, got {sample!r}")
        labels = sample.get("labels") or {}
        if not isinstance(labels, dict):
            raise TypeError(f"sample {index} labels must be a dict, got {labels!r}")
        try:
            value = float(sample["value"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"sample {index} value {sample['value']!r} is not a number") from exc
        coerced.append(Sample(str(sample["name"]), {str(k): str(v) for k, v in labels.items()}, value,
                              sample.get("timestamp")))
    return coerced


def parse_selector(selector):
    """Parse ``name{label="v", label=~"re", label!="v", label!~"re"}`` (name or labels optional).

    :returns: ``(name or None, [(label, operator, value), ...])``; regexes are compiled
        later and fully anchored, as in PromQL.
    :raises ValueError: on a malformed selector or an invalid regex.
    """
    if not isinstance(selector, str) or not selector.strip():
        raise ValueError(f"selector must be a non-empty string, got {selector!r}")
    scanner = _Scanner(selector.strip())
    try:
        name = None
        if scanner.peek() != "{":
            name = scanner.match(_METRIC_NAME, "a metric name")
            scanner.skip_blanks()
        matchers = scanner.label_block(_SELECTOR_OPERATORS) if scanner.peek() == "{" else []
        scanner.skip_blanks()
        if not scanner.at_end():
            raise _LineError(f"unexpected text at column {scanner.pos + 1}")
    except _LineError as exc:
        raise ValueError(f"selector {selector!r}: {exc}") from None
    for label, operator, value in matchers:
        if operator in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"selector {selector!r}: invalid regex for {label}: {exc}") from exc
    if name is None and not matchers:
        raise ValueError(f"selector {selector!r} selects nothing")
    return name, matchers


def _matcher(selector):
    name, matchers = parse_selector(selector)
    compiled = [(label, operator, re.compile(value) if operator in ("=~", "!~") else value)
                for label, operator, value in matchers]

    def matches(sample):
        if name is not None and sample.name != name:
            return False
        for label, operator, expected in compiled:
            actual = sample.name if label == "__name__" else sample.labels.get(label, "")
            if operator == "=" and actual != expected:
                return False
            if operator == "!=" and actual == expected:
                return False
            if operator == "=~" and not expected.fullmatch(actual):
                return False
            if operator == "!~" and expected.fullmatch(actual):
                return False
        return True

    return matches


def select_samples(samples, selector):
    """Samples matching ``selector`` (see ``parse_selector``)."""
    matches = _matcher(selector)
    return [sample for sample in coerce_samples(samples) if matches(sample)]


def sum_samples(samples, selector):
    """Sum of the values of the samples matching ``selector``; 0.0 when none match."""
    return math.fsum(sample.value for sample in select_samples(samples, selector))


def _series_key(sample):
    return sample.name, tuple(sorted(sample.labels.items()))


def _increases(before, after, selector):
    """Per-series increase between two scrapes, counter resets handled like PromQL increase().

    A series whose value went down was reset (process restart): its increase is the new
    value. A series absent from ``before`` counts from zero, because a labelled counter
    (say, status="500") usually first appears with the first matching request.
    """
    previous = {}
    if before is not None:
        previous = {_series_key(sample): sample.value for sample in select_samples(before, selector)}
    increases = []
    for sample in select_samples(after, selector):
        old = previous.get(_series_key(sample))
        if old is None or math.isnan(old) or sample.value < old:
            increases.append((sample, sample.value))
        else:
            increases.append((sample, sample.value - old))
    return increases


def counter_increase(before, after, selector):
    """Total increase of the counters matching ``selector`` from scrape ``before`` to ``after``.

    ``before`` may be None to read the counters' values since process start.
    """
    return math.fsum(increase for _sample, increase in _increases(before, after, selector))


def error_rate(before, after, errors_selector=DEFAULT_ERRORS_SELECTOR, total_selector=DEFAULT_TOTAL_SELECTOR):
    """Fraction of requests that were errors between two scrapes, in [0, 1].

    :returns: increase of ``errors_selector`` divided by increase of ``total_selector``,
        or None when there was no traffic (total increase 0).
    """
    total = counter_increase(before, after, total_selector)
    if total <= 0:
        return None
    errors = counter_increase(before, after, errors_selector)
    return min(max(errors / total, 0.0), 1.0)


def _le_bound(sample):
    if "le" not in sample.labels:
        raise ValueError(f"bucket sample {sample.name} has no le label")
    try:
        return parse_float(sample.labels["le"])
    except ValueError as exc:
        raise ValueError(f"bucket sample {sample.name} has an invalid le label {sample.labels['le']!r}") from exc


def bucket_quantile(q, buckets):
    """Prometheus' bucketQuantile: quantile ``q`` from ``[(upper_bound, cumulative_count), ...]``.

    Follows promql/quantile.go: buckets sorted by bound, counts forced monotonic, linear
    interpolation inside the bucket holding the rank, the lower bound of the first bucket
    taken as 0 (unless its upper bound is <= 0), and the upper bound of the highest finite
    bucket returned when the rank falls into the +Inf bucket.

    :returns: the estimate, or None when there are no observations, fewer than two
        buckets, or no +Inf bucket (Prometheus answers NaN there).
    :raises ValueError: when ``q`` is outside [0, 1].
    """
    if math.isnan(q) or q < 0 or q > 1:
        raise ValueError(f"quantile must be within [0, 1], got {q!r}")
    merged = {}
    for bound, count in buckets:
        merged[bound] = merged.get(bound, 0.0) + count
    ordered = sorted(merged.items())
    if len(ordered) < 2 or not math.isinf(ordered[-1][0]) or ordered[-1][0] < 0:
        return None
    counts = []
    highest = 0.0
    for _bound, count in ordered:
        highest = max(highest, count)
        counts.append(highest)
    observations = counts[-1]
    if observations <= 0:
        return None
    rank = q * observations
    index = next((i for i in range(len(ordered) - 1) if counts[i] >= rank), len(ordered) - 1)
    if index == len(ordered) - 1:
        return ordered[-2][0]
    upper = ordered[index][0]
    if index == 0 and upper <= 0:
        return upper
    lower = 0.0 if index == 0 else ordered[index - 1][0]
    below = 0.0 if index == 0 else counts[index - 1]
    in_bucket = counts[index] - below
    if in_bucket <= 0:
        return lower
    return lower + (upper - lower) * ((rank - below) / in_bucket)


def histogram_quantile(q, before, after, selector):
    """Estimate quantile ``q`` of a histogram from the bucket increases between two scrapes.

    :param selector: selects the ``*_bucket`` series, e.g.
        ``http_request_duration_seconds_bucket{handler="/api/orders"}``; a name without
        the ``_bucket`` suffix gets it appended. Matching series are summed per ``le``
        (like ``sum by (le) (increase(...))``).
    :param before: earlier scrape, or None to use the counts since process start.
    :returns: the estimate in the histogram's unit, or None without observations.
    """
    name, _matchers = parse_selector(selector)
    if name is not None and not name.endswith("_bucket"):
        selector = selector.strip().replace(name, name + "_bucket", 1)
    buckets = [(_le_bound(sample), increase) for sample, increase in _increases(before, after, selector)]
    return bucket_quantile(q, buckets)
