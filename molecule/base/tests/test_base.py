"""Role base: time, upgrades, journal and names as the host itself sees them."""

from __future__ import annotations

import urllib.request

from provision_host import ADDRESS, NAME


def test_time_is_kept_by_chrony_in_utc(host):
    chrony = host.service("chrony")
    assert chrony.is_running
    assert chrony.is_enabled
    assert host.check_output("date +%Z") == "UTC"
    assert host.run("chronyc -n tracking").rc == 0  # chronyd answers, with the (empty) sources it was given


def test_apt_installs_security_updates_daily(host):
    config = host.check_output("apt-config dump")
    assert 'APT::Periodic::Update-Package-Lists "1";' in config
    assert 'APT::Periodic::Unattended-Upgrade "1";' in config
    assert "label=Debian-Security" in config
    assert 'Unattended-Upgrade::Automatic-Reboot "false";' in config
    assert host.package("unattended-upgrades").is_installed


def test_the_journal_is_capped(host):
    config = host.check_output("systemd-analyze cat-config systemd/journald.conf")
    assert "SystemMaxUse=1G" in config
    assert host.service("systemd-journald").is_running


def test_the_host_has_its_name_and_lists_the_environment_s_hosts(host):
    assert host.check_output("hostname") == NAME
    # Docker also writes this host's own line to /etc/hosts: look inside the role's block.
    block = host.check_output("sed -n '/BEGIN ERP hosts/,/END ERP hosts/p' /etc/hosts")
    assert f"{ADDRESS} {NAME}" in block.splitlines()


def test_kernel_settings_for_containers_apply_at_boot(host):
    # /proc/sys is read-only in this container (base_sysctl_apply: false): what systemd-sysctl
    # applies at boot, all of its configuration merged.
    settings = host.check_output("/lib/systemd/systemd-sysctl --cat-config")
    assert "net.ipv4.ip_forward = 1" in settings


def test_node_exporter_serves_textfile_metrics_on_the_internal_address_only(host):
    exporter = host.service("prometheus-node-exporter")
    assert exporter.is_running
    assert exporter.is_enabled
    listening = host.check_output("ss -Htln 'sport = :9100' | awk '{print $4}'").split()
    assert listening == [f"{ADDRESS}:9100"]
    # What erp_healthcheck and erp_backup do: a .prom file in the textfile directory, written
    # by root; this machine scrapes it over the network as Prometheus would.
    host.run("printf '# HELP erp_probe A probe.\\n# TYPE erp_probe gauge\\nerp_probe 42\\n'"
             " > /var/lib/prometheus/node-exporter/probe.prom")
    try:
        with urllib.request.urlopen(f"http://{ADDRESS}:9100/metrics", timeout=10) as response:
            scraped = response.read().decode()
    finally:
        host.run("rm -f /var/lib/prometheus/node-exporter/probe.prom")
    assert "\nerp_probe 42\n" in scraped
    assert "\nnode_textfile_scrape_error 0\n" in scraped
