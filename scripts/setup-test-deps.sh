#!/usr/bin/env bash
# Installs the system tools the tests need, from Debian/Ubuntu packages, unless present:
#
#   promtool  <- apt package `prometheus`  (tests/prometheus_rules.rs: `promtool check rules`,
#                                           `promtool test rules` on deploy/prometheus/)
#   tmux      <- apt package `tmux`        (tests/e2e_top.rs drives `infermon top` in it)
#   victoria-metrics <- apt package `victoria-metrics` (crates/remote/tests/receivers.rs: remote
#                                           write across a receiver outage; so is prometheus)
#   chromium  <- apt package `chromium`    (tests/e2e_dashboard.rs drives the dashboard in it,
#                                           headless; bench/dashboard.sh)
#   cargo-deb <- crates.io, pinned          (tests/package_deb.rs; scripts/package-deb.sh)
#
#   eval "$(bash scripts/setup-test-deps.sh)"
#
# Idempotent: a tool already found (INFERMON_PROMTOOL, or on PATH) is not installed again and
# apt-get is not run at all. Needs root (or password-less sudo) only when something is missing;
# runs without stdin (CI). Prints `export INFERMON_PROMTOOL=...` on stdout, messages on stderr.
# Note: on a host with systemd, the package's post-install script enables and starts a
# Prometheus server (:9090); `systemctl disable --now prometheus` if that is not wanted.
set -euo pipefail

log() { printf '[setup-test-deps] %s\n' "$*" >&2; }

find_promtool() {
  if [ -n "${INFERMON_PROMTOOL:-}" ] && [ -x "$INFERMON_PROMTOOL" ]; then
    printf '%s\n' "$INFERMON_PROMTOOL"
  else
    command -v promtool || true
  fi
}

PROMTOOL="$(find_promtool)"
missing=()
[ -n "$PROMTOOL" ] || missing+=(prometheus)
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v victoria-metrics >/dev/null 2>&1 || missing+=(victoria-metrics)

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    log "missing Debian package(s): ${missing[*]}, and not running as root."
    log "install it with:  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}"
    log "or set INFERMON_PROMTOOL to a promtool binary (https://prometheus.io/download/)."
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    log "missing: ${missing[*]}, and no apt-get here: install Prometheus' promtool (and tmux) with your package"
    log "manager (or from https://prometheus.io/download/) and put it on PATH or in INFERMON_PROMTOOL."
    exit 1
  fi
  log "installing ${missing[*]} with apt-get"
  ${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null >&2
  ${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}" </dev/null >&2
  PROMTOOL="$(find_promtool)"
  if [ -z "$PROMTOOL" ]; then
    log "installed ${missing[*]} but promtool is still not on PATH"
    exit 1
  fi
  command -v tmux >/dev/null 2>&1 || { log "installed ${missing[*]} but tmux is still not on PATH"; exit 1; }
  command -v chromium >/dev/null 2>&1 || { log "installed ${missing[*]} but chromium is still not on PATH"; exit 1; }
fi

log "$("$PROMTOOL" --version 2>&1 | head -1)"
# cargo-deb (pinned in scripts/package-deb.sh) for tests/package_deb.rs: `cargo install` into
# ~/.cargo/bin the first time (about a minute on 2 cores), nothing when the pinned version is there.
bash "$(dirname "$0")/package-deb.sh" --ensure-cargo-deb
log "$(cargo deb --version)"
printf 'export INFERMON_PROMTOOL="%s"\n' "$PROMTOOL"
