"""The engine a host ends up with: running, configured, and able to run a container."""

import json


def test_engine_service_is_enabled_and_running(host):
    service = host.service("docker")
    assert service.is_running
    assert service.is_enabled


def test_daemon_runs_with_the_configured_settings(host):
    info = json.loads(host.check_output("docker info --format '{{json .}}'"))
    assert info["LiveRestoreEnabled"] is True
    assert info["LoggingDriver"] == "json-file"
    assert info["Driver"] == "overlay2"
    insecure = info["RegistryConfig"]["IndexConfigs"]
    assert "registry.internal:5000" in insecure
    assert insecure["registry.internal:5000"]["Secure"] is False


def test_containers_get_log_rotation_and_the_custom_address_pool(host):
    # A container made from an empty imported image needs no registry.
    host.check_output("tar -cf - --files-from /dev/null | docker import - molecule/empty:1 >/dev/null")
    host.check_output("docker create --name logprobe molecule/empty:1 /none >/dev/null")
    try:
        log_config = json.loads(host.check_output("docker inspect -f '{{json .HostConfig.LogConfig}}' logprobe"))
    finally:
        host.run("docker rm -f logprobe")
    assert log_config == {"Type": "json-file", "Config": {"max-file": "3", "max-size": "20m"}}
    host.check_output("docker network create molecule-probe >/dev/null")
    try:
        subnet = host.check_output("docker network inspect -f '{{(index .IPAM.Config 0).Subnet}}' molecule-probe")
    finally:
        host.run("docker network rm molecule-probe")
    assert subnet.startswith("10.222.")
