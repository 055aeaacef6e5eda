"""`inferguard replay FILE --payloads DIR` writes every brain payload the replay built, and
`rlm-agent advise DIR` reads them back: the two commands speak one format, checked end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support import clean_env

DATA = Path(__file__).resolve().parents[1] / "data"
# Start-up unreachable, then a different trouble (an admission overload): two incidents, two causes.
TIMELINE = DATA / "vllm_startup_admission.jsonl.gz"


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *argv], env=clean_env(), cwd=cwd, capture_output=True,
                          text=True, timeout=180)


def test_replay_exports_payloads_that_rlm_agent_advises_on_the_same_way(tmp_path: Path) -> None:
    out = tmp_path / "payloads"
    p = run(["inferguard", "replay", str(TIMELINE), "--json", "--payloads", str(out)], tmp_path)
    assert p.returncode == 0, p.stderr
    incidents = json.loads(p.stdout)["incidents"]
    files = sorted(out.glob("*.json"))
    assert files, "no payload written"
    by_incident: dict[str, list[Path]] = {}
    for f in files:
        by_incident.setdefault(json.loads(f.read_text())["incident"]["id"], []).append(f)
    # Every incident the brain was asked about has its payloads, numbered in the order the brain saw them.
    assert set(by_incident) == {i["id"] for i in incidents if i["diagnoses"]}
    for inc in incidents:
        paths = by_incident.get(inc["id"], [])
        assert [f.name for f in paths] == [f"{inc['id']}-{n:02d}.json" for n in range(1, len(paths) + 1)]

    # rlm-agent, run on the folder, reaches the causes the replay recorded for each incident.
    a = run(["rlm_agent.cli", "advise", str(out)], tmp_path)
    assert a.returncode == 0, a.stderr
    answers = [json.loads(line) for line in a.stdout.splitlines() if line.strip()]
    assert len(answers) == len(files)
    causes = {inc["id"]: {d["root_cause"] for d in inc["diagnoses"]} for inc in incidents}
    for f, answer in zip(files, answers, strict=True):
        incident_id = json.loads(f.read_text())["incident"]["id"]
        assert answer["diagnosis"]["root_cause"] in causes[incident_id]
    assert any(ans["diagnosis"]["root_cause"] == "admission_overload" for ans in answers)


def test_plain_replay_writes_no_payloads(tmp_path: Path) -> None:
    p = run(["inferguard", "replay", str(TIMELINE), "--json"], tmp_path)
    assert p.returncode == 0, p.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_payload_folder_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    p = run(["inferguard", "replay", str(TIMELINE), "--payloads", str(blocker / "sub")], tmp_path)
    assert p.returncode == 73  # EX_CANTCREAT, like every output that cannot be written
    assert "--payloads" in p.stderr and "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1
