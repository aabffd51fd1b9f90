"""Variables as Ansible loads them from files, for unit tests that template them."""

from __future__ import annotations

from ansible.template import trust_as_template


def trusted(value):
    """Strings read from role or inventory files are templates to Ansible (their templates are
    evaluated when used); values built in a test or read back from JSON lose that mark."""
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, list):
        return [trusted(item) for item in value]
    if isinstance(value, dict):
        return {key: trusted(item) for key, item in value.items()}
    return value
