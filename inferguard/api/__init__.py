"""The daemon's HTTP surface: /metrics, /healthz, /readyz, the read-only JSON API and the dashboard."""

from inferguard.api.guard import GuardConfig
from inferguard.api.health import Health
from inferguard.api.listen import Bind, check_bind, parse_listen
from inferguard.api.readmodel import ApiReadModel
from inferguard.api.routes import build_app
from inferguard.api.serve import ApiOptions, ApiServer

__all__ = ["ApiOptions", "ApiReadModel", "ApiServer", "Bind", "GuardConfig", "Health", "build_app",
           "check_bind", "parse_listen"]
