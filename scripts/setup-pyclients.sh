#!/usr/bin/env bash
# Installs the official Python clients the proxy's end-to-end tests drive it with, in a venv
# cached outside the checkout:
#
#   openai  <- PyPI `openai`  (the OpenAI Python SDK: chat and legacy completions, streamed)
#   ollama  <- PyPI `ollama`  (the Ollama Python client: /api/chat and /api/generate)
#   mcp     <- PyPI `mcp`     (the official MCP Python SDK: its stdio client drives
#                              `infermon mcp` in tests/e2e_mcp.rs)
#
#   eval "$(bash scripts/setup-pyclients.sh)"
#
# Cache: $INFERMON_PYCLIENTS_CACHE (default ~/.cache/infermon-pyclients), one venv per pinned
# set of versions, so a bump installs anew and an unchanged pin reuses it without pip.
# Prints `export INFERMON_PYCLIENTS_PYTHON=...` on stdout (read by tests/e2e_sdk_clients.rs)
# and writes it to $CACHE/env.sh too (read by the tests when the variable is unset); messages
# on stderr.
set -euo pipefail

OPENAI_VERSION="${OPENAI_VERSION:-3.51.0}"
OLLAMA_VERSION="${OLLAMA_VERSION:-0.6.3}"
MCP_VERSION="${MCP_VERSION:-2.3.0}"
CACHE="${INFERMON_PYCLIENTS_CACHE:-$HOME/.cache/infermon-pyclients}"
VENV="$CACHE/openai-$OPENAI_VERSION-ollama-$OLLAMA_VERSION-mcp-$MCP_VERSION"
PY="${PYTHON:-python3}"

log() { printf '[setup-pyclients] %s\n' "$*" >&2; }

if [ ! -f "$VENV/.complete" ]; then
  log "installing openai==$OPENAI_VERSION, ollama==$OLLAMA_VERSION and mcp==$MCP_VERSION from PyPI into $VENV"
  rm -rf "$VENV"
  mkdir -p "$CACHE"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check \
    "openai==$OPENAI_VERSION" "ollama==$OLLAMA_VERSION" "mcp==$MCP_VERSION" >&2
  touch "$VENV/.complete"
fi

log "$("$VENV/bin/python" -c 'import openai, ollama, mcp, importlib.metadata as m; print("openai", openai.__version__, "ollama", m.version("ollama"), "mcp", m.version("mcp"))')"
line="export INFERMON_PYCLIENTS_PYTHON=\"$VENV/bin/python\""
printf '%s\n' "$line" >"$CACHE/env.sh"
printf '%s\n' "$line"
