"""``rlm-agent`` as an operator meets it: help text, ``.env``, where it listens, payload files."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from inferguard.brain import build_incident_payload
from rlm_agent.cli import build_parser, main
from rlm_agent.testing import RecordedLLMServer, Reply

from .conftest import CASES, case_payload

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-cli-test-SECRET"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GMI_", "INFERGUARD_"))}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def run(args: list[str], cwd: Path, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rlm_agent.cli", *args], cwd=cwd, env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


def exported(name: str = "real_vllm_kv_overload") -> dict[str, Any]:
    """A payload as InferGuard builds it (the same function its brain stage and exports use)."""
    case = case_payload(name)
    return dict(build_incident_payload(case["incident"], case["window"], case.get("similar", [])))


def test_help_shows_real_metavars_and_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["serve", "--help"], ["advise", "--help"], ["eval", "--help"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 0
    out = capsys.readouterr().out
    for text in ("--host HOST", "(default: 127.0.0.1)", "--port PORT", "(default: 8377)", "--log-level LEVEL",
                 "(default: warning)", "--env-file FILE", ".env in the current directory", "FILE",
                 "GMI_API_KEY", "INFERGUARD_LLM_PROACTIVE_SHARE", "exit codes", "--cases DIR", "- for stdin"):
        assert text in out, text
    for noise in ("<bool>", "{url}", "<list", "(default: None)"):
        assert noise not in out, noise
    assert build_parser().prog == "rlm-agent"


def test_advise_reads_dotenv_and_an_exported_payload(tmp_path: Path, llm_server: RecordedLLMServer) -> None:
    llm_server.push(Reply.answer(CASES["real_vllm_kv_overload"]["llm_recorded"]["good"]))
    (tmp_path / ".env").write_text(f"# the LLM\nexport GMI_API_KEY={KEY}\nGMI_BASE_URL=\"{llm_server.base_url}\"\n"
                                   "INFERGUARD_LLM_TIMEOUT_SECONDS=10  # seconds\n", "utf-8")
    (tmp_path / "p.json").write_text(json.dumps(exported()), "utf-8")
    done = run(["advise", "p.json"], tmp_path, clean_env())
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert (answer["diagnosis"]["source"], answer["diagnosis"]["root_cause"]) == ("llm", "kv_cache_exhaustion")
    headers = {k.lower(): v for k, v in llm_server.requests[0]["headers"].items()}
    assert headers["authorization"] == f"Bearer {KEY}"
    # The environment wins over .env (as for inferguard): here its endpoint, a closed port.
    done = run(["advise", "p.json"], tmp_path, clean_env(GMI_BASE_URL="http://127.0.0.1:9/v1"))
    assert json.loads(done.stdout)["diagnosis"]["fallback_reason"].startswith("llm_connect")
    assert KEY not in done.stdout + done.stderr


def test_advise_takes_arrays_json_lines_directories_and_stdin(tmp_path: Path) -> None:
    env = clean_env()
    a, b = exported("real_vllm_kv_overload"), exported("real_vllm_admission_overload")
    (tmp_path / "many.json").write_text(json.dumps([a, b]), "utf-8")
    (tmp_path / "many.jsonl").write_text(json.dumps(a) + "\n\n" + json.dumps(b) + "\n", "utf-8")
    folder = tmp_path / "payloads"
    folder.mkdir()
    (folder / "1-kv.json").write_text(json.dumps(a), "utf-8")
    (folder / "2-admission.json").write_text(json.dumps(b), "utf-8")
    for spec in ("many.json", "many.jsonl", "payloads"):
        done = run(["advise", spec], tmp_path, env)
        assert done.returncode == 0, done.stderr
        roots = [json.loads(line)["diagnosis"]["root_cause"] for line in done.stdout.splitlines()]
        assert roots == ["kv_cache_exhaustion", "admission_overload"], spec
    done = run(["advise", "-"], tmp_path, env, stdin=json.dumps(b))
    assert json.loads(done.stdout)["diagnosis"]["root_cause"] == "admission_overload"


@pytest.mark.parametrize("content, message", [
    (b"{not json", "many.json is not JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
    (json.dumps({"schema_version": "1.0", "kind": "proactive"}).encode(), "payload invalid"),
])
def test_bad_payload_files_are_one_line_errors(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "many.json").write_bytes(content)
    done = run(["advise", "many.json"], tmp_path, clean_env())
    assert done.returncode == 2 and done.stdout == ""
    assert message in done.stderr and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_a_bad_env_file_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text(json.dumps(exported()), "utf-8")
    (tmp_path / ".env").write_bytes(b"GMI_MODEL=\xff\n")
    done = run(["advise", "p.json"], tmp_path, clean_env())
    assert done.returncode == 2 and ".env: not UTF-8" in done.stderr and "Traceback" not in done.stderr
    done = run(["advise", "--env-file", "missing.env", "p.json"], tmp_path, clean_env())
    assert done.returncode == 2 and "missing.env: cannot read" in done.stderr
    (tmp_path / "x.env").write_text("INFERGUARD_LLM_PROACTIVE_SHARE=2\n", "utf-8")
    done = run(["advise", "--env-file", "x.env", "p.json"], tmp_path, clean_env())
    assert done.returncode == 2 and "INFERGUARD_LLM_PROACTIVE_SHARE" in done.stderr


def test_serve_says_where_it_listens_and_what_it_uses(tmp_path: Path, llm_server: RecordedLLMServer) -> None:
    (tmp_path / ".env").write_text(f"GMI_API_KEY={KEY}\nGMI_BASE_URL={llm_server.base_url}\nGMI_MODEL=m-1\n",
                                   "utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "rlm_agent.cli", "serve", "--port", "0"], cwd=tmp_path,
                            env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "serving the brain on http://127.0.0.1:" in line, line
        port = int(line.split("http://127.0.0.1:", 1)[1].split(" ", 1)[0])
        assert f"LLM on: m-1 at {llm_server.base_url}" in line and "at most 60 calls/hour" in line
        assert "settings from the environment and .env" in line and KEY not in line
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2, trust_env=False)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        assert health.json()["llm"] is True
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_serve_on_a_taken_port_is_one_line_naming_the_address(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run(["serve", "--port", str(port)], tmp_path, clean_env())
    assert done.returncode == 2
    assert done.stderr.startswith(f"rlm-agent: cannot listen on 127.0.0.1:{port}: ")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
