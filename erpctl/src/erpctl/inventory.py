"""The environments of the inventory, their hosts, and the URLs erpctl probes.

Works on ``ansible-inventory --list`` output. Ansible groups are global: if two
environments shared a child group (``erp_app`` under both ``lab`` and ``prod``), ``-l lab``
would select prod hosts too. erpctl refuses such an inventory instead of deploying to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from erpctl import contract
from erpctl.errors import ErpctlError


@dataclass
class Inventory:
    data: dict

    @property
    def hostvars_all(self) -> dict:
        return (self.data.get("_meta") or {}).get("hostvars") or {}

    def _group(self, name: str) -> dict | None:
        group = self.data.get(name)
        return group if isinstance(group, dict) else None

    def group_hosts(self, name: str, _seen=None) -> list[str]:
        """Hosts of a group and its children, in inventory order, without duplicates."""
        seen = set() if _seen is None else _seen
        if name in seen:
            return []
        seen.add(name)
        group = self._group(name) or {}
        hosts = list(group.get("hosts") or [])
        for child in group.get("children") or []:
            hosts.extend(self.group_hosts(child, seen))
        return list(dict.fromkeys(hosts))

    def environments(self) -> list[str]:
        """Groups that have one of erp_lb/erp_app/erp_db among their children."""
        return sorted(name for name, group in self.data.items()
                      if isinstance(group, dict) and set(group.get("children") or []) & set(contract.ROLE_GROUPS))

    def hostvars(self, host: str) -> dict:
        return self.hostvars_all.get(host) or {}

    def env_hosts(self, env: str, group: str) -> list[str]:
        """Hosts in both ``env`` and ``group`` (``<env>:&<group>``), in inventory order."""
        members = set(self.group_hosts(group))
        return [host for host in self.group_hosts(env) if host in members]

    def check_env(self, env: str) -> None:
        """Refuse unknown environments and environments that share hosts with another one.

        :raises ErpctlError: with one line saying what is wrong.
        """
        known = self.environments()
        if env not in known:
            shown = ", ".join(known) or "none"
            raise ErpctlError(f"the inventory has no environment group {env!r} with erp_lb/erp_app/erp_db children "
                              f"(it has: {shown})")
        mine = set(self.group_hosts(env))
        for other in known:
            if other == env:
                continue
            shared = sorted(mine & set(self.group_hosts(other)))
            if shared:
                raise ErpctlError(
                    f"inventory: hosts {', '.join(shared)} are in both {env!r} and {other!r}; environments must not "
                    "share groups (erp_app under two environments joins them), or -l would cross environments")
        if not self.env_hosts(env, contract.APP_GROUP):
            raise ErpctlError(f"environment {env!r} has no {contract.APP_GROUP} hosts")


def env_inventory_source(repo: Path, env: str, override: str | None = None) -> str:
    """The inventory of one environment: ``<repo>/inventories/<env>`` (one directory per
    environment, each loading only its own group_vars and vault), or ``--inventory``.

    :raises ErpctlError: naming the known environments when ``env`` has no directory.
    """
    if override:
        if not Path(override).exists():
            raise ErpctlError(f"inventory {override} does not exist")
        return str(Path(override).resolve())
    base = repo / contract.INVENTORY_DIR
    if not base.is_dir():
        raise ErpctlError(f"inventory {base} does not exist")
    source = base / env
    if not source.exists():
        known = sorted(path.name for path in base.iterdir() if path.is_dir())
        raise ErpctlError(f"unknown environment {env!r} (inventories in {base}: {', '.join(known) or 'none'})")
    return str(source)


def load_inventory(runner, sources: list[str]) -> Inventory:
    """Read the inventory through the runner; a missing source is one clear line."""
    missing = [source for source in sources if not Path(source).exists()]
    if missing:
        raise ErpctlError(f"inventory {', '.join(missing)} does not exist")
    data = runner.inventory(sources)
    if not isinstance(data, dict):
        raise ErpctlError(f"inventory {', '.join(sources)}: ansible-inventory returned no inventory")
    return Inventory(data)


def slot_port(hostvars: dict, slot: str) -> int:
    ports = hostvars.get(contract.SLOT_PORTS_VAR) or contract.DEFAULT_SLOT_PORTS
    if slot not in ports:
        raise ErpctlError(f"slot {slot!r} has no port (known slots: {', '.join(sorted(ports))})")
    return int(ports[slot])


def _address(host: str, hostvars: dict) -> str:
    address = hostvars.get(contract.ADDRESS_VAR)
    if not address:
        raise ErpctlError(f"host {host} has no {contract.ADDRESS_VAR} in the inventory")
    return str(address)


def app_base_url(host: str, hostvars: dict, slot: str) -> str:
    """``http://{erp_internal_address}:{slot port}`` of one app host's slot."""
    return f"http://{_address(host, hostvars)}:{slot_port(hostvars, slot)}"


def lb_base_url(host: str, hostvars: dict) -> str:
    """``http://{erp_internal_address}:{erp_lb_internal_port or the contract's}``: the LB's internal frontend."""
    port = int(hostvars.get(contract.LB_PORT_VAR) or contract.DEFAULT_LB_PORT)
    return f"http://{_address(host, hostvars)}:{port}"
