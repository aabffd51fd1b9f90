"""health.yml and incident.yml against the scenario's host, run from the controller.

What the lab does not show: health.yml reporting a crashed slot, and incident.yml's
redaction of an audit log line holding a token and a database URL, in normal and check
mode. A healthy health.yml report and the metrics promtool accepts are proven on the lab
(tests/lab/test_health.py, tests/lab/test_monitoring.py).

Runs after test_default.py (file order), when the blue slot serves again. The host plays
app and database host of a one-host environment `mol`, reached through the docker
connection; its inventory holds vault_* values that the incident bundle must not contain.
"""

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
HOST = f"molecule-{os.environ.get('MOLECULE_SCENARIO_NAME', 'erp_healthcheck')}"
SECRETS = ("s3cr3t-vault-value", "molecule-only-password", "abc123secret")
INVENTORY = f"""
mol:
  children:
    erp_app:
      hosts:
        {HOST}:
    erp_db:
      hosts:
        {HOST}:
  vars:
    ansible_connection: community.docker.docker
    ansible_user: root
    erp_internal_address: 127.0.0.1
    erp_environment_names: [mol]
    vault_erp_db_password: molecule-only-password
    vault_erp_test_token: s3cr3t-vault-value
"""


@pytest.fixture(scope="module")
def playbook(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("playbooks")
    (workdir / "hosts.yml").write_text(INVENTORY)
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0"}
    binary = Path(sys.executable).parent / "ansible-playbook"

    def run(name, *extra):
        return subprocess.run([str(binary), "-i", str(workdir / "hosts.yml"), name, "-l", "mol", *extra],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)

    run.workdir = workdir
    return run


def test_incident_bundle_names_the_crashed_slot_and_holds_no_secret(host, playbook):
    host.run_expect([0], "mkdir -p /var/log/erp && printf '%s\\n' 'deploy by alice token=abc123secret' "
                         "'url postgresql://erp:molecule-only-password@erp-db:5432/erp' 'note s3cr3t-vault-value' "
                         "> /var/log/erp/deploy-audit.log")
    host.run_expect([0], "docker update --restart=no erp-app-blue && docker kill erp-app-blue")
    try:
        health = playbook("health.yml")
        assert health.returncode != 0
        assert "app_serving" in health.stdout
        artifacts = playbook.workdir / "artifacts"
        options = ["-e", f"incident_artifacts_dir={artifacts}", "-e", "incident_db_user=erp"]
        incident = playbook("incident.yml", *options)
        # read-only on the host, so check mode collects the same bundle
        checked = playbook("incident.yml", "--check", *options)
    finally:
        host.run("docker update --restart=unless-stopped erp-app-blue && docker start erp-app-blue")
    assert incident.returncode == 0, incident.stdout[-3000:]
    assert checked.returncode == 0, checked.stdout[-3000:]
    assert "container erp-app-blue (erp-app:1.0.0): Exited (137)" in incident.stdout
    bundles = sorted(artifacts.glob("incident-*.tar.gz"))
    assert len(bundles) == 2
    with tarfile.open(bundles[0]) as archive:
        members = {member.name[member.name.index(HOST):]: archive.extractfile(member).read().decode()
                   for member in archive.getmembers() if member.isfile()}
    assert "erp-app-blue" in members[f"{HOST}/summary.txt"]
    assert {f"{HOST}/logs-erp-app-blue.txt", f"{HOST}/logs-erp-db.txt", f"{HOST}/containers.txt",
            f"{HOST}/database.txt", f"{HOST}/var_log_erp_deploy-audit.log"} <= set(members)
    assert "pg_stat_activity" not in members[f"{HOST}/database.txt"]  # the query's result, not the query
    assert "postgresql://erp:***@erp-db" in members[f"{HOST}/var_log_erp_deploy-audit.log"]
    leaked = [(name, secret) for name, text in members.items() for secret in SECRETS if secret in text]
    assert not leaked
