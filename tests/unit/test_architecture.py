"""The import direction of DESIGN.md, checked: stages never import each other; the brain is separate."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import inferguard
from inferguard.protocols import Source
from inferguard.sources.http import HttpScraper

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("sources", "normalise", "detectors", "incidents")


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_stages_do_not_import_each_other() -> None:
    bad = []
    for stage in STAGES:
        for path in (ROOT / "inferguard" / stage).rglob("*.py"):
            for mod in imports(path):
                for other in STAGES:
                    if other != stage and mod.startswith(f"inferguard.{other}"):
                        bad.append(f"{path.relative_to(ROOT)} imports {mod}")
                if mod.startswith(("inferguard.pipeline", "inferguard.app", "inferguard.cli")):
                    bad.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert bad == []


def test_rlm_agent_never_imports_inferguard() -> None:
    bad = [f"{p.relative_to(ROOT)}: {m}" for p in (ROOT / "rlm_agent").rglob("*.py")
           for m in imports(p) if m.split(".")[0] == "inferguard"]
    assert bad == []
    code = "import sys, rlm_agent; assert not [m for m in sys.modules if m.split('.')[0] == 'inferguard']"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_only_the_brain_client_imports_rlm_agent() -> None:
    users = {str(p.relative_to(ROOT)) for p in (ROOT / "inferguard").rglob("*.py")
             if any(m.split(".")[0] == "rlm_agent" for m in imports(p))}
    assert users <= {"inferguard/brain.py"}


def test_public_surface_is_the_declared_list() -> None:
    public = sorted(n for n in dir(inferguard) if not n.startswith("_")
                    and not isinstance(getattr(inferguard, n), type(inferguard)))
    assert sorted(set(inferguard.__all__) - {"__version__"}) == public
    assert len(inferguard.__all__) == 31


def test_scraper_satisfies_the_source_protocol() -> None:
    assert isinstance(HttpScraper(), Source)
