"""NVIDIA dcgm-exporter dialect: one Signals per GPU (model = ``gpu0``, ``gpu1``; MIG: ``gpu0-mig3``).

Field names from NVIDIA/dcgm-exporter ``etc/default-counters.csv`` and the three real captures in
shared/fixtures. Blank sentinels (DCGM ``dcgm_fields.h``, search corpus "code"): int64 fields use
``DCGM_INT64_BLANK`` = 0x7ffffffffffffff0 and above (9.2e18 as a float); double fields (power) use
``DCGM_FP64_BLANK`` = 140737488355328.0 (2**47) and above. No real reading of the fields read here
comes near 2**47, so one threshold covers both: at or above it the value is unknown.
"""

from __future__ import annotations

from collections.abc import Mapping

from inferguard.models import Labels
from inferguard.normalise.dialect import Dialect, Series, put, rate

FP64_BLANK = 140737488355328.0


def _gpu(labels: Labels) -> str:
    gpu = labels.get("gpu")
    name = f"gpu{gpu}" if gpu is not None else labels.get("UUID", "gpu")
    mig = labels.get("GPU_I_ID")
    return f"{name}-mig{mig}" if mig else name


_GAUGES = (
    Series("xid", ("DCGM_FI_DEV_XID_ERRORS",), across="max"),
    Series("temp", ("DCGM_FI_DEV_GPU_TEMP",), across="max"),
    Series("power", ("DCGM_FI_DEV_POWER_USAGE",), across="max"),
    # Renamed in DCGM 3.x ("clock events"); an exporter prints one or the other.
    Series("throttle", ("DCGM_FI_DEV_CLOCKS_EVENT_REASONS", "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS"), across="max"),
    Series("fb_used", ("DCGM_FI_DEV_FB_USED",), across="max"),
    Series("fb_free", ("DCGM_FI_DEV_FB_FREE",), across="max"),
    Series("util", ("DCGM_FI_DEV_GPU_UTIL",), across="max"),
)

_COUNTERS = (Series("ecc_dbe", ("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",), across="max"),)


def _derive(g: Mapping[str, float], c: Mapping[str, float], d: Mapping[str, float] | None,
            elapsed: float) -> dict[str, float]:
    out: dict[str, float] = {}
    put(out, "gpu_xid_error", g.get("xid"))
    put(out, "gpu_temp_c", g.get("temp"))
    put(out, "gpu_power_w", g.get("power"))
    put(out, "gpu_throttle_reasons", g.get("throttle"))
    used, free = g.get("fb_used"), g.get("fb_free")
    if used is not None and free is not None and used + free > 0:
        out["gpu_fb_used_ratio"] = used / (used + free)
    util = g.get("util")
    if util is not None:
        out["gpu_util"] = util / 100.0  # DCGM reports percent
    if d is not None:
        put(out, "gpu_ecc_dbe_per_s", rate(d, "ecc_dbe", elapsed))
    return out


DCGM = Dialect("dcgm", _gpu, _GAUGES, _COUNTERS, (), _derive,
               ("gpu_temp_c", "gpu_power_w", "gpu_util", "gpu_fb_used_ratio"), sentinel_at=FP64_BLANK)

PREFIX = "DCGM_FI_"
