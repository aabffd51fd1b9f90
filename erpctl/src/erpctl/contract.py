"""Every name erpctl assumes from the playbooks and the hosts, in one place.

This is "the contract with deploy.yml" written down in erpctl/README.md; reconciling
erpctl with the playbooks means editing this module (and that README section) only.
"""

from __future__ import annotations

from erpctl._shared import names

# Entry playbooks, relative to the repository root (runner's project_dir).
DEPLOY_PLAYBOOK = "playbooks/deploy.yml"
ROLLBACK_PLAYBOOK = "playbooks/rollback.yml"
BACKUP_PLAYBOOK = "playbooks/backup.yml"
LOCK_PLAYBOOK = "playbooks/lock.yml"

# Inventory: each environment is a group with these children.
APP_GROUP = names.APP_GROUP
LB_GROUP = names.LB_GROUP
DB_GROUP = names.DB_GROUP
ROLE_GROUPS = (LB_GROUP, APP_GROUP, DB_GROUP)
INVENTORY_DIR = "inventories"

# Extra variables of deploy.yml: the release, which app hosts this run may switch (the
# others are left alone), the batches inside this run, the stage's number (stages after the
# first skip converging, the pre-deploy backup and migrations: done once per rollout), and
# the erpctl lock this run holds (deploy.yml neither takes nor releases it).
VAR_VERSION = "erp_version"
VAR_ROLLOUT_HOSTS = "erp_rollout_hosts"
VAR_ROLLOUT_BATCHES = "erp_rollout_batches"
VAR_ROLLOUT_STAGE = "erp_rollout_stage"
VAR_LOCK_ID = "erp_lock_id"
# Extra variables of lock.yml (erpctl/lock.py): what to do with the lock (status, check,
# acquire, release), the run id it is taken or released as, the process it lives as long
# as, and the message recorded in it.
VAR_LOCK_ACTION = "erp_lock_action"
VAR_LOCK_RUN = "erp_lock_run"
VAR_LOCK_PID = "erp_lock_pid"
VAR_DEPLOY_MESSAGE = "erp_deploy_message"
# Extra variables of rollback.yml: the hosts to put back (and erp_version when the target
# release is known; without it rollback.yml takes the previous good release from history).
VAR_ROLLBACK_HOSTS = "erp_rollback_hosts"

# What deploy.yml hands back at its end with set_stats (runner's playbook_on_stats event,
# artifact_data; AWX workflow artifacts): every app host's release state as written to its
# release.json in that run, {host: state}. A stage is verified from it, without reading
# every host again.
STATS_RELEASE_STATES = "erp_release_states"
# What lock.yml hands back: {"host", "action", "holder" (the lock document or null), "changed"}.
STATS_LOCK = "erp_lock"

# Files on the app hosts (docs/conventions.md: /var/lib/erp holds the deploy's state).
RELEASE_FILE = names.RELEASE_FILE

# Address of each app slot: http://{erp_internal_address}:{port}; the ports can be set per
# host or group with erp_app_slot_ports (docs/conventions.md: blue 8001, green 8002).
ADDRESS_VAR = "erp_internal_address"
SLOT_PORTS_VAR = "erp_app_slot_ports"
DEFAULT_SLOT_PORTS = dict(names.SLOT_PORTS)
# The load balancer's internal frontend (roles/erp_lb: erp_lb_internal_port, the contract's by default):
# it passes /health to the app backends; the public frontend refuses /health*.
LB_PORT_VAR = "erp_lb_internal_port"
DEFAULT_LB_PORT = names.LB_INTERNAL_PORT

HEALTH_PATH = "/health"
METRICS_PATH = "/health/metrics"

# Metric names from docs/app-contract.md, section 4.2. Health and metrics routes are
# excluded so the load balancer's own checks do not dilute the user traffic analysed.
REQUESTS_METRIC = "erp_http_requests_total"
START_TIME_METRIC = "erp_process_start_time_seconds"
DURATION_METRIC = "erp_http_request_duration_seconds"
USER_ROUTES = 'route!~"/health.*"'
TOTAL_SELECTOR = f"{REQUESTS_METRIC}{{{USER_ROUTES}}}"
ERRORS_SELECTOR = f'{REQUESTS_METRIC}{{{USER_ROUTES},status=~"5.."}}'
LATENCY_SELECTOR = f"{DURATION_METRIC}{{{USER_ROUTES}}}"
