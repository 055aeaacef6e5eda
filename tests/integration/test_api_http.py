"""The JSON API over real HTTP (uvicorn on a loopback port), fed by a recorded real-vLLM incident."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from inferguard.api.openapi import OPENAPI
from tests.integration.api_support import replayed_model, running


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    model, _ = replayed_model()
    with running(model) as (base, _, _):
        yield base


def test_status_names_each_target_with_health_and_sparklines(api: str) -> None:
    doc = httpx.get(f"{api}/api/status").json()
    (t,) = doc["targets"]
    assert t["engine"] == "vllm-v1" and t["model"] and t["last_scrape"] is not None
    assert t["health"] in ("healthy", "warning", "critical", "down")
    assert set(t["series"]) == {"kv_usage", "requests_waiting", "ttft_p95_s", "preemptions_per_s"}
    kv = [v for v in t["series"]["kv_usage"] if v is not None]
    assert kv and max(kv) > 0.5  # the recording overloads the KV cache


def test_incidents_filter_page_and_detail(api: str) -> None:
    everything = httpx.get(f"{api}/api/incidents").json()
    assert everything["total"] >= 1 and everything["incidents"]
    first = everything["incidents"][0]
    code = first["codes"][0]
    by_code = httpx.get(f"{api}/api/incidents", params={"code": code}).json()
    assert first["id"] in [i["id"] for i in by_code["incidents"]]
    assert httpx.get(f"{api}/api/incidents", params={"code": "no_such_code"}).json()["total"] == 0
    assert httpx.get(f"{api}/api/incidents", params={"target": first["target"]}).json()["total"] >= 1
    later = httpx.get(f"{api}/api/incidents", params={"since": str(first["updated_at"] + 1)}).json()
    assert first["id"] not in [i["id"] for i in later["incidents"]]
    page = httpx.get(f"{api}/api/incidents", params={"limit": "1", "offset": "0"}).json()
    assert len(page["incidents"]) == 1 and page["total"] == everything["total"]
    detail = httpx.get(f"{api}/api/incidents/{first['id']}").json()
    assert detail["events"] and detail["events"][0]["kind"] == "opened"
    assert detail["diagnoses"] and detail["diagnosis"]["root_cause"]
    assert detail["signals"] and "kv_usage" in detail["signals"][-1]["values"]
    assert detail["actions"] == [] and detail["actions_source"] == "none"
    assert httpx.get(f"{api}/api/incidents/nope").status_code == 404


@pytest.mark.parametrize(("query", "named"), [
    ({"status": "opne"}, "status"), ({"since": "yesterday"}, "since"), ({"since": "nan"}, "since"),
    ({"limit": "0"}, "limit"), ({"limit": "501"}, "limit"), ({"offset": "-1"}, "offset"),
    ({"colour": "red"}, "colour"),
])
def test_a_bad_filter_is_a_400_naming_it(api: str, query: dict[str, str], named: str) -> None:
    r = httpx.get(f"{api}/api/incidents", params=query)
    assert r.status_code == 400 and r.json()["parameter"] == named and named in r.json()["error"]


def test_recall_advisories_silences(api: str) -> None:
    r = httpx.get(f"{api}/api/recall", params={"q": "kv_pressure"}).json()
    assert r["source"] == "process" and r["results"] and "kv_pressure" in r["results"][0]["codes"]
    assert httpx.get(f"{api}/api/recall").status_code == 400
    adv = httpx.get(f"{api}/api/advisories").json()
    assert set(adv) >= {"reactive", "proactive"} and adv["advisory_only"] is True
    assert httpx.get(f"{api}/api/silences").json() == {"source": "none", "silences": []}


def test_openapi_describes_every_route(api: str) -> None:
    doc = httpx.get(f"{api}/openapi.json").json()
    assert doc == OPENAPI
    for path in doc["paths"]:
        if "get" not in doc["paths"][path]:
            continue  # a write (DELETE /api/silences/{silence_id}): tests/integration/test_watch_api.py
        concrete = path.replace("{incident_id}", "nope")
        status = httpx.get(f"{api}{concrete}", params={"q": "x"} if path == "/api/recall" else None,
                           timeout=5, headers={"accept": "application/json"}) if path != "/api/events" else None
        if status is not None:
            assert status.status_code in (200, 404), path


def test_read_only_and_no_cors(api: str) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        r = httpx.request(method, f"{api}/api/incidents", headers={"origin": "http://evil.example"})
        assert r.status_code == 405, method
        assert not [h for h in r.headers if h.lower().startswith("access-control-")]
    r = httpx.get(f"{api}/api/status", headers={"origin": "http://evil.example"})
    assert r.status_code == 200 and not [h for h in r.headers if h.lower().startswith("access-control-")]
    assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"


def test_host_header_must_name_this_server(api: str) -> None:
    # DNS rebinding: evil.example resolves to 127.0.0.1, but the browser still says Host: evil.example.
    port = api.rsplit(":", 1)[1]
    assert httpx.get(f"{api}/api/status", headers={"host": f"evil.example:{port}"}).status_code == 421
    assert httpx.get(f"{api}/healthz", headers={"host": f"evil.example:{port}"}).status_code == 421
    assert httpx.get(f"{api}/api/status", headers={"host": f"localhost:{port}"}).status_code == 200


def test_request_size_is_capped(api: str) -> None:
    r = httpx.request("GET", f"{api}/api/status", content=b"x" * 70000)
    assert r.status_code == 413


def test_token_guards_the_api_but_not_the_probes() -> None:
    model, _ = replayed_model()
    token = "t0ken-of-sixteen-chars"
    with running(model, token=token) as (base, _, _):
        assert httpx.get(f"{base}/api/status").status_code == 401
        assert httpx.get(f"{base}/metrics").status_code == 401
        assert httpx.get(f"{base}/api/status", headers={"authorization": "Bearer wrong"}).status_code == 401
        ok = httpx.get(f"{base}/api/status", headers={"authorization": f"Bearer {token}"})
        assert ok.status_code == 200 and token not in ok.text
        assert httpx.get(f"{base}/healthz").status_code == 200 and httpx.get(f"{base}/readyz").status_code == 200
        # A token in the URL is refused even when right: URLs land in logs and browser history.
        r = httpx.get(f"{base}/api/status", params={"token": token}, headers={"authorization": f"Bearer {token}"})
        assert r.status_code == 400 and token not in r.text


def test_rate_limit_answers_429_and_spares_the_probes() -> None:
    model, _ = replayed_model()
    with running(model, rate_per_s=0.05) as (base, _, _):  # burst 2, then one request per 20 s
        codes = [httpx.get(f"{base}/api/status").status_code for _ in range(4)]
        assert codes[:2] == [200, 200] and codes[2:] == [429, 429]
        r = httpx.get(f"{base}/api/status")
        assert int(r.headers["retry-after"]) >= 1
        assert all(httpx.get(f"{base}/healthz").status_code == 200 for _ in range(5))


def test_event_stream_sends_status_and_is_capped() -> None:
    model, _ = replayed_model()
    with running(model) as (base, server, _):
        server.gate.limit = 1
        with httpx.stream("GET", f"{base}/api/events", timeout=10) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            assert next(lines) == "event: status"
            assert next(lines).startswith('data: {"generated_at"')
            # A second live stream past the cap is refused, the probes still answer.
            assert httpx.get(f"{base}/api/events", timeout=5).status_code == 503
            assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        deadline = time.monotonic() + 10
        while server.gate.open and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.gate.open == 0


def test_the_read_model_is_a_sink() -> None:
    from inferguard.protocols import Sink, StatusListener
    from inferguard.sinks.readmodel import ReadModel

    model = ReadModel()
    assert isinstance(model, Sink) and isinstance(model, StatusListener)
    doc = {"event": "incident.opened", "changes": ["+kv_pressure"],
           "incident": {"id": "i1", "target": "t", "status": "open", "opened_at": 1.0, "updated_at": 1.0,
                        "codes": ["kv_pressure"], "severity": "critical", "peak": float("nan")}}
    import anyio

    anyio.run(model.send, doc)
    detail = anyio.run(model.incident, "i1")
    story = detail["events"]
    assert detail["peak"] is None
    assert story == [{"ts": 1.0, "kind": "opened", "changes": ["+kv_pressure"]}]
    assert model.revision() == 1 and model.advisories() == {"reactive": [], "proactive": []}
