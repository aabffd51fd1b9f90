"""Fixtures of tests/backup (see backup_env.py): bk-* containers, removed at the end."""

from __future__ import annotations

import pytest
from backup_env import RUN_ID, Jobs, docker, seed, start_database


@pytest.fixture(scope="session")
def network():
    name = f"{RUN_ID}-net"
    docker("network", "create", name)
    yield name
    docker("network", "rm", name, check=False)


@pytest.fixture(scope="session")
def database(network):
    """One seeded database container shared by the tests that do not break it."""
    name = start_database(f"{RUN_ID}-db", network)
    seed(name)
    yield name
    docker("rm", "-f", "-v", name, check=False)


@pytest.fixture
def victim(network):
    """A database container of its own, for the tests that stop or fill things."""
    name = start_database(f"{RUN_ID}-victim", network)
    seed(name, customers=50, invoices=50)
    yield name
    docker("rm", "-f", "-v", name, check=False)


@pytest.fixture
def jobs(tmp_path, database) -> Jobs:
    job = Jobs(tmp_path, database)
    job.configure()
    return job


@pytest.fixture(scope="session", autouse=True)
def no_leftover_containers():
    yield
    left = docker("ps", "-aq", "--filter", f"name={RUN_ID}", check=False).stdout.split()
    if left:
        docker("rm", "-f", "-v", *left, check=False)

