import math
import re

import pytest
from erp_app.metrics import Counter, Gauge, Histogram, format_value, render

# One sample line of the 0.0.4 text format: name, optional labels, value.
SAMPLE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*",?)*\})? '
    r"(-?[0-9.e+-]+|[+-]Inf|NaN)$"
)


def test_counter_renders_help_type_and_sorted_series():
    requests = Counter("erp_http_requests_total", "HTTP requests answered.", ("method", "route", "status"))
    requests.inc(("GET", "/api/customers", "200"))
    requests.inc(("GET", "/api/customers", "200"))
    requests.inc(("POST", "/api/customers", "201"))
    assert render([requests]) == (
        "# HELP erp_http_requests_total HTTP requests answered.\n"
        "# TYPE erp_http_requests_total counter\n"
        'erp_http_requests_total{method="GET",route="/api/customers",status="200"} 2\n'
        'erp_http_requests_total{method="POST",route="/api/customers",status="201"} 1\n'
    )


def test_histogram_buckets_are_cumulative_with_inf_sum_and_count():
    durations = Histogram("req_seconds", "Durations.", ("route",), buckets=(0.1, 1.0))
    for value in (0.05, 0.5, 0.7, 3.0):
        durations.observe(value, ("/x",))
    assert render([durations]).splitlines()[2:] == [
        'req_seconds_bucket{route="/x",le="0.1"} 1',
        'req_seconds_bucket{route="/x",le="1"} 3',
        'req_seconds_bucket{route="/x",le="+Inf"} 4',
        'req_seconds_sum{route="/x"} 4.25',
        'req_seconds_count{route="/x"} 4',
    ]


def test_histogram_boundary_value_lands_in_its_bucket():
    h = Histogram("h", "h.", buckets=(1.0, 2.0))
    h.observe(1.0)
    assert 'h_bucket{le="1"} 1' in render([h])


def test_gauges_set_and_replace():
    up = Gauge("erp_database_up", "Database reachable.")
    up.set(1)
    up.set(0)
    info = Gauge("erp_build_info", "Build.", ("version", "schema"))
    info.replace(1, ("1.0.0", "0001"))
    info.replace(1, ("1.0.0", "0002"))  # schema moved on: the old series goes
    text = render([up, info])
    assert "erp_database_up 0\n" in text
    assert 'erp_build_info{version="1.0.0",schema="0002"} 1\n' in text
    assert "0001" not in text


def test_label_values_and_help_are_escaped():
    c = Counter("c_total", 'Help with \\ and\nnewline "quotes".', ("path",))
    c.inc(('a"b\\c\nd',))
    lines = render([c]).splitlines()
    assert lines[0] == '# HELP c_total Help with \\\\ and\\nnewline "quotes".'
    assert lines[2] == 'c_total{path="a\\"b\\\\c\\nd"} 1'


def test_every_sample_line_is_well_formed_and_text_ends_with_newline():
    c = Counter("c_total", "c.", ("a",))
    c.inc(("x",), 0.5)
    h = Histogram("h_seconds", "h.", ("route",))
    h.observe(0.003, ("/",))
    g = Gauge("g", "g.")
    g.set(1.7e9)
    text = render([c, h, g])
    assert text.endswith("\n")
    for line in text.splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or SAMPLE.match(line), line


def test_each_family_has_exactly_one_help_and_type_before_its_samples():
    families = [Counter("a_total", "a."), Gauge("b", "b.")]
    families[0].inc()
    families[1].set(2)
    assert render(families).splitlines() == [
        "# HELP a_total a.",
        "# TYPE a_total counter",
        "a_total 1",
        "# HELP b b.",
        "# TYPE b gauge",
        "b 2",
    ]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3, "3"),
        (3.0, "3"),
        (0.25, "0.25"),
        (1.7e9, "1700000000"),
        (1e-05, "1e-05"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
    ],
)
def test_format_value(value, text):
    assert format_value(value) == text


def test_misuse_is_rejected():
    c = Counter("c_total", "c.", ("a",))
    with pytest.raises(ValueError, match="takes labels"):
        c.inc(("x", "y"))
    with pytest.raises(ValueError, match="only goes up"):
        c.inc(("x",), -1)
    with pytest.raises(ValueError, match="reserved"):
        Histogram("h", "h.", ("le",))
    with pytest.raises(ValueError, match="increasing"):
        Histogram("h", "h.", buckets=(2.0, 1.0))
