"""The docs a new operator reads: every page linked from the README, no machine paths, and the example
alert rules valid for Prometheus."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md"))


def test_readme_links_every_doc() -> None:
    readme = (ROOT / "README.md").read_text()
    assert [d.name for d in DOCS if f"](docs/{d.name})" not in readme] == []


@pytest.mark.parametrize("page", [ROOT / "README.md", *DOCS], ids=lambda p: p.name)
def test_docs_speak_of_the_project_alone(page: Path) -> None:
    text = page.read_text()
    assert re.findall(r"/work/|/root/|/home/\w+|\bthe issue\b|issue #\d+", text) == []
    for link in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if not link.startswith(("http://", "https://")):
            assert (page.parent / link).exists(), f"{page.name} links to a missing {link}"


def test_example_alert_rules_are_valid(tmp_path: Path) -> None:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.skip("promtool missing (Debian package prometheus; scripts/test_deps.sh installs it)")
    text = (ROOT / "docs" / "operations.md").read_text()
    block = re.search(r"```yaml\n(groups:.*?)```", text, re.S)
    assert block is not None
    rules = tmp_path / "rules.yaml"
    rules.write_text(block.group(1))
    p = subprocess.run([exe, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    # And the page rule fires on a critical anomaly of the gauge the daemon exports, and only on it.
    (tmp_path / "test.yaml").write_text("""rule_files: [rules.yaml]
evaluation_interval: 30s
tests:
  - interval: 30s
    input_series:
      - series: 'inferguard_open_anomalies{target="http://a:8000/metrics",code="kv_pressure",severity="critical",team="search",cluster="eu-1"}'
        values: '1x10'
      - series: 'inferguard_open_anomalies{target="http://b:8000/metrics",code="queue_buildup",severity="warning",team="chat",cluster="eu-1"}'
        values: '1x10'
    alert_rule_test:
      - eval_time: 2m
        alertname: ServingEngineCritical
        exp_alerts:
          - exp_labels: {severity: page, target: "http://a:8000/metrics", code: kv_pressure, team: search,
                         cluster: eu-1}
            exp_annotations:
              summary: "kv_pressure on http://a:8000/metrics (team search)"
              description: "The incident, its diagnosis and advisories: /api/incidents?status=open on InferGuard."
""")
    p = subprocess.run([exe, "test", "rules", "test.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
