"""The node config: generated from one settings object, checked by Crossbar itself."""

import json
import os
import subprocess

import pytest

from router import nodeconfig
from router.processes import crossbar_executable
from router.settings import REPO_ROOT, NodeSettings, SettingsError


def test_committed_crossbar_config_is_the_rendering_of_the_default_settings():
    committed = json.loads((REPO_ROOT / ".crossbar" / "config.json").read_text())
    assert committed == nodeconfig.render(NodeSettings.from_env({}), REPO_ROOT / ".crossbar"), (
        "run `make node-config` to regenerate .crossbar/config.json"
    )


def test_crossbar_accepts_the_rendered_config(tmp_path):
    settings = NodeSettings.from_env({"DJWAMP_PORT": "9123", "DJWAMP_REALM": "shop"})
    nodeconfig.write(settings, tmp_path)
    env = {**os.environ, "DJWAMP_BACKEND_SECRET": "a-secret-of-sufficient-length"}
    result = subprocess.run([crossbar_executable(), "check", "--cbdir", str(tmp_path)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "a-secret-of-sufficient-length" not in result.stdout + result.stderr


def test_the_backend_secret_is_never_written_to_the_config(tmp_path):
    settings = NodeSettings.from_env({"DJWAMP_BACKEND_SECRET": "never-on-disk-0123456789"})
    text = nodeconfig.write(settings, tmp_path).read_text()
    assert "never-on-disk" not in text
    assert "${DJWAMP_BACKEND_SECRET}" in text


def test_the_node_directory_is_closed_to_other_users(tmp_path):
    # it holds the node's private key and the backend socket (the way to the backend role)
    cbdir = tmp_path / "node"
    cbdir.mkdir(mode=0o755)
    nodeconfig.write(NodeSettings.from_env({}), cbdir)
    assert cbdir.stat().st_mode & 0o777 == 0o700


def test_realm_port_and_origins_come_from_the_settings(tmp_path):
    settings = NodeSettings.from_env({"DJWAMP_PORT": "9000", "DJWAMP_REALM": "shop",
                                      "DJWAMP_ALLOWED_ORIGINS": "https://shop.example:443"})
    config = nodeconfig.render(settings, tmp_path)
    router, container = config["workers"]
    assert [realm["name"] for realm in router["realms"]] == ["shop"]
    assert {c["realm"] for c in container["components"]} == {"shop"}
    web = router["transports"][0]
    assert web["endpoint"]["port"] == 9000
    assert web["paths"]["ws"]["options"]["allowed_origins"] == ["https://shop.example:443"]
    assert web["paths"]["ws"]["options"]["allow_null_origin"] is False


def test_browser_roles_have_no_static_permissions_and_the_backend_is_not_on_tcp(tmp_path):
    config = nodeconfig.render(NodeSettings.from_env({}), tmp_path)
    router = config["workers"][0]
    roles = {role["name"]: role for role in router["realms"][0]["roles"]}
    assert roles["anonymous"] == {"name": "anonymous", "authorizer": "djwamp.authorize"}
    backend = [t for t in router["transports"] if t["id"] == "backend"][0]
    assert backend["endpoint"]["type"] == "unix"
    assert list(backend["auth"]) == ["ticket"]


def test_default_origins_are_the_sites_own():
    settings = NodeSettings.from_env({"DJWAMP_PORT": "8000"})
    assert settings.allowed_origins == ("http://127.0.0.1:8000", "http://localhost:8000")


@pytest.mark.parametrize("env, message", [
    ({"DJWAMP_PORT": "eighty"}, "DJWAMP_PORT='eighty' is not a port number"),
    ({"DJWAMP_PORT": "70000"}, "outside 1-65535"),
    ({"DJWAMP_REALM": "my realm"}, "not a valid realm name"),
    ({"DJWAMP_ALLOWED_ORIGINS": "https://shop.example"}, "Crossbar needs the port"),
    ({"DJWAMP_NODE_ID": "a b"}, "DJWAMP_NODE_ID"),
    ({"DJWAMP_BRIDGE_WORKER": "proxy"}, "DJWAMP_BRIDGE_WORKER='proxy': use one of router, container"),
])
def test_bad_environment_is_refused_with_a_message_naming_the_variable(env, message):
    with pytest.raises(SettingsError, match=message):
        NodeSettings.from_env(env)


def test_components_refuse_to_start_without_a_real_backend_secret():
    with pytest.raises(SettingsError, match="DJWAMP_BACKEND_SECRET"):
        NodeSettings.from_env({"DJWAMP_BACKEND_SECRET": "short"}).require_backend_secret()
    assert "hunter2" not in repr(NodeSettings.from_env({"DJWAMP_BACKEND_SECRET": "hunter2" * 4}))


@pytest.mark.parametrize("worker", ["router", "container"])
def test_the_bridge_runs_where_the_setting_says_and_the_node_awaits_what_joins_late(tmp_path, worker):
    router, container = nodeconfig.render(NodeSettings.from_env({"DJWAMP_BRIDGE_WORKER": worker}),
                                          tmp_path)["workers"]
    embedded = {c["id"]: c for c in router["components"]}
    joined_late = [c["id"] for c in container["components"]]
    assert ("bridge" in embedded) is (worker == "router")
    assert ("bridge" in joined_late) is (worker == "container")
    # browsers wait for exactly the components that join over the backend socket
    assert embedded["authenticator"]["extra"]["awaits"] == joined_late
    assert all(c["extra"]["embedded"] for c in embedded.values())


def test_the_bridge_is_embedded_in_the_router_by_default():
    assert NodeSettings.from_env({}).bridge_worker == "router"
