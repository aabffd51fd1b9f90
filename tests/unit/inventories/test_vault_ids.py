"""Each environment's secrets are vaulted under that environment's own vault id.

ansible.cfg hands every run the lab's committed vault password, so `ansible-vault
encrypt_string` without `--vault-id <env>@...` encrypts with it (and labels the value with
no id, or the wrong one): such a value under inventories/prod would be a prod secret anyone
with the repository can read. Every vaulted value under inventories/<env> must carry the
label <env>, and the lab password must decrypt none but the lab's.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ansible.errors import AnsibleError
from ansible.parsing.vault import VaultLib, VaultSecret

REPO = Path(__file__).resolve().parents[3]
INVENTORIES = REPO / "inventories"
ENVIRONMENTS = sorted(p.name for p in INVENTORIES.iterdir() if (p / "group_vars" / p.name).is_dir())
HEADER = re.compile(r"\$ANSIBLE_VAULT;[^\s]*")
VALUE = re.compile(r"!vault \|\n((?:[ \t]+\S.*\n?)+)")


def vaulted_files(environment: str) -> list[Path]:
    return sorted(path for path in (INVENTORIES / environment).rglob("*")
                  if path.is_file() and "$ANSIBLE_VAULT" in path.read_text(errors="replace"))


def test_every_environment_has_vaulted_secrets():
    assert {"lab", "dev", "staging", "prod"} <= set(ENVIRONMENTS)
    assert all(vaulted_files(environment) for environment in ENVIRONMENTS)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_vaulted_value_carries_its_environment_s_vault_id(environment):
    for path in vaulted_files(environment):
        for header in HEADER.findall(path.read_text()):
            assert header == f"$ANSIBLE_VAULT;1.2;AES256;{environment}", (
                f"{path.relative_to(REPO)}: {header} is not vaulted with the vault id '{environment}': "
                f"ansible-vault encrypt_string --vault-id {environment}@prompt --encrypt-vault-id {environment}")


@pytest.mark.parametrize("environment", [e for e in ENVIRONMENTS if e != "lab"])
def test_the_lab_password_decrypts_no_other_environment_s_secret(environment):
    password = (INVENTORIES / "lab" / "vault-password-lab-only.txt").read_bytes().strip()
    vault = VaultLib([(environment, VaultSecret(password))])
    values = [VALUE.findall(path.read_text()) for path in vaulted_files(environment)]
    blocks = ["\n".join(line.strip() for line in block.splitlines()) for found in values for block in found]
    assert blocks
    for block in blocks:
        with pytest.raises(AnsibleError):
            vault.decrypt(block)
