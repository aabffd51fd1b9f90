#!/usr/bin/env bash
# The end of `make demo`, after `labctl up`: every lab host answers Ansible over SSH with
# its own engine; then the main job: deploy.yml puts ERP 1.0.0 on the lab behind the LB.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
export PATH="$repo/.venv/bin:$PATH" ANSIBLE_CONFIG="$repo/ansible.cfg"
release=${DEMO_RELEASE:-1.0.0}
lb_url="http://127.0.0.1:${LAB_HTTP_PORT:-8080}"

echo "== every lab host answers Ansible over SSH, each with its own Docker engine"
ansible lab -b -m ansible.builtin.command \
  -a "docker info --format 'engine {{ '{{' }}.ServerVersion{{ '}}' }} ({{ '{{' }}.Driver{{ '}}' }})'"

echo "== deploy.yml: ERP $release to the lab"
ansible-playbook deploy.yml -l lab -e "erp_version=$release" -e "erp_deploy_message='make demo'"

echo "== the ERP through the load balancer: $lb_url"
python3 - "$lb_url" <<'PY'
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1] + "/version", timeout=10) as response:
    print("GET /version ->", json.load(response))
PY
cat <<EOT

The ERP runs at $lb_url (try $lb_url/api/customers).
Next:
  ansible-playbook deploy.yml -l lab -e erp_version=1.1.0     # zero-downtime upgrade
  ansible-playbook rollback.yml -l lab                        # back to the previous release
  erpctl rollout --env lab --version 1.1.0                    # staged, with canary analysis
  make lab-status | make lab-down

Run history (ARA, docs/history.md): every playbook run from this checkout is recorded.
  make history                                        # then open http://127.0.0.1:8000
  ARA_BASE_DIR=$repo/.ara/server .venv/bin/ara playbook list   # the same in the terminal
EOT
