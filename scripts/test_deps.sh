#!/usr/bin/env bash
# Debian packages the tests run for real (each installed only when missing; `apt-get update` once):
# systemd-analyze (verify the unit), promtool (check the alert rules), chromium (the dashboard test),
# redis-server (incident memory against a real Redis), prometheus-alertmanager (the Alertmanager sink test).
set -euo pipefail
need=()
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
if ((${#need[@]})); then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "${need[@]}"
  else
    echo "test_deps: missing ${need[*]}; install them (apt-get install ${need[*]})" >&2
  fi
fi
