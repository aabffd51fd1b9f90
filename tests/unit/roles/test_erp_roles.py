"""What the erp_lb and erp_app templates promise, rendered from the roles' own defaults."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

import jinja2
import pytest
import yaml
from ansible_collections.erp.ops.plugins.module_utils._contract import CONTRACT

ROLES = Path(__file__).resolve().parents[3] / "roles"
CONTRACT_LOOKUP = re.compile(r"\{\{ lookup\('erp\.ops\.erp_contract', '(\w+)'\) \}\}")


def render(role: str, template: str, **variables) -> str:
    # The roles' defaults and plain (untemplated) role vars; values the defaults look up from
    # the collection's contract are given from it.
    defaults = yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text())
    role_vars = yaml.safe_load((ROLES / role / "vars" / "main.yml").read_text())
    defaults.update({name: value for name, value in role_vars.items() if "{{" not in str(value)})
    defaults.update({f"{role}_slot_ports": CONTRACT["slot_ports"]})
    defaults.update({name: CONTRACT[match.group(1)] for name, value in defaults.items()
                     if (match := CONTRACT_LOOKUP.fullmatch(str(value)))})
    # Config files, not HTML: autoescaping would corrupt them (Ansible renders without it too).
    env = jinja2.Environment(  # noqa: S701
        loader=jinja2.FileSystemLoader(ROLES / role / "templates"), undefined=jinja2.StrictUndefined)
    context = {**defaults, "ansible_managed": "managed", **variables}
    return env.get_template(template).render(**context)


@pytest.fixture
def haproxy_cfg():
    hostvars = {"app1": {"erp_internal_address": "10.0.0.5"}, "app2": {"erp_internal_address": "10.0.0.6"}}
    return render(
        "erp_lb", "haproxy.cfg.j2", _erp_lb_app_hosts=["app1", "app2"], hostvars=hostvars,
        _erp_lb_state_file="/var/lib/haproxy/state/server-state", erp_lb_internal_address="10.0.0.3",
    )


def test_every_slot_of_every_app_host_is_a_checked_server_that_starts_disabled(haproxy_cfg):
    servers = [line.split() for line in haproxy_cfg.splitlines() if line.strip().startswith("server ")]
    assert [s[1] for s in servers] == ["app1_blue", "app1_green", "app2_blue", "app2_green"]
    assert [s[2] for s in servers] == ["10.0.0.5:8001", "10.0.0.5:8002", "10.0.0.6:8001", "10.0.0.6:8002"]
    assert all(s[3:] == ["check", "disabled"] for s in servers)
    assert "http-check send meth GET uri /health/ready" in haproxy_cfg


def test_health_and_stats_are_not_public(haproxy_cfg):
    public = haproxy_cfg.split("frontend erp_public")[1].split("frontend erp_internal")[0]
    internal = haproxy_cfg.split("frontend erp_internal")[1].split("backend ")[0]
    assert "stats" not in public and "prometheus-exporter" not in public
    assert "bind 10.0.0.3:8404" in internal and "stats enable" in internal


# The public frontend's deny rules on the request path: `path[,url_dec][,lower] -m reg <re>`.
DENY = re.compile(r"^\s*http-request deny deny_status (\d+) if \{ path((?:,\w+)*) -m reg (\S+) \}$", re.M)
SPELLINGS = [line for line in (ROLES.parent / "tests" / "internal_path_spellings.txt").read_text().splitlines()
             if line and not line.startswith("#")]


def public_refusal(public: str, target: str) -> str | None:
    """The status the public frontend's rules deny ``target`` with, as HAProxy judges it."""
    path = target.split("?", 1)[0].split("#", 1)[0]
    for status, converters, pattern in DENY.findall(public):
        sample = path
        for converter in filter(None, converters.split(",")):
            sample = {"url_dec": urllib.parse.unquote, "lower": str.lower}[converter](sample)
        if re.search(pattern, sample):
            return status
    return None


@pytest.mark.parametrize("target", [s for s in SPELLINGS if "health" in urllib.parse.unquote(s).lower()])
def test_every_spelling_of_a_health_path_is_refused_by_the_public_frontend(haproxy_cfg, target):
    public = haproxy_cfg.split("frontend erp_public")[1].split("frontend erp_internal")[0]
    assert public_refusal(public, target) in ("400", "404"), target


@pytest.mark.parametrize("target", ["/version", "/api/customers?limit=1", "/api/customers?q=/health/../x",
                                    "/api/invoices/42", "/static/app.js"])
def test_the_erp_s_own_paths_pass_the_public_frontend(haproxy_cfg, target):
    public = haproxy_cfg.split("frontend erp_public")[1].split("frontend erp_internal")[0]
    assert public_refusal(public, target) is None, target


def test_runtime_states_survive_reloads_and_only_idempotent_requests_are_retried(haproxy_cfg):
    assert "server-state-file /var/lib/haproxy/state/server-state" in haproxy_cfg
    assert "load-server-state-from-file global" in haproxy_cfg
    assert "stats socket /run/haproxy/admin.sock mode 600 level admin" in haproxy_cfg
    assert "http-request disable-l7-retry if !METH_GET !METH_HEAD" in haproxy_cfg


def test_app_env_file_carries_the_contract_settings():
    text = render("erp_app", "app.env.j2", _erp_app_database_url="postgresql://erp:pw@db:5432/erp",
                  erp_app_secret_key="k" * 20, erp_app_extra_env={"ERP_FAULT_DELAY_SECONDS": "5"})
    lines = dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert lines == {
        "ERP_DATABASE_URL": "postgresql://erp:pw@db:5432/erp", "ERP_SECRET_KEY": "k" * 20, "ERP_PORT": "8000",
        "ERP_LOG_LEVEL": "INFO", "ERP_SHUTDOWN_GRACE_SECONDS": "10", "ERP_SHUTDOWN_DRAIN_SECONDS": "0",
        "ERP_FAULT_DELAY_SECONDS": "5",
    }


def test_app_container_stop_timeout_outlasts_the_shutdown_grace():
    text = (ROLES / "erp_app" / "vars" / "main.yml").read_text()
    assert '_erp_app_stop_timeout: "{{ erp_app_shutdown_grace_seconds | int + 5 }}"' in text
    slot = (ROLES / "erp_app" / "tasks" / "slot.yml").read_text()
    for setting in ("read_only: true", "no-new-privileges", "user: \"{{ erp_app_user }}\"", "cap_drop:",
                    "stop_timeout: \"{{ _erp_app_stop_timeout | int }}\"", "erp-app, healthcheck, /health/live"):
        assert setting in slot
