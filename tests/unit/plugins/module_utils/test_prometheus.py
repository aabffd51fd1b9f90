# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

import math

import pytest
from ansible_collections.erp.ops.plugins.module_utils._prometheus import (
    Sample,
    bucket_quantile,
    coerce_samples,
    counter_increase,
    error_rate,
    histogram_quantile,
    parse_exposition,
    parse_float,
    parse_samples,
    parse_selector,
    select_samples,
    sum_samples,
)

EXPOSITION = r"""
# HELP http_requests_total Total HTTP requests.\nSecond line with a \\ backslash.
# TYPE http_requests_total counter
http_requests_total{method="GET",handler="/api/orders",status="2xx"} 1027 1395066363000
http_requests_total{method="POST",handler="/api/orders",status="5xx"} 3 1395066363000

# A plain comment, then an escaped label value
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9
# TYPE process_up gauge
process_up 1
metric_without_timestamp_and_labels 12.47
something_weird{problem="division by zero"} +Inf -3982045
"""


def test_parse_samples_reference_example():
    samples = parse_samples(EXPOSITION)
    assert samples[0] == Sample("http_requests_total",
                                {"method": "GET", "handler": "/api/orders", "status": "2xx"}, 1027.0, 1395066363000)
    assert samples[2].labels == {"path": "C:\\DIR\\FILE.TXT", "error": 'Cannot find file:\n"FILE.TXT"'}
    assert samples[2].value == 1458255915.0
    assert samples[3] == Sample("process_up", {}, 1.0, None)
    assert samples[5].value == math.inf
    assert samples[5].timestamp == -3982045
    assert [s.name for s in samples] == [
        "http_requests_total", "http_requests_total", "msdos_file_access_time_seconds",
        "process_up", "metric_without_timestamp_and_labels", "something_weird",
    ]


def test_parse_exposition_metadata():
    _samples, metadata = parse_exposition(EXPOSITION)
    assert metadata["http_requests_total"] == {
        "type": "counter",
        "help": "Total HTTP requests.\nSecond line with a \\ backslash.",
    }
    assert metadata["process_up"] == {"type": "gauge", "help": None}


@pytest.mark.parametrize("line, name, labels, value, timestamp", [
    ("up 1", "up", {}, 1.0, None),
    ("up\t1\t17", "up", {}, 1.0, 17),
    ("  up 1  ", "up", {}, 1.0, None),
    ("ns:sub_metric 2", "ns:sub_metric", {}, 2.0, None),
    ('m{a="1",} 2', "m", {"a": "1"}, 2.0, None),
    ('m{ a = "1" , b="x y" } 2', "m", {"a": "1", "b": "x y"}, 2.0, None),
    ('m{} 2', "m", {}, 2.0, None),
    ('m{a=""} 2', "m", {"a": ""}, 2.0, None),
    ('m{a="}{,="} 2', "m", {"a": "}{,="}, 2.0, None),
    ('m{a="\\\\n"} 1', "m", {"a": "\\n"}, 1.0, None),
    ('m{a="caf\u00e9"} 1', "m", {"a": "caf\u00e9"}, 1.0, None),
    ("m -Inf", "m", {}, -math.inf, None),
    ("m +Inf", "m", {}, math.inf, None),
    ("m Inf", "m", {}, math.inf, None),
    ("m 1e-3", "m", {}, 0.001, None),
    ("m -0.5", "m", {}, -0.5, None),
    ("m .5", "m", {}, 0.5, None),
    ("m 1 -5", "m", {}, 1.0, -5),
])
def test_parse_one_line(line, name, labels, value, timestamp):
    (sample,) = parse_samples(line + "\n")
    assert sample == Sample(name, labels, value, timestamp)


def test_nan_value():
    (sample,) = parse_samples("m NaN")
    assert math.isnan(sample.value)


def test_crlf_blank_lines_and_no_final_newline():
    assert len(parse_samples("a 1\r\n\r\n\n   \nb 2")) == 2


