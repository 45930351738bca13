#!/usr/bin/env bash
# Builds the Debian package of infermon (binary, hardened systemd unit, conffile
# /etc/infermon/config.toml, man pages, bash/zsh/fish completions) with cargo-deb.
#
#   bash scripts/package-deb.sh                    # dist profile (fat LTO): target/debian/*.deb
#   INFERMON_DEB_BINARY=target/debug/infermon bash scripts/package-deb.sh   # package that binary
#   bash scripts/package-deb.sh --ensure-cargo-deb # only install the pinned cargo-deb
#
# Environment:
#   INFERMON_DEB_BINARY   an already built infermon to package instead of building one (the
#                         tests use Cargo's debug binary, so no fat-LTO build is needed); it is
#                         staged in a target directory of its own, never over target/<profile>.
#   INFERMON_DEB_PROFILE  Cargo profile to build (default: dist; with INFERMON_DEB_BINARY,
#                         release, whose settings make cargo-deb strip the staged binary:
#                         under dist it trusts the profile's strip and packs a debug binary
#                         whole, 36 MB and 3 minutes of xz instead of 6 MB and 35 s).
#   INFERMON_DEB_OUT      directory for the .deb (default: target/debian).
#
# cargo-deb is installed when missing (`cargo install --locked`, pinned below, into
# ~/.cargo/bin; about one minute on 2 cores). The last line on stdout is the .deb's path;
# messages go to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.7.0

log() { printf '[package-deb] %s\n' "$*" >&2; }

ensure_cargo_deb() {
  local have
  have="$(cargo deb --version 2>/dev/null || true)"
  if [ "$have" = "cargo-deb $CARGO_DEB_VERSION" ]; then
    return
  fi
  log "installing cargo-deb $CARGO_DEB_VERSION (found: ${have:-none})"
  cargo install --locked --quiet cargo-deb --version "$CARGO_DEB_VERSION" >&2
  have="$(cargo deb --version 2>/dev/null || true)"
  if [ "$have" != "cargo-deb $CARGO_DEB_VERSION" ]; then
    log "cargo-deb $CARGO_DEB_VERSION installed but \`cargo deb --version\` says: ${have:-nothing}"
    log "is ~/.cargo/bin on PATH?"
    exit 1
  fi
}

case "${1:-}" in
  --ensure-cargo-deb)
    ensure_cargo_deb
    exit 0
    ;;
  "") ;;
  *)
    log "unknown argument: $1 (expected none, or --ensure-cargo-deb)"
    exit 2
    ;;
esac

ensure_cargo_deb

if [ -n "${INFERMON_DEB_BINARY:-}" ]; then
  profile="${INFERMON_DEB_PROFILE:-release}"
else
  profile="${INFERMON_DEB_PROFILE:-dist}"
fi
out="${INFERMON_DEB_OUT:-target/debian}"
mkdir -p "$out"

if [ -n "${INFERMON_DEB_BINARY:-}" ]; then
  if [ ! -x "$INFERMON_DEB_BINARY" ]; then
    log "INFERMON_DEB_BINARY=$INFERMON_DEB_BINARY is not an executable file"
    exit 1
  fi
  # A target directory of its own: cargo-deb reads `target/release/...` assets from
  # <target dir>/<profile>/, so the given binary is copied there.
  mkdir -p target
  stage="$(pwd)/target/deb-stage"
  rm -rf "$stage"
  mkdir -p "$stage/$profile"
  cp "$INFERMON_DEB_BINARY" "$stage/$profile/infermon"
  export CARGO_TARGET_DIR="$stage"
  bin="$stage/$profile/infermon"
  log "packaging $INFERMON_DEB_BINARY (staged in $stage/$profile)"
else
  log "building infermon with profile $profile"
  cargo build --locked -p infermon --profile "$profile" >&2
  target_dir="$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
  if [ -z "$target_dir" ]; then
    log "could not read the target directory from \`cargo metadata\`"
    exit 1
  fi
  bin="$target_dir/$profile/infermon"
fi

# Generated assets, from the binary being packaged (so they describe exactly its flags).
assets="$(dirname "$bin")/deb-assets"
rm -rf "$assets"
mkdir -p "$assets/man" "$assets/completions"
"$bin" manpages "$assets/man" >/dev/null
gzip -9n "$assets/man"/*.1
"$bin" completions bash >"$assets/completions/infermon"
"$bin" completions zsh >"$assets/completions/_infermon"
"$bin" completions fish >"$assets/completions/infermon.fish"
{
  cat deploy/debian/config-header.toml
  "$bin" config
} >"$assets/config.toml"
log "generated $(find "$assets/man" -name '*.1.gz' | wc -l) man pages, 3 completion scripts, config.toml"

deb="$(cargo deb --no-build --locked --profile "$profile" --output "$out" | tail -n 1)"
if [ ! -f "$deb" ]; then
  log "cargo deb did not report a package file (got: $deb)"
  exit 1
fi
log "built $deb ($(du -h "$deb" | cut -f1))"
printf '%s\n' "$deb"
