"""rlm_agent never imports inferguard; inferguard imports rlm_agent only in inferguard/brain/client.py."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            names.add(str(node.args[0].value).split(".")[0])
    return names


def test_rlm_agent_source_never_imports_inferguard() -> None:
    files = sorted((ROOT / "rlm_agent").rglob("*.py"))
    assert len(files) > 10
    offenders = [str(p.relative_to(ROOT)) for p in files if "inferguard" in _imports(p)]
    assert offenders == []


def test_importing_rlm_agent_loads_no_inferguard_module() -> None:
    code = ("import sys, rlm_agent, rlm_agent.cli, rlm_agent.server, rlm_agent.evals.runner, "
            "rlm_agent.refine, rlm_agent.proactive; "
            "bad = [m for m in sys.modules if m == 'inferguard' or m.startswith('inferguard.')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


def test_only_brain_module_imports_rlm_agent() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "inferguard").rglob("*.py"))
                 if "rlm_agent" in _imports(p) and p.relative_to(ROOT).as_posix() != "inferguard/brain/client.py"]
    assert offenders == []


def test_scanner_can_fail(tmp_path: Path) -> None:
    # The scanner itself must see each import form it claims to catch.
    for src in ("from inferguard.models import SIGNALS\n", "import inferguard.payloads as p\n",
                "import importlib\nimportlib.import_module('inferguard.brain')\n"):
        probe = tmp_path / "probe.py"
        probe.write_text(src, "utf-8")
        assert "inferguard" in _imports(probe), src
    (tmp_path / "clean.py").write_text("import json\n", "utf-8")
    assert "inferguard" not in _imports(tmp_path / "clean.py")


def _declared() -> set[str]:
    import re
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    return {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower().replace("_", "-") for d in project["dependencies"]}


def test_every_third_party_import_of_rlm_agent_is_a_declared_dependency() -> None:
    # Seen: llm.py imported httpx2, which only the openai 3.x SDK pulls in; with an older SDK that
    # pyproject allowed, every LLM call failed and silently fell back to the rules.
    from importlib.metadata import packages_distributions

    dists = packages_distributions()
    declared = _declared()
    undeclared = {}
    for path in sorted((ROOT / "rlm_agent").rglob("*.py")):
        for name in _imports(path) - set(sys.stdlib_module_names) - {"rlm_agent"}:
            owners = {d.lower().replace("_", "-") for d in dists.get(name, [])}
            if not owners & declared:
                undeclared[name] = str(path.relative_to(ROOT))
    assert undeclared == {}


def test_the_dependency_check_can_fail(tmp_path: Path) -> None:
    from importlib.metadata import packages_distributions

    probe = tmp_path / "probe.py"
    probe.write_text("import httpx2\nimport openai\n", "utf-8")
    dists = packages_distributions()
    names = _imports(probe) - set(sys.stdlib_module_names)
    undeclared = {n for n in names if not {d.lower() for d in dists.get(n, ["<not installed>"])} & _declared()}
    assert undeclared == {"httpx2"}