@pytest.mark.parametrize("text, line_number, message", [
    ("up", 1, "missing sample value"),
    ("up 1\n\nup one", 3, "invalid sample value 'one'"),
    ("up 1_000", 1, "invalid sample value '1_000'"),
    ("up +NaN", 1, "invalid sample value '+NaN'"),
    ("up 0x10", 1, "invalid sample value '0x10'"),
    ("up 1 12.5", 1, "invalid timestamp '12.5'"),
    ("up 1 2 3", 1, "unexpected text after the sample"),
    ("1up 1", 1, "expected a metric name"),
    ("up-time 1", 1, "expected a blank or { after the metric name"),
    ('m{a="1" 2', 1, "expected , or } after a label"),
    ('m{a=1} 2', 1, 'expected " to open a label value'),
    ('m{a="1} 2', 1, "unterminated label value"),
    ('m{a="\\t"} 2', 1, "invalid escape sequence \\t"),
    ('m{1a="x"} 2', 1, "expected a label name"),
    ('m{a!="x"} 2', 1, "expected = at column"),
    ('m{a="1",a="2"} 2', 1, "duplicate label a"),
    ('m{__name__="x"} 2', 1, "label name __name__ is reserved"),
    ("ok 1\n# TYPE m countr", 2, "TYPE 'countr' is not one of"),
    ("# TYPE m", 1, "TYPE '' is not one of"),
    ("# HELP", 1, "HELP needs a valid metric name"),
])
def test_malformed_input_names_the_line(text, line_number, message):
    with pytest.raises(ValueError, match=f"^line {line_number}: ") as caught:
        parse_samples(text)
    assert message in str(caught.value)


def test_non_text_input_is_a_type_error():
    with pytest.raises(TypeError, match="must be a string"):
        parse_samples(["up 1"])


@pytest.mark.parametrize("text, expected", [
    ("1", 1.0), ("-2.5e2", -250.0), ("+Inf", math.inf), ("-inf", -math.inf), ("Infinity", math.inf),
])
def test_parse_float(text, expected):
    assert parse_float(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "1,5", "nan1", " 1"])
def test_parse_float_rejects(text):
    with pytest.raises(ValueError):
        parse_float(text)


@pytest.mark.parametrize("selector, expected", [
    ("up", ("up", [])),
    ('http_requests_total{status=~"5.."}', ("http_requests_total", [("status", "=~", "5..")])),
    ('m{a!="x", b!~"y|z", c="w"}', ("m", [("a", "!=", "x"), ("b", "!~", "y|z"), ("c", "=", "w")])),
    ('{__name__="up"}', (None, [("__name__", "=", "up")])),
])
def test_parse_selector(selector, expected):
    assert parse_selector(selector) == expected


@pytest.mark.parametrize("selector, message", [
    ("", "non-empty string"),
    ("{}", "selects nothing"),
    ("m{a=~\"(\"}", "invalid regex for a"),
    ("m x", "unexpected text"),
    ("m{a}", "expected =~ or != or !~ or ="),
])
def test_parse_selector_rejects(selector, message):
    with pytest.raises(ValueError, match=message):
        parse_selector(selector)


SCRAPE = """
http_requests_total{handler="/a",status="200"} 100
http_requests_total{handler="/a",status="500"} 4
http_requests_total{handler="/b",status="503"} 1
http_requests_total{handler="/b",status="404"} 7
http_requests_created{handler="/a"} 5
"""


@pytest.mark.parametrize("selector, total", [
    ("http_requests_total", 112.0),
    ('http_requests_total{status=~"5.."}', 5.0),
    ('http_requests_total{status!~"5.."}', 107.0),
    ('http_requests_total{handler="/b"}', 8.0),
    ('http_requests_total{handler!="/b",status="500"}', 4.0),
    # anchored like PromQL: "5" alone does not match "500"
    ('http_requests_total{status=~"5"}', 0.0),
    ('http_requests_total{missing=""}', 112.0),
    ('{__name__=~"http_requests_.*"}', 117.0),
    ("nothing_here", 0.0),
])
def test_sum_samples(selector, total):
    assert sum_samples(SCRAPE, selector) == total


def test_helpers_accept_dicts_and_samples():
    dicts = [{"name": s.name, "labels": dict(s.labels), "value": s.value, "timestamp": s.timestamp}
             for s in parse_samples(SCRAPE)]
    assert sum_samples(dicts, 'http_requests_total{status=~"5.."}') == 5.0
    assert len(select_samples(parse_samples(SCRAPE), "http_requests_total")) == 4


