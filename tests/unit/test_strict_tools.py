"""Under scripts/test a skip for a missing tool is a failure; elsewhere it stays a skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CASE = '''
import pytest

def test_needs_a_tool():
    pytest.skip("frobnicator missing (scripts/test_deps.sh installs it)")

def test_needs_shared_fixtures():
    pytest.skip("no shared fixtures")
'''


def run(tmp_path: Path, strict: bool) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_case.py").write_text(CASE)
    env = {k: v for k, v in os.environ.items() if k != "REQUIRE_TEST_TOOLS"}
    if strict:
        env["REQUIRE_TEST_TOOLS"] = "1"
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.strict_tools",
                           "--rootdir", str(tmp_path), str(tmp_path / "test_case.py")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)


def test_a_missing_tool_fails_under_scripts_test(tmp_path: Path) -> None:
    p = run(tmp_path, strict=True)
    assert p.returncode == 1, p.stdout
    assert "1 failed, 1 skipped" in p.stdout and "required tool missing" in p.stdout and "frobnicator" in p.stdout


def test_a_missing_tool_skips_elsewhere(tmp_path: Path) -> None:
    p = run(tmp_path, strict=False)
    assert p.returncode == 0 and "2 skipped" in p.stdout, p.stdout
