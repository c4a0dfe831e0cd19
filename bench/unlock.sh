#!/usr/bin/env bash
# bench/unlock.sh — how long does unlocking an encrypted backup take, compared with the tools
# people already use? Times the iOS >= 10.2 key derivation (PBKDF2-HMAC-SHA256 x 10,000,000
# on the password; the 10,000-round SHA-1 stage adds ~1 %) in:
#   iosnap            crates/format/examples/unlock_bench.rs (release build; derive_kek, both stages)
#   RustCrypto pbkdf2 the generic `pbkdf2` crate, SHA-256 stage only (same binary)
#   openssl kdf       OpenSSL's PBKDF2, SHA-256 stage only
#   hashlib           Python hashlib.pbkdf2_hmac (OpenSSL; iOSbackup, pyiosbackup), SHA-256 stage
#   pycryptodome      Crypto.Protocol.KDF.PBKDF2 (iphone_backup_decrypt, mvt), both stages
# and checks that every implementation computes the same bytes. Run by hand, not in CI:
#   bench/unlock.sh [RUNS]        (default 3 runs each; best and median are reported)
# Environment: BENCH_VENV (default target/bench-venv) gets pycryptodome installed if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
VENV=${BENCH_VENV:-target/bench-venv}
PW=iosnap-bench
DPSL_HEX=000102030405060708090a0b0c0d0e0f10111213   # bytes 0..20
SALT_HEX=1415161718191a1b1c1d1e1f2021222324252627   # bytes 20..40
DPIC=10000000
ITER=10000
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

echo "building the release example..." >&2
cargo build --quiet --release -p iosnap-format --example unlock_bench
BIN=target/release/examples/unlock_bench

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import Crypto' 2>/dev/null; then
    "$VENV/bin/pip" install --quiet pycryptodome
fi

# Each line of $OUT/times: "<name> <wall seconds> <CPU seconds>".
: > "$OUT/times"
now() { date +%s.%N; }

# One process does RUNS derivations plus one timing of each SHA-256 stage; RUNS-1 more
# processes (argument 0) add the remaining stage timings.
"$BIN" "$RUNS" > "$OUT/iosnap.txt"
for ((i = 1; i < RUNS; i++)); do
    "$BIN" 0 | grep -E '_sha256 ' >> "$OUT/iosnap.txt"
done
awk '$1 == "iosnap_derive_kek" { print "iosnap-derive_kek(both-stages)", $2, $3 }
     $1 == "iosnap_pbkdf2_sha256" { print "iosnap-pbkdf2(sha256-stage)", $2, $3 }
     $1 == "rustcrypto_pbkdf2_sha256" { print "rustcrypto-pbkdf2-crate(sha256-stage)", $2, $3 }' \
    "$OUT/iosnap.txt" >> "$OUT/times"
KEK_RUST=$(awk '$1=="kek"{print $2}' "$OUT/iosnap.txt")
STAGE_RUST=$(awk '$1=="sha256_stage"{print $2; exit}' "$OUT/iosnap.txt")

if openssl kdf -help >/dev/null 2>&1; then
    for ((i = 0; i < RUNS; i++)); do
        t0=$(now)
        STAGE_SSL=$(/usr/bin/time -f '%U %S' -o "$OUT/ssl.cpu" openssl kdf -keylen 32 \
            -kdfopt digest:SHA256 -kdfopt "pass:$PW" -kdfopt "hexsalt:$DPSL_HEX" \
            -kdfopt "iter:$DPIC" PBKDF2 | tr -d ':\n' | tr 'A-F' 'a-f')
        t1=$(now)
        echo "openssl-kdf(sha256-stage) $(echo "$t1 - $t0" | bc -l) $(awk '{print $1 + $2}' "$OUT/ssl.cpu")" >> "$OUT/times"
    done
    if [ "$STAGE_SSL" != "$STAGE_RUST" ]; then
        echo "MISMATCH: openssl $STAGE_SSL vs iosnap $STAGE_RUST" >&2
        exit 1
    fi
else
    echo "openssl has no 'kdf' command (needs OpenSSL 3); skipped" >&2
fi

"$VENV/bin/python" - "$RUNS" "$PW" "$DPSL_HEX" "$SALT_HEX" "$DPIC" "$ITER" "$KEK_RUST" "$STAGE_RUST" \
    >> "$OUT/times" <<'PY'
import hashlib, sys, time
from Crypto.Hash import SHA1, SHA256
from Crypto.Protocol.KDF import PBKDF2
runs, pw, dpsl, salt, dpic, it, kek_rust, stage_rust = sys.argv[1:]
runs, dpic, it = int(runs), int(dpic), int(it)
pw, dpsl, salt = pw.encode(), bytes.fromhex(dpsl), bytes.fromhex(salt)
for _ in range(runs):
    t, c = time.perf_counter(), time.process_time()
    stage = hashlib.pbkdf2_hmac("sha256", pw, dpsl, dpic, 32)
    print("python-hashlib(sha256-stage)", time.perf_counter() - t, time.process_time() - c)
    assert stage.hex() == stage_rust, ("hashlib", stage.hex(), stage_rust)
for _ in range(runs):
    t, c = time.perf_counter(), time.process_time()
    k1 = PBKDF2(pw, dpsl, 32, count=dpic, hmac_hash_module=SHA256)
    kek = PBKDF2(k1, salt, 32, count=it, hmac_hash_module=SHA1)
    print("pycryptodome(both-stages)", time.perf_counter() - t, time.process_time() - c)
    assert kek.hex() == kek_rust, ("pycryptodome", kek.hex(), kek_rust)
PY

echo "All implementations agree: SHA-256 stage $STAGE_RUST, KEK $KEK_RUST" >&2
echo
echo "$(nproc) CPU(s): $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); load $(cut -d' ' -f1-3 /proc/loadavg); $RUNS runs each"
echo
awk '
    function sort(v, m,    i, j, x) {
        for (i = 2; i <= m; i++) { x = v[i]; j = i - 1; while (j > 0 && v[j] + 0 > x + 0) { v[j + 1] = v[j]; j-- } v[j + 1] = x }
    }
    { w[$1] = w[$1] " " $2; c[$1] = c[$1] " " $3 }
    END {
        for (k in w) {
            m = split(substr(w[k], 2), v, " "); sort(v, m)
            bw[k] = v[1]; mw[k] = (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
            m = split(substr(c[k], 2), u, " "); sort(u, m)
            bc[k] = u[1]
            if (fastest == "" || bc[k] + 0 < fastest + 0) fastest = bc[k]
        }
        printf "| implementation | best CPU (s) | CPU vs fastest | best wall (s) | median wall (s) |\n|---|---|---|---|---|\n"
        for (k in w) printf "%s\t| %s | %.3f | %.2fx | %.3f | %.3f |\n", bc[k], k, bc[k], bc[k] / fastest, bw[k], mw[k]
    }' "$OUT/times" | sort -n | cut -f2-