@pytest.mark.parametrize("bad, error", [
    (42, TypeError),
    ([{"name": "m"}], ValueError),
    ([{"name": "m", "value": "x"}], ValueError),
    ([{"name": "m", "value": 1, "labels": ["a"]}], TypeError),
])
def test_coerce_samples_rejects(bad, error):
    with pytest.raises(error):
        coerce_samples(bad)


BEFORE = """
http_requests_total{status="200",pod="a"} 1000
http_requests_total{status="500",pod="a"} 10
http_requests_total{status="200",pod="b"} 500
"""


@pytest.mark.parametrize("after, selector, increase", [
    # plain growth
    ('http_requests_total{status="200",pod="a"} 1100\nhttp_requests_total{status="200",pod="b"} 550',
     'http_requests_total{status="200"}', 150.0),
    # pod a restarted: its counter went down, so the whole new value is the increase
    ('http_requests_total{status="200",pod="a"} 30\nhttp_requests_total{status="200",pod="b"} 550',
     'http_requests_total{status="200"}', 80.0),
    # a series that first appears after the first scrape counts from zero
    ('http_requests_total{status="500",pod="a"} 12\nhttp_requests_total{status="500",pod="b"} 3',
     'http_requests_total{status=~"5.."}', 5.0),
    # a series that disappeared contributes nothing
    ('http_requests_total{status="200",pod="a"} 1000', 'http_requests_total{status="200"}', 0.0),
])
def test_counter_increase_handles_resets_and_new_series(after, selector, increase):
    assert counter_increase(BEFORE, after, selector) == increase


def test_counter_increase_without_before_uses_absolute_values():
    assert counter_increase(None, BEFORE, "http_requests_total") == 1510.0


@pytest.mark.parametrize("after, rate", [
    # 100 new requests, 5 of them 5xx
    ('http_requests_total{status="200",pod="a"} 1095\nhttp_requests_total{status="500",pod="a"} 15\n'
     'http_requests_total{status="200",pod="b"} 500', 0.05),
    # no errors
    ('http_requests_total{status="200",pod="a"} 1100\nhttp_requests_total{status="500",pod="a"} 10\n'
     'http_requests_total{status="200",pod="b"} 500', 0.0),
    # pod a restarted between scrapes: 40 requests since, 4 errors
    ('http_requests_total{status="200",pod="a"} 36\nhttp_requests_total{status="500",pod="a"} 4\n'
     'http_requests_total{status="200",pod="b"} 500', 0.1),
    # no traffic at all
    (BEFORE, None),
])
def test_error_rate(after, rate):
    result = error_rate(BEFORE, after)
    if rate is None:
        assert result is None
    else:
        assert result == pytest.approx(rate)


def test_error_rate_with_custom_selectors():
    before = 'app_requests{code="200"} 10\napp_requests{code="502"} 0\n'
    after = 'app_requests{code="200"} 28\napp_requests{code="502"} 2\n'
    assert error_rate(before, after, 'app_requests{code=~"5.."}', "app_requests") == pytest.approx(0.1)


@pytest.mark.parametrize("q, buckets, expected", [
    # 100 observations: 50 <= 0.1, 90 <= 0.5, 100 <= 1
    (0.5, [(0.1, 50), (0.5, 90), (1.0, 100), (math.inf, 100)], 0.1),
    (0.7, [(0.1, 50), (0.5, 90), (1.0, 100), (math.inf, 100)], 0.3),
    (0.95, [(0.1, 50), (0.5, 90), (1.0, 100), (math.inf, 100)], 0.75),
    (0.25, [(0.1, 50), (0.5, 90), (1.0, 100), (math.inf, 100)], 0.05),
    (0.0, [(0.1, 50), (0.5, 90), (1.0, 100), (math.inf, 100)], 0.0),
    (1.0, [(0.1, 50), (0.5, 90), (1.0, 100), (math.inf, 100)], 1.0),
    # rank in the +Inf bucket: the highest finite bound is returned
    (0.99, [(0.1, 50), (0.5, 90), (1.0, 95), (math.inf, 100)], 1.0),
    # unsorted input and non-monotonic counts (scrape races) are repaired
    (0.7, [(math.inf, 100), (1.0, 100), (0.1, 50), (0.5, 90)], 0.3),
    (0.5, [(0.1, 50), (0.5, 40), (1.0, 100), (math.inf, 100)], 0.1),
    # a first bucket with a negative bound returns that bound
    (0.1, [(-1.0, 10), (0.0, 20), (math.inf, 20)], -1.0),
    # no observations, missing +Inf, a single bucket: no answer
    (0.5, [(0.1, 0), (math.inf, 0)], None),
    (0.5, [(0.1, 5), (0.5, 10)], None),
    (0.5, [(math.inf, 10)], None),
    (0.5, [], None),
])
def test_bucket_quantile(q, buckets, expected):
    result = bucket_quantile(q, buckets)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


