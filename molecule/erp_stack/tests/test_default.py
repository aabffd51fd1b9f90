"""What a one-host environment ends up with after converge: erp_db, erp_app (1.0.0 in the
blue slot) and erp_lb on the same host, checked by what they do."""

import json
import os

import pytest

PUBLIC = "http://127.0.0.1"
APP_USER = "10001:10001"
HOST = f"molecule-{os.environ.get('MOLECULE_SCENARIO_NAME', 'erp_stack')}"


# --------------------------------------------------------------------------- database


def test_database_runs_healthy_with_its_data_on_the_named_volume(host, container):
    db = container("erp-db")
    assert db["State"]["Running"] and db["State"]["Health"]["Status"] == "healthy"
    data = [m for m in db["Mounts"] if m["Destination"] == "/var/lib/postgresql/data"]
    assert [(m["Type"], m["Name"]) for m in data] == [("volume", "erp-db-data")]
    # The cluster itself lives in the volume, so a new container finds it again.
    assert host.file("/var/lib/docker/volumes/erp-db-data/_data/PG_VERSION").content_string.strip() == "15"


def test_database_is_on_its_private_network_and_published_on_the_internal_address_only(host, container, address):
    db = container("erp-db")
    assert list(db["NetworkSettings"]["Networks"]) == ["erp-db"]
    assert [b["HostIp"] for b in db["NetworkSettings"]["Ports"]["5432/tcp"]] == [address]
    assert host.socket(f"tcp://{address}:5432").is_listening
    assert not host.socket("tcp://0.0.0.0:5432").is_listening
    assert not host.socket("tcp://127.0.0.1:5432").is_listening


def test_the_superuser_password_stays_out_of_the_container_config(container):
    env = container("erp-db")["Config"]["Env"]
    assert not [e for e in env if e.startswith("POSTGRES_PASSWORD=")]
    assert "POSTGRES_PASSWORD_FILE=/run/secrets/postgres-password" in env


# --------------------------------------------------------------------------- application


def test_blue_slot_runs_the_release_pinned_by_digest_and_healthy(container):
    app = container("erp-app-blue")
    assert app["State"]["Running"] and app["State"]["Health"]["Status"] == "healthy"
    assert app["Config"]["Image"].startswith("localhost:5000/erp-app@sha256:")
    assert app["Config"]["Labels"]["org.erp.version"] == "1.0.0"
    assert app["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"


def test_blue_slot_is_confined(host, container):
    app = container("erp-app-blue")
    assert app["Config"]["User"] == APP_USER
    assert host.check_output("docker exec erp-app-blue id -u") == "10001"
    assert app["HostConfig"]["ReadonlyRootfs"] is True
    write = host.run("docker exec erp-app-blue touch /opt/erp-app/probe")
    assert write.rc != 0 and "Read-only file system" in write.stderr
    assert host.run("docker exec erp-app-blue touch /tmp/probe").rc == 0  # the tmpfs
    assert "no-new-privileges" in app["HostConfig"]["SecurityOpt"]
    assert "NoNewPrivs:\t1" in host.check_output("docker exec erp-app-blue cat /proc/1/status")
    assert app["HostConfig"]["CapDrop"] == ["ALL"]
    assert app["HostConfig"]["Memory"] == 256 * 1024 * 1024
    assert app["HostConfig"]["NanoCpus"] > 0
    assert app["HostConfig"]["LogConfig"]["Config"]["max-size"] == "10m"


def test_env_file_is_readable_by_root_only(host):
    env = host.file("/etc/erp/app.env")
    assert (env.user, env.group, env.mode) == ("root", "root", 0o600)
    assert "ERP_DATABASE_URL=postgresql://erp:" in env.content_string


def test_blue_slot_is_ready_with_its_database_on_the_internal_address(http, container, address):
    assert [b["HostIp"] for b in container("erp-app-blue")["NetworkSettings"]["Ports"]["8000/tcp"]] == [address]
    status, body = http(f"http://{address}:8001/health/ready")
    assert status == 200, body
    ready = json.loads(body)
    assert ready["status"] == "pass" and ready["version"] == "1.0.0"
    assert ready["checks"]["postgresql:connection"][0]["status"] == "pass"
    assert ready["checks"]["postgresql:schema"][0]["status"] == "pass"
    status, body = http(f"http://{address}:8001/health/database")
    assert status == 200 and json.loads(body)["checks"]["postgresql:writable"][0]["status"] == "pass"


# --------------------------------------------------------------------------- load balancer


def test_public_frontend_serves_the_release(http):
    status, body = http(f"{PUBLIC}/version")
    assert status == 200, body
    assert json.loads(body)["version"] == "1.0.0"
    status, body = http(f"{PUBLIC}/api/customers?limit=1")
    assert status == 200, body


@pytest.mark.parametrize("path", ["/health/metrics", "/health/ready", "/health", "/stats", "/metrics"])
def test_public_frontend_refuses_health_metrics_and_stats(http, address, path):
    for base in (PUBLIC, f"http://{address}"):
        status, body = http(base + path)
        assert status == 404, (base + path, status, body[:200])
        assert "Statistics Report" not in body and "haproxy_" not in body and "erp_build_info" not in body


def test_internal_frontend_is_bound_to_the_internal_address_only(host, http, address):
    assert host.socket(f"tcp://{address}:8404").is_listening
    assert not host.socket("tcp://0.0.0.0:8404").is_listening
    status, _ = http("http://127.0.0.1:8404/stats")
    assert status == 0  # nothing listens there


def test_internal_frontend_answers_stats_metrics_and_app_health(http, address):
    status, body = http(f"http://{address}:8404/stats")
    assert status == 200 and "Statistics Report" in body
    status, body = http(f"http://{address}:8404/metrics")
    assert status == 200 and "haproxy_process_" in body
    status, body = http(f"http://{address}:8404/health/metrics")
    assert status == 200 and 'erp_build_info{version="1.0.0"' in body


def test_runtime_api_shows_blue_serving_and_green_in_maintenance(host):
    state = host.check_output(
        "python3 -c \"import socket; s = socket.socket(socket.AF_UNIX); s.connect('/run/erp-lb/admin.sock'); "
        "s.sendall(b'show servers state erp_app\\n'); print(s.makefile().read())\"")
    # '# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state ...'
    servers = {fields[3]: fields for fields in (line.split() for line in state.splitlines())
               if len(fields) > 6 and fields[1] == "erp_app"}
    blue, green = servers[f"{HOST}_blue"], servers[f"{HOST}_green"]
    # srv_admin_state flags: 0x01 forced (runtime) maintenance, 0x02 and 0x20 inherited
    # ones; 0x04 only records the configuration's `disabled`, which the runtime overrides.
    assert blue[5] == "2" and int(blue[6]) & 0x23 == 0  # running, taking traffic
    assert int(green[6]) & 0x01  # put in maintenance: takes no traffic


def test_haproxy_runs_confined(container):
    lb = container("erp-lb")
    assert lb["State"]["Running"]
    assert lb["HostConfig"]["ReadonlyRootfs"] is True
    caps = [cap.removeprefix("CAP_") for cap in lb["HostConfig"]["CapAdd"]]
    assert lb["HostConfig"]["CapDrop"] == ["ALL"] and caps == ["NET_BIND_SERVICE"]
    assert "no-new-privileges" in lb["HostConfig"]["SecurityOpt"]
