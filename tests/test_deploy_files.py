"""The deployment files in deploy/ are valid and agree with the code: nginx and HAProxy
accept their configs (their own `-t`/`-c`), the YAML parses, every port and probe points at
what `tidings serve` listens on and answers, and every environment variable handed to a
Tidings process is one that tidings.config.settings.Settings reads."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tidings.config.settings import Settings
from tidings.support.metrics import Metrics

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
# Environment variables of the image and the interpreter, not of Tidings.
NOT_TIDINGS = {"PATH", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PIP_NO_CACHE_DIR",
               "PIP_DISABLE_PIP_VERSION_CHECK"}


def setting_names() -> set[str]:
    names = set()
    for field in Settings.model_fields.values():
        assert isinstance(field.validation_alias, str)
        names.add(field.validation_alias)
    return names


def assert_settings(names: set[str], where: str) -> None:
    unknown = names - setting_names() - NOT_TIDINGS
    assert not unknown, f"{where} sets variables Tidings does not read: {sorted(unknown)}"


def need(binary: str) -> str:
    path = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{binary} is not installed (required under CI=true)")
        pytest.skip(f"{binary} is not installed")
    return path


def default_port() -> int:
    return int(Settings.model_fields["port"].default)


# --- load balancers -------------------------------------------------------------------


def nginx_upstream_ports(text: str) -> list[int]:
    return [int(port) for port in re.findall(r"^\s*server 127\.0\.0\.1:(\d+)", text, re.M)]


def test_nginx_accepts_its_config(tmp_path: Path) -> None:
    nginx = need("nginx")
    (tmp_path / "tmp").mkdir()
    result = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-e", "stderr", "-c", str(DEPLOY / "nginx.conf")],
        capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_nginx_config_balances_sockets_as_described() -> None:
    text = (DEPLOY / "nginx.conf").read_text()
    assert "hash $remote_addr consistent;" in text
    assert "proxy_set_header Upgrade $http_upgrade;" in text
    assert "proxy_set_header Connection $connection_upgrade;" in text
    assert re.search(r"proxy_next_upstream error timeout;", text)
    servers = re.findall(r"^\s*server 127\.0\.0\.1:\d+ (.*);", text, re.M)
    assert len(servers) >= 2
    assert all(options == "max_fails=1 fail_timeout=5s" for options in servers)
    # Idle sockets outlive the Engine.IO ping cycle (interval 25 s + timeout 20 s).
    timeouts = [int(value) for value in re.findall(r"proxy_read_timeout (\d+)s;", text)]
    assert timeouts and min(timeouts) > 25 + 20
    assert nginx_upstream_ports(text) == [3001, 3002]


def test_haproxy_accepts_its_config() -> None:
    haproxy = need("haproxy")
    result = subprocess.run([haproxy, "-c", "-f", str(DEPLOY / "haproxy.cfg")],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_haproxy_checks_health_every_second() -> None:
    text = (DEPLOY / "haproxy.cfg").read_text()
    assert "http-check send meth GET uri /health" in text
    assert re.search(r"default-server inter 1s ", text)
    assert "hash-type consistent" in text
    assert re.findall(r"server node\d 127\.0\.0\.1:(\d+) check", text) == ["3001", "3002"]
    timeouts = [int(value) for value in re.findall(r"timeout (?:client|server|tunnel) (\d+)s",
                                                   text)]
    assert len(timeouts) == 3 and min(timeouts) > 25 + 20


# --- image ----------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck() -> None:
    instructions = dockerfile_instructions()
    stages = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert len(stages) >= 2 and " AS " in stages[0]
    assert any(rest.startswith("--from=") for keyword, rest in instructions
               if keyword == "COPY")
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    checks = [rest for keyword, rest in instructions if keyword == "HEALTHCHECK"]
    assert len(checks) == 1 and "/health" in checks[0]
    assert [rest for keyword, rest in instructions if keyword == "EXPOSE"] == [
        str(default_port())]
    env: set[str] = set()
    for keyword, rest in instructions:
        if keyword == "ENV":
            env.update(re.findall(r"(?:^|\s)([A-Z_][A-Z0-9_]*)=", rest))
    assert {"HOST", "WEBSOCKET_PORT"} <= env
    assert_settings(env, "deploy/Dockerfile")


def test_the_image_build_copies_every_file_the_package_metadata_names() -> None:
    """`pip install .` in the image reads the readme and the licence files that
    pyproject.toml names: each must be copied in, and not ignored by .dockerignore."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    named = {project["readme"], *project["license-files"]}
    assert "LICENSE" in named and project["license"] == "Apache-2.0"
    copied: set[str] = set()
    for keyword, rest in dockerfile_instructions():
        if keyword == "COPY" and not rest.startswith("--from="):
            copied.update(rest.split()[:-1])
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if not line.startswith("#")}
    for name in named:
        assert (ROOT / name).is_file(), name
        assert name in copied, f"deploy/Dockerfile does not copy {name}"
        assert name not in ignored, name


def test_dockerignore_keeps_the_build_context_small() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests", ".env"} <= set(ignored)


# --- docker compose -------------------------------------------------------------------


