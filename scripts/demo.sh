#!/usr/bin/env bash
# The end of `make demo`, after `labctl up`: show that every lab host answers Ansible
# over SSH and runs its own Docker engine.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
export PATH="$repo/.venv/bin:$PATH" ANSIBLE_CONFIG="$repo/ansible.cfg"

echo "== every lab host answers Ansible over SSH"
ansible lab -m ansible.builtin.ping
echo "== each host's own Docker engine"
ansible lab -b -m ansible.builtin.command -a "docker info --format '{{ '{{' }}.ServerVersion{{ '}}' }} {{ '{{' }}.Driver{{ '}}' }}'"
