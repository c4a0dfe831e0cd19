#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script).
#
# It installs what the tests need on a clean machine:
#   * Debian packages listed in scripts/debian-packages.txt, with apt-get, when missing,
#   * the Python peers (iphone_backup_decrypt, mvt, pymobiledevice3 …) in a virtualenv under target/,
#   * cargo-fuzz, when a nightly toolchain is present, for a short fuzzing pass.
# Then: format check, clippy (warnings are errors), the workspace tests, docs, and every fuzz target briefly.
#
# Knobs: IOSNAP_FUZZ_SECONDS (default 10 per target; 0 skips fuzzing), IOSNAP_SKIP_LINT=1 skips fmt/clippy/doc.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

step() { printf '\n==> %s\n' "$*"; }

# --- system packages ---------------------------------------------------------------------------
need_pkgs=()
while read -r probe pkg; do
  case "$probe" in ''|'#'*) continue ;; esac
  command -v "$probe" >/dev/null 2>&1 || need_pkgs+=("$pkg")
done < scripts/debian-packages.txt
if [ ${#need_pkgs[@]} -gt 0 ]; then
  step "installing Debian packages: ${need_pkgs[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else SUDO=none; fi
  if [ "$SUDO" = none ]; then
    echo "cannot install ${need_pkgs[*]}: not root and no sudo" >&2; exit 1
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

# The packages above are installed now: tests that would skip without them must run here.
export IOSNAP_REQUIRE_CHROMIUM=1 IOSNAP_REQUIRE_KEYRING=1

# --- Python peers ------------------------------------------------------------------------------
step "Python peers (virtualenv under target/)"
venv=$(scripts/peers-venv.sh)
export IOSNAP_PEERS_VENV="$venv"
echo "peers venv: $venv"

# --- lint ----------------------------------------------------------------------------------------
if [ "${IOSNAP_SKIP_LINT:-0}" != 1 ]; then
  step "cargo fmt --check"
  cargo fmt --all --check
  step "cargo clippy (warnings are errors)"
  cargo clippy --workspace --all-targets --locked -- -D warnings
fi

# --- tests ---------------------------------------------------------------------------------------
step "cargo test --workspace"
cargo test --workspace --locked

if [ "${IOSNAP_SKIP_LINT:-0}" != 1 ]; then
  step "cargo doc"
  RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet
fi

# --- fuzzing (short) -----------------------------------------------------------------------------
fuzz_secs=${IOSNAP_FUZZ_SECONDS:-10}
if [ "$fuzz_secs" != 0 ] && [ -x fuzz/run-all.sh ]; then
  if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    step "fuzz targets, ${fuzz_secs}s each"
    command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet
    fuzz/run-all.sh "$fuzz_secs"
  else
    echo "no nightly toolchain: fuzz targets not run (they need cargo-fuzz on nightly)"
  fi
fi

step "all checks passed"
