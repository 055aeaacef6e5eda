"""Simulated /metrics pages against the oracle parser and against real engine captures."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

from inferguard.errors import ConfigError
from inferguard.simulate.dialects import DIALECTS, SIMULATOR_INFO, PageRenderer, fmt, fmt_go, go_float
from inferguard.simulate.model import EngineConfig, EngineModel
from inferguard.simulate.scenarios import SCENARIO_NAMES, get_scenario

T0 = 1_700_000_000.0
CAPTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "engine-metrics"
SAME_DIALECT = {
    "vllm-v1": "vllm-v1-2026-05-inferguard-lmcache-mp.prom",
    "vllm-v0": "vllm-v0.7-v0engine-aibrix-runtime-doc.prom",
    "sglang": "sglang-0.5.x-dynamo-worker-metrics-examples.prom",
    "dcgm": "dcgm-exporter-drv595-L40S-idle-cncf-upcloud.prom",
}
# Rendered names that no capture holds, and where each comes from. Anything else must be in a capture.
NOT_IN_CAPTURES = {
    SIMULATOR_INFO: "ours: the synthetic-engine marker",
    # vLLM V1 vllm/v1/spec_decode/metrics.py (only present when speculative decoding is configured)
    "vllm:spec_decode_num_drafts": "vLLM V1 spec decode",
    "vllm:spec_decode_num_draft_tokens": "vLLM V1 spec decode",
    "vllm:spec_decode_num_accepted_tokens": "vLLM V1 spec decode",
    "vllm:spec_decode_num_accepted_tokens_per_pos": "vLLM V1 spec decode",
    "vllm:spec_decode_num_drafts_created": "vLLM V1 spec decode",
    "vllm:spec_decode_num_draft_tokens_created": "vLLM V1 spec decode",
    "vllm:spec_decode_num_accepted_tokens_created": "vLLM V1 spec decode",
    "vllm:spec_decode_num_accepted_tokens_per_pos_created": "vLLM V1 spec decode",
    # vLLM V0 vllm/engine/metrics.py (the V0 capture is cut off before these)
    "vllm:time_per_output_token_seconds": "vLLM V0 (listed in vLLM's design/v1/metrics.md V0 list)",
    "vllm:spec_decode_draft_acceptance_rate": "vLLM V0 spec decode",
    "vllm:spec_decode_efficiency": "vLLM V0 spec decode",
    "vllm:spec_decode_num_emitted_tokens": "vLLM V0 spec decode",
    # dcgm-exporter etc/default-counters.csv; the idle captures have no XID or ECC fields
    "DCGM_FI_DEV_XID_ERRORS": "dcgm-exporter default counters",
    "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL": "dcgm-exporter default counters",
}
TRUNCATED = {("vllm-v0", "vllm:iteration_tokens_total")}  # the V0 capture ends inside this histogram

needs_captures = pytest.mark.skipif(not CAPTURES.is_dir(), reason="shared engine captures not present")


def page(dialect: str, scenario: str = "kv_pressure", seconds: float = 30.0) -> str:
    m = EngineModel(EngineConfig(), get_scenario(scenario), seed=5, start=T0)
    m.advance_to(T0 + seconds)
    return PageRenderer(dialect, "Qwen/Qwen3-8B", 0, seed=5).render(m)


class Catalog:
    """Families, types, label keys and bucket bounds of some /metrics text, as the oracle parser reads it."""

    def __init__(self, text: str) -> None:
        self.types: dict[str, str] = {}
        self.labels: dict[str, set[str]] = defaultdict(set)
        self.bounds: dict[str, set[float]] = defaultdict(set)
        for fam in text_string_to_metric_families(text):
            self.types[fam.name] = fam.type
            for s in fam.samples:
                self.labels[s.name] |= set(s.labels) - {"le"}
                if s.name.endswith("_bucket"):
                    self.bounds[fam.name].add(float(s.labels["le"]))


def capture_catalog(name: str) -> Catalog:
    return Catalog((CAPTURES / name).read_text(encoding="utf-8"))


def all_capture_families() -> set[str]:
    names: set[str] = set()
    for path in CAPTURES.glob("*.prom"):
        try:
            names |= set(Catalog(path.read_text(encoding="utf-8")).types)
        except ValueError:  # the two doc examples with literal "..." lines
            continue
    return names


@pytest.mark.parametrize("scenario", SCENARIO_NAMES)
@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_page_parses_with_the_oracle_and_carries_the_marker(dialect: str, scenario: str) -> None:
    text = page(dialect, scenario)
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    marker = fams[SIMULATOR_INFO].samples
    assert [(s.labels, s.value) for s in marker] == [({"scenario": scenario}, 1.0)]
    assert len(fams) > 15
    assert text.endswith("\n")


@needs_captures
@pytest.mark.parametrize("dialect", DIALECTS)
def test_names_exist_in_real_captures(dialect: str) -> None:
    ours = set(Catalog(page(dialect)).types)
    unknown = ours - all_capture_families() - set(NOT_IN_CAPTURES)
    assert unknown == set()


@needs_captures
@pytest.mark.parametrize("dialect", DIALECTS)
def test_types_labels_and_buckets_match_the_same_engines_capture(dialect: str) -> None:
    ours, real = Catalog(page(dialect)), capture_catalog(SAME_DIALECT[dialect])
    shared = set(ours.types) & set(real.types)
    assert len(shared) >= 12, shared  # the comparison below is about something
    for fam in shared:
        assert ours.types[fam] == real.types[fam], fam
        if fam in real.bounds:
            if (dialect, fam) in TRUNCATED:
                assert real.bounds[fam] <= ours.bounds[fam], fam
            else:
                assert ours.bounds[fam] == real.bounds[fam], fam
    for sample, keys in ours.labels.items():
        if sample in real.labels:
            if "_info" in sample:  # info gauges carry whatever config the engine had
                assert keys <= real.labels[sample], sample
            else:
                assert keys == real.labels[sample], sample


@needs_captures
def test_dcgm_label_order_is_the_exporters_not_sorted() -> None:
    def keys(text: str) -> list[str]:
        line = next(ln for ln in text.splitlines() if ln.startswith("DCGM_FI_DEV_GPU_TEMP{"))
        return re.findall(r'([A-Za-z_]+)="', line)

    assert keys(page("dcgm")) == keys((CAPTURES / SAME_DIALECT["dcgm"]).read_text())


def test_v1_counters_restart_from_zero_with_new_created_timestamps() -> None:
    m = EngineModel(EngineConfig(crash_down_s=5.0), get_scenario("healthy"), seed=1, start=T0)
    r = PageRenderer("vllm-v1", "M")
    m.advance_to(T0 + 60)

    def sample(text: str, name: str) -> float:
        match = re.search(rf"^{re.escape(name)}{{[^}}]*}} (\S+)$", text, re.M)
        assert match, name
        return float(match.group(1))

    before = r.render(m)
    m.set_scenario(get_scenario("engine_crash"))
    m.set_scenario(get_scenario("healthy"))
    m.advance_to(T0 + 62)
    after = r.render(m)
    assert sample(after, "vllm:generation_tokens_total") < sample(before, "vllm:generation_tokens_total")
    assert sample(before, "vllm:generation_tokens_created") == T0
    assert sample(after, "vllm:generation_tokens_created") > T0 + 59
    sgl = PageRenderer("sglang", "M", seed=1)
    assert re.search(r'pid="(\d+)"', sgl.render(m)) is not None


def test_gpu_fault_shows_on_the_dcgm_page() -> None:
    text = page("dcgm", "gpu_fault", seconds=120)
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    assert fams["DCGM_FI_DEV_XID_ERRORS"].samples[0].value == 48
    assert fams["DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"].samples[0].value > 0
    healthy = {f.name: f for f in text_string_to_metric_families(page("dcgm", "healthy", seconds=120))}
    assert healthy["DCGM_FI_DEV_XID_ERRORS"].samples[0].value == 0
    assert healthy["DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"].samples[0].value == 0


def test_pages_follow_each_engines_number_format() -> None:
    assert re.search(r'^vllm:num_preemptions_total\{engine="0",model_name="Qwen/Qwen3-8B"\} \d+\.0$',
                     page("vllm-v1"), re.M)
    assert re.search(r"^DCGM_FI_DEV_GPU_TEMP\{[^}]+\} \d+$", page("dcgm"), re.M)  # Go prints ints bare
    assert re.search(r"^DCGM_FI_DEV_POWER_USAGE\{[^}]+\} \d+\.\d{6}$", page("dcgm"), re.M)
    assert fmt(8128902) == "8.128902e+06" and fmt(3) == "3.0" and fmt_go(35.686) == "35.686000"


@given(st.floats(allow_nan=False) | st.integers(min_value=0, max_value=10**12).map(float))
def test_go_float_is_prometheus_clients_format(value: float) -> None:
    assert go_float(value) == floatToGoString(value)  # type: ignore[no-untyped-call]


def test_go_float_edge_values() -> None:
    for v in (0.0, -0.0, 1e-9, 1_000_000.0, 1.7781949744096072e09, math.inf, -math.inf):
        assert go_float(v) == floatToGoString(v)  # type: ignore[no-untyped-call]
    assert go_float(math.nan) == "NaN"


def test_unknown_dialect_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="vllm-v1"):
        PageRenderer("tgi", "M")


def test_model_names_are_escaped_in_labels() -> None:
    m = EngineModel(EngineConfig(), get_scenario("healthy"), seed=1, start=T0)
    text = PageRenderer("vllm-v1", 'we"ird\\name').render(m)
    running = next(f for f in text_string_to_metric_families(text) if f.name == "vllm:num_requests_running")
    assert running.samples[0].labels["model_name"] == 'we"ird\\name'
