# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

"""The names every part of the automation shares, defined once.

Roles and playbooks read them with the ``erp.ops.erp_contract`` lookup (role defaults such
as ``erp_app_slot_ports`` start from them), erpctl imports this module, and the host
health check gets them through its role's defaults. docs/conventions.md explains them.
Plain Python: no Ansible import.
"""

from __future__ import annotations

from ansible_collections.erp.ops.plugins.module_utils._batches import DEFAULT_SPEC
from ansible_collections.erp.ops.plugins.module_utils._health import DEFAULT_CHECKS

# Environments an entry playbook may be limited to (inventory groups of the same name).
ENVIRONMENTS = ("lab", "dev", "staging", "prod")
# Inventory groups of each environment's hosts.
LB_GROUP = "erp_lb"
APP_GROUP = "erp_app"
DB_GROUP = "erp_db"

# Each app host runs two slots, each in its own container on its own internal port.
SLOT_PORTS = {"blue": 8001, "green": 8002}
SLOTS = tuple(SLOT_PORTS)
APP_CONTAINER_PREFIX = "erp-app-"
LB_CONTAINER = "erp-lb"
DB_CONTAINER = "erp-db"
# The load balancer's backend of the app slots, and its internal frontend (passes /health
# to the app backends; the public frontend refuses /health*).
LB_BACKEND = "erp_app"
LB_INTERNAL_PORT = 8404

# Deploy state on the hosts.
STATE_DIR = "/var/lib/erp"
RELEASE_FILE = f"{STATE_DIR}/release.json"
LOCK_FILE = f"{STATE_DIR}/deploy.lock"
AUDIT_LOG = "/var/log/erp/deploy-audit.log"

# Endpoints every health gate, bake and host check probes (docs/app-contract.md).
HEALTH_CHECKS = DEFAULT_CHECKS
# Batches of a rollout when the inventory sets no erp_rollout_batches.
ROLLOUT_BATCHES = DEFAULT_SPEC


def app_container(slot):
    """Container name of an app slot."""
    if slot not in SLOTS:
        raise ValueError(f"slot must be one of {', '.join(SLOTS)}, got {slot!r}")
    return f"{APP_CONTAINER_PREFIX}{slot}"


CONTRACT = {
    "environments": list(ENVIRONMENTS),
    "lb_group": LB_GROUP,
    "app_group": APP_GROUP,
    "db_group": DB_GROUP,
    "slot_ports": dict(SLOT_PORTS),
    "slots": list(SLOTS),
    "app_containers": {slot: app_container(slot) for slot in SLOTS},
    "lb_container": LB_CONTAINER,
    "db_container": DB_CONTAINER,
    "lb_backend": LB_BACKEND,
    "lb_internal_port": LB_INTERNAL_PORT,
    "state_dir": STATE_DIR,
    "release_file": RELEASE_FILE,
    "lock_file": LOCK_FILE,
    "audit_log": AUDIT_LOG,
    "health_checks": list(HEALTH_CHECKS),
    "rollout_batches": list(ROLLOUT_BATCHES),
}