def test_compose_runs_two_nodes_a_worker_and_nginx() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services: dict[str, Any] = compose["services"]
    assert {"postgres", "redis", "node1", "node2", "worker", "nginx"} <= set(services)
    assert services["nginx"]["ports"] == ["8080:8080"]
    assert "./nginx.conf:/etc/tidings/nginx.conf:ro" in services["nginx"]["volumes"]
    node_ports = []
    for name, service in services.items():
        if service.get("image") != "tidings:latest":
            continue
        environment = service.get("environment", {})
        assert_settings(set(environment), f"service {name}")
        if name.startswith("node"):
            # The nodes live in nginx's namespace, on the ports its upstream lists.
            assert service["network_mode"] == "service:nginx"
            assert environment["WORKERS_IN_SERVE"] == "false"
            node_ports.append(int(environment["WEBSOCKET_PORT"]))
    assert services["worker"]["command"] == ["worker"]
    assert services["migrate"]["command"] == ["migrate"]
    assert node_ports == nginx_upstream_ports((DEPLOY / "nginx.conf").read_text())


# --- systemd --------------------------------------------------------------------------


def unit(name: str) -> dict[str, list[str]]:
    """Each key of a unit file and its values, in order (systemd repeats keys)."""
    keys: dict[str, list[str]] = {}
    for line in (DEPLOY / "systemd" / name).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            keys.setdefault(key, []).append(value)
    return keys


@pytest.mark.parametrize(("name", "command"), [("tidings-serve@.service", "serve"),
                                               ("tidings-worker.service", "worker")])
def test_systemd_units(name: str, command: str) -> None:
    keys = unit(name)
    assert keys["ExecStart"] == [f"/opt/tidings/bin/tidings {command}"]
    assert keys["User"] == ["tidings"]
    assert keys["Restart"] == ["always"]
    assert keys["EnvironmentFile"] == ["/etc/tidings/tidings.env"]
    env = {value.partition("=")[0] for value in keys.get("Environment", [])}
    assert_settings(env, name)
    if command == "serve":
        assert "WEBSOCKET_PORT=%i" in keys["Environment"]
        assert "WORKERS_IN_SERVE=false" in keys["Environment"]


def test_systemd_units_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    for source in ("tidings-serve@.service", "tidings-worker.service"):
        shutil.copy(DEPLOY / "systemd" / source, tmp_path / source)
    result = subprocess.run(
        [analyze, "verify", "--man=no", "./tidings-worker.service",
         "./tidings-serve@3001.service"],
        cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False)
    # The units name the target machine's binary, absent here: only that may be reported.
    problems = [line for line in result.stderr.splitlines()
                if line.strip() and "/opt/tidings/bin/tidings is not executable" not in line]
    assert not problems, result.stderr


# --- Kubernetes -----------------------------------------------------------------------


def manifests() -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            assert document["apiVersion"] and document["kind"], path
            found[(document["kind"], document["metadata"]["name"])] = document
    return found


def pod_container(document: dict[str, Any]) -> dict[str, Any]:
    containers = document["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def test_kubernetes_config_names_only_settings() -> None:
    config = manifests()[("ConfigMap", "tidings-config")]
    assert_settings(set(config["data"]), "the ConfigMap tidings-config")
    assert int(config["data"]["WEBSOCKET_PORT"]) == default_port()
    assert config["data"]["WORKERS_IN_SERVE"] == "false"


def test_kubernetes_serve_probes_and_ports() -> None:
    found = manifests()
    serve = found[("Deployment", "tidings-serve")]
    container = pod_container(serve)
    assert container["args"] == ["serve"]
    assert container["ports"] == [{"name": "http", "containerPort": default_port()}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert serve["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    labels = serve["spec"]["template"]["metadata"]["labels"]
    service = found[("Service", "tidings")]
    assert service["spec"]["selector"] == labels
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert service["spec"]["sessionAffinity"] == "ClientIP"
    budget = found[("PodDisruptionBudget", "tidings-serve")]
    assert budget["spec"]["selector"]["matchLabels"] == labels
    for name in ("tidings-serve", "tidings-worker"):
        sources = pod_container(found[("Deployment", name)])["envFrom"]
        assert {"configMapRef": {"name": "tidings-config"}} in sources
        env = pod_container(found[("Deployment", name)]).get("env", [])
        assert_settings({entry["name"] for entry in env}, name)
    worker = pod_container(found[("Deployment", "tidings-worker")])
    assert worker["args"] == ["worker"]
    assert "readinessProbe" not in worker  # it serves no HTTP
    assert pod_container(found[("Job", "tidings-migrate")])["args"] == ["migrate"]


def test_kubernetes_autoscales_on_a_metric_the_nodes_export() -> None:
    found = manifests()
    hpa = found[("HorizontalPodAutoscaler", "tidings-serve")]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "tidings-serve"
    metric = hpa["spec"]["metrics"][0]
    assert metric["type"] == "Pods"
    name = metric["pods"]["metric"]["name"]
    assert name == "tidings_connections"
    assert Metrics().registry.get_sample_value(name) is not None
    rules = yaml.safe_load(found[("ConfigMap", "adapter-config")]["data"]["config.yaml"])
    assert rules["rules"][0]["name"]["as"] == name