@pytest.mark.parametrize("q", [-0.1, 1.5, math.nan])
def test_bucket_quantile_rejects_out_of_range(q):
    with pytest.raises(ValueError, match="quantile"):
        bucket_quantile(q, [(1.0, 1), (math.inf, 1)])


HIST_BEFORE = """
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{handler="/a",le="0.1"} 100
http_request_duration_seconds_bucket{handler="/a",le="0.5"} 150
http_request_duration_seconds_bucket{handler="/a",le="+Inf"} 160
http_request_duration_seconds_bucket{handler="/b",le="0.1"} 10
http_request_duration_seconds_bucket{handler="/b",le="0.5"} 10
http_request_duration_seconds_bucket{handler="/b",le="+Inf"} 10
http_request_duration_seconds_sum{handler="/a"} 20
http_request_duration_seconds_count{handler="/a"} 160
"""
HIST_AFTER = """
http_request_duration_seconds_bucket{handler="/a",le="0.1"} 110
http_request_duration_seconds_bucket{handler="/a",le="0.5"} 180
http_request_duration_seconds_bucket{handler="/a",le="+Inf"} 200
http_request_duration_seconds_bucket{handler="/b",le="0.1"} 10
http_request_duration_seconds_bucket{handler="/b",le="0.5"} 30
http_request_duration_seconds_bucket{handler="/b",le="+Inf"} 30
"""


@pytest.mark.parametrize("q, before, after, selector, expected", [
    # /a between scrapes: 10 <= 0.1, 20 in (0.1, 0.5], 10 above -> p50 at rank 20: 0.1 + 0.4 * 10/20
    (0.5, HIST_BEFORE, HIST_AFTER, 'http_request_duration_seconds_bucket{handler="/a"}', 0.3),
    # the _bucket suffix is added when missing
    (0.5, HIST_BEFORE, HIST_AFTER, 'http_request_duration_seconds{handler="/a"}', 0.3),
    # /a + /b summed per le: 10 <= 0.1, 50 <= 0.5, 60 total -> p50 rank 30: 0.1 + 0.4 * 20/40
    (0.5, HIST_BEFORE, HIST_AFTER, "http_request_duration_seconds_bucket", 0.3),
    # p90 rank 54 is above every finite bucket: the highest finite bound
    (0.9, HIST_BEFORE, HIST_AFTER, "http_request_duration_seconds_bucket", 0.5),
    # since process start: /a p50 rank 100 of 200 -> within the first bucket: 0.1 * 100/110
    (0.5, None, HIST_AFTER, 'http_request_duration_seconds_bucket{handler="/a"}', 0.1 * 100 / 110),
    # no new observations
    (0.5, HIST_AFTER, HIST_AFTER, "http_request_duration_seconds_bucket", None),
])
def test_histogram_quantile(q, before, after, selector, expected):
    result = histogram_quantile(q, before, after, selector)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


def test_histogram_quantile_survives_a_reset():
    restarted = """
http_request_duration_seconds_bucket{le="0.1"} 4
http_request_duration_seconds_bucket{le="1"} 8
http_request_duration_seconds_bucket{le="+Inf"} 8
"""
    before = """
http_request_duration_seconds_bucket{le="0.1"} 400
http_request_duration_seconds_bucket{le="1"} 800
http_request_duration_seconds_bucket{le="+Inf"} 800
"""
    # after the restart only the 8 new observations count: p50 rank 4 -> bound of the first bucket
    assert histogram_quantile(0.5, before, restarted, "http_request_duration_seconds") == pytest.approx(0.1)


def test_histogram_quantile_rejects_buckets_without_le():
    with pytest.raises(ValueError, match="no le label"):
        histogram_quantile(0.5, None, 'x_bucket{a="1"} 3\n', "x_bucket")
