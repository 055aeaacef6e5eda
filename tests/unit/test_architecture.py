"""The import rules of DESIGN.md, checked.

- Stages never import each other (sources, normalise, detectors, incidents, brain, memory, sinks); none of them
  imports the wiring (pipeline, runtime, cli, server).
- ``config`` imports no stage; ``cli`` imports no stage (it calls :mod:`inferguard.runtime`).
- ``rlm_agent`` never imports ``inferguard``; only ``inferguard/brain/client.py`` imports ``rlm_agent``,
  and importing ``inferguard`` with the brain in remote mode loads nothing of it.
- Only ``runtime/build.py`` constructs the parts (scraper, pipeline, brain, store, sinks, fan-out), and
  only it opens incident memory (``inferguard.memory.build``): the one-shot commands too go through it.
- One vocabulary: the detector registry, ``models.ANOMALY_CODES`` and the engine hints agree.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import inferguard
from inferguard import models
from inferguard.protocols import IncidentStore, Sink, Source, StatusListener
from inferguard.sources.http import HttpScraper

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "inferguard"
STAGES = ("sources", "normalise", "detectors", "incidents", "brain", "memory", "sinks", "actuation", "probes")
WIRING = ("inferguard.pipeline", "inferguard.runtime", "inferguard.cli", "inferguard.api", "inferguard.mcp_server",
          "inferguard.app", "inferguard.demo")


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.level:  # relative: resolve against the file's package
                base = path.relative_to(ROOT).with_suffix("").parts[:-node.level]
                found.add(".".join((*base, node.module)))
            else:
                found.add(node.module)
    return found


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "inferguard" and parts[1] in STAGES else None


def test_stages_do_not_import_each_other_or_the_wiring() -> None:
    bad = []
    for stage in STAGES:
        for path in (PKG / stage).rglob("*.py"):
            for mod in imports(path):
                other = stage_of(mod)
                if (other is not None and other != stage) or mod.startswith(WIRING):
                    bad.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert bad == []


@pytest.mark.parametrize("module", ["config.py", "cli.py"])
def test_config_and_cli_import_no_stage(module: str) -> None:
    bad = sorted(m for m in imports(PKG / module) if stage_of(m) or m.startswith("inferguard.pipeline"))
    assert bad == []


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    # Break the rule on purpose: a stage importing another, relatively and absolutely.
    fake = ROOT / "inferguard" / "sinks" / "_probe_for_test.py"
    try:
        fake.write_text("from ..detectors import DetectorBank\nimport inferguard.runtime.build\n", "utf-8")
        found = imports(fake)
        assert "inferguard.detectors" in found and stage_of("inferguard.detectors") == "detectors"
        assert any(m.startswith(WIRING) for m in found)
    finally:
        fake.unlink()


def test_rlm_agent_never_imports_inferguard() -> None:
    bad = [f"{p.relative_to(ROOT)}: {m}" for p in (ROOT / "rlm_agent").rglob("*.py")
           for m in imports(p) if m.split(".")[0] == "inferguard"]
    assert bad == []
    code = "import sys, rlm_agent; assert not [m for m in sys.modules if m.split('.')[0] == 'inferguard']"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_only_the_brain_client_imports_rlm_agent() -> None:
    users = {p.relative_to(ROOT).as_posix() for p in PKG.rglob("*.py")
             if any(m.split(".")[0] == "rlm_agent" for m in imports(p))}
    assert users <= {"inferguard/brain/client.py"}


def test_remote_mode_loads_nothing_of_rlm_agent() -> None:
    code = ("import os, sys, io, anyio\n"
            "from inferguard.config import Settings\n"
            "from inferguard.models import Target\n"
            "from inferguard.runtime.build import build_daemon\n"
            "from inferguard.runtime.daemon import DaemonOptions\n"
            "s = Settings.load(env_file=None, brain={'brain_mode': 'remote', 'brain_url': 'http://127.0.0.1:9'})\n"
            "d = build_daemon(s, [Target(url='http://127.0.0.1:9/metrics')],\n"
            "                 DaemonOptions(interval_s=1, listen=None, out=io.StringIO()))\n"
            "loaded = [m for m in sys.modules if m.split('.')[0] == 'rlm_agent']\n"
            "print(loaded); sys.exit(1 if loaded else 0)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


CONSTRUCTED = {"HttpScraper", "Pipeline", "LocalBrain", "RemoteBrain", "BrainStage", "MemoryStore",
               "Fanout", "LogSink", "ReadModel", "Flow", "TimelineWriter", "Telemetry"}
# Where a part may still be built outside build.py, and why.
ALLOWED = {
    "inferguard/runtime/build.py": CONSTRUCTED,
    "inferguard/runtime/oneshot.py": {"TimelineWriter"},  # `record` writes a file it was given
    "inferguard/brain/client.py": {"LocalBrain", "RemoteBrain"},  # build_brain(mode) picks the client
}


def test_only_build_constructs_the_parts() -> None:
    bad = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("inferguard/simulate/") or rel == "inferguard/testing.py":
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Call):
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                if name in CONSTRUCTED and name not in ALLOWED.get(rel, set()):
                    bad.append(f"{rel}:{node.lineno} builds {name}")
    assert bad == []


def opens_memory(path: Path) -> bool:
    """Does the module import ``inferguard.memory.build`` (the settings → incident memory wiring), in any
    form? :func:`imports` resolves relative imports; ``from inferguard.memory import build`` names it."""
    if any(m.startswith("inferguard.memory.build") for m in imports(path)):
        return True
    return any(isinstance(node, ast.ImportFrom) and node.module == "inferguard.memory" and not node.level
               and any(a.name == "build" for a in node.names)
               for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))))


def test_only_build_opens_incident_memory() -> None:
    # The one-shot commands open memory through runtime/build.py (build_store(quiet=True)) like the daemon.
    users = {p.relative_to(ROOT).as_posix() for p in PKG.rglob("*.py") if opens_memory(p)}
    assert users == {"inferguard/runtime/build.py"}


def test_the_memory_checker_sees_each_form(tmp_path: Path) -> None:
    for line in ("from inferguard.memory.build import open_memory\n", "import inferguard.memory.build\n",
                 "from inferguard.memory import build\n",
                 "def f():\n    from inferguard.memory.build import open_local\n"):
        (tmp_path / "m.py").write_text(line, "utf-8")
        assert opens_memory(tmp_path / "m.py"), line
    # Relative, from a module inside the package (imports() resolves it against the file's place).
    inside = PKG / "cli_probe_for_architecture_test.py"
    try:
        inside.write_text("from .memory.build import open_memory\n", "utf-8")
        assert opens_memory(inside)
    finally:
        inside.unlink()
    (tmp_path / "m.py").write_text("from inferguard.memory.store import Memory\n", "utf-8")
    assert not opens_memory(tmp_path / "m.py")


def test_the_daemon_only_schedules() -> None:
    mods = imports(PKG / "runtime" / "daemon.py")
    assert not [m for m in mods if m.startswith(("inferguard.runtime.build", "inferguard.config",
                                                  "inferguard.sources.http", "inferguard.detectors"))]


def test_public_surface_is_the_declared_list() -> None:
    public = sorted(n for n in dir(inferguard) if not n.startswith("_")
                    and not isinstance(getattr(inferguard, n), type(inferguard)))
    assert sorted(set(inferguard.__all__) - {"__version__"}) == public
    assert len(inferguard.__all__) == 31


def test_parts_satisfy_their_protocols() -> None:
    from inferguard.sinks.log import LogSink
    from inferguard.sinks.readmodel import ReadModel
    from inferguard.testing import MemoryStore, RecordingSink, ReplaySource
    from inferguard.view import LiveView

    assert isinstance(HttpScraper(), Source) and isinstance(ReplaySource([]), Source)
    assert isinstance(MemoryStore(), IncidentStore)
    for sink in (LogSink(None), ReadModel(), RecordingSink(), LiveView()):
        assert isinstance(sink, Sink), sink
    assert isinstance(ReadModel(), StatusListener) and isinstance(LiveView(), StatusListener)


def test_one_vocabulary_for_anomaly_codes_and_engines() -> None:
    from inferguard.detectors.bank import DETECTORS
    from inferguard.normalise import ENGINE_HINTS

    # Every model-level detector is named by its code; the target-level codes are raised by the bank.
    target_level = {"endpoint_unreachable", "engine_unidentified", "metrics_dropped"}
    assert set(DETECTORS) | target_level == set(models.ANOMALY_CODES)
    assert not set(DETECTORS) & target_level
    assert ENGINE_HINTS == models.ENGINE_HINTS
    assert set(models.ENGINE_HINTS) - {"auto"} == set(models.ENGINES) - {"unknown"}
