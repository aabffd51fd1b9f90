"""Encryption at rest with age: the database host holds only the public key; the backup is
checked before encryption, and verification works where the private key is."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from backup_env import Jobs


@pytest.fixture(autouse=True, scope="module")
def _age_is_installed():
    # `make setup` installs age; its absence is a broken setup, not a reason to skip.
    if shutil.which("age-keygen") is None:
        pytest.fail("age is not installed: run `make setup`")


def test_an_encrypted_backup_has_no_plaintext_and_verifies_with_the_identity(tmp_path, database):
    identity = tmp_path / "identity.txt"
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    recipient = subprocess.run(["age-keygen", "-y", str(identity)], check=True, capture_output=True,
                               text=True).stdout.strip()
    recipients = tmp_path / "recipients"
    recipients.write_text(recipient + "\n")
    jobs = Jobs(tmp_path, database)
    jobs.configure(ERP_BACKUP_AGE_RECIPIENTS_FILE=recipients)
    result = jobs.run("erp-backup")
    assert result.returncode == 0, result.stderr
    [backup] = jobs.backups()
    assert sorted(p.name for p in backup.iterdir()) == ["SHA256SUMS", "erp.dump.age", "globals.sql.age",
                                                         "manifest.json"]
    assert jobs.manifest(backup)["encrypted"] == "yes"
    assert b"CREATE ROLE" not in (backup / "globals.sql.age").read_bytes()

    without_key = jobs.run("erp-backup-verify")
    assert without_key.returncode == 1
    assert "encrypted and ERP_BACKUP_AGE_IDENTITY_FILE is not set" in without_key.stderr

    jobs.configure(ERP_BACKUP_AGE_RECIPIENTS_FILE=recipients, ERP_BACKUP_AGE_IDENTITY_FILE=identity)
    with_key = jobs.run("erp-backup-verify")
    assert with_key.returncode == 0, with_key.stderr
    assert list(tmp_path.joinpath("backups").glob(".verify-*")) == []  # decrypted copy removed
