import pytest
from erp_app.versions import at_least, release_key


@pytest.mark.parametrize(
    ("version", "key"),
    [
        ("1.0.0", (1, 0, 0)),
        ("1.1.0-fault-crash", (1, 1, 0)),
        ("v2.10.3", (2, 10, 3)),
        ("1.2.3+build.5", (1, 2, 3)),
    ],
)
def test_release_key_reads_the_leading_release(version, key):
    assert release_key(version) == key


@pytest.mark.parametrize("version", ["", "latest", "1.0", "1.0.x", "1.0.0fault"])
def test_release_key_rejects_non_releases(version):
    with pytest.raises(ValueError, match="not a release version"):
        release_key(version)


def test_comparison_is_numeric_not_textual():
    assert at_least("1.10.0", "1.9.0")
    assert not at_least("1.9.0", "1.10.0")


def test_fault_builds_count_as_their_release():
    # Unlike a SemVer pre-release, 1.1.0-fault-x is release 1.1.0.
    assert at_least("1.1.0-fault-never-ready", "1.1.0")
    assert not at_least("1.0.9-fault-crash", "1.1.0")
