#!/usr/bin/env bash
# Side by side: signet and the reference gate (the PyPI package signet-sign
# 0.1.10.1), each running its own `init` scaffold pipeline (the same seven
# checks: loopback trust, owner resolution, rate limit, classification gate,
# prompt injection, scope drift, tool-call inspector; rate limits raised so the
# load is not refused as abuse), audit log on, against the same mock upstream
# (`signet bench mock`) and the same load (`signet bench load`), one after the
# other in one run. Prints both gates' numbers and the ratios.
#
# Run with: bench/compare-reference.sh [DURATION_S] [ROUNDS]
#   e.g.    bench/compare-reference.sh 3 2
#   env:    SCENARIOS=unary-c1,stream-c1,unary-c32 (any of `signet bench --help`'s)
#           NO_INJECTION=1 drops the prompt-injection check from BOTH pipelines
#           GATE_CPU=0 LOAD_CPU=1
# Needs: cargo, python3 (3.9+) with venv, taskset (util-linux), network access
# to PyPI the first time (the venv is kept under target/).
set -euo pipefail

DURATION=${1:-3}
ROUNDS=${2:-2}
SCENARIOS=${SCENARIOS:-unary-c1,stream-c1,unary-c32}
GATE_CPU=${GATE_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
NO_INJECTION=${NO_INJECTION:-0}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
WORK="$TARGET/bench-compare"
VENV="$TARGET/bench-venv-signet-sign"
SIGNET="$TARGET/release/signet"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

echo "== building signet (release)" >&2
(cd "$ROOT" && cargo build --release --locked -p signet >&2)

if [ ! -x "$VENV/bin/signet" ]; then
    echo "== installing signet-sign==0.1.10.1 into $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "signet-sign==0.1.10.1" >&2
fi
REF="$VENV/bin/signet"

rm -rf "$WORK" && mkdir -p "$WORK"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 1 150); do
        if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null; then return 0; fi
        sleep 0.2
    done
    echo "nothing listening on port $1" >&2; return 1
}

# The mock upstream, on the load CPU.
MOCK_PORT=$(free_port)
taskset -c "$LOAD_CPU" "$SIGNET" bench mock --port "$MOCK_PORT" > "$WORK/mock.log" 2>&1 &
PIDS+=($!)
wait_port "$MOCK_PORT"
MOCK="http://127.0.0.1:$MOCK_PORT"

load() { # label pid url out.json
    "$SIGNET" bench load --label "$1" --pid "$2" --target "$3" --direct "$MOCK" \
        --gate-cpu "$GATE_CPU" --scenarios "$SCENARIOS" --duration "$DURATION" --rounds "$ROUNDS" --json > "$4"
}

# 1. The reference: its `signet init` pipeline.py, rate limit raised.
mkdir -p "$WORK/ref" && (cd "$WORK/ref" && "$REF" init . > /dev/null)
python3 - "$WORK/ref/pipeline.py" "$NO_INJECTION" <<'EOF'
import re, sys
p = sys.argv[1]; s = open(p).read()
s2 = re.sub(r"RateLimitCheck\(capacity=60, refill_per_second=1\.0\)",
            "RateLimitCheck(capacity=1000000000, refill_per_second=1000000000.0)", s)
assert s2 != s, "the reference scaffold's RateLimitCheck line changed"
if sys.argv[2] == "1":
    s3 = s2.replace("    PromptInjectionCheck(),\n", "")
    assert s3 != s2, "the reference scaffold's PromptInjectionCheck line changed"
    s2 = s3
open(p, "w").write(s2)
EOF
REF_PORT=$(free_port)
echo "== reference gate (signet-sign 0.1.10.1) on CPU $GATE_CPU, port $REF_PORT" >&2
(cd "$WORK/ref" && exec taskset -c "$GATE_CPU" "$REF" serve --upstream "$MOCK/v1" --port "$REF_PORT" \
    --config pipeline.py --audit-log audit.jsonl --allow-ephemeral-key > gate.log 2>&1) &
REF_PID=$!
PIDS+=($REF_PID)
wait_port "$REF_PORT"
sleep 1
load "signet-sign 0.1.10.1" "$REF_PID" "http://127.0.0.1:$REF_PORT" "$WORK/reference.json"
kill "$REF_PID" 2>/dev/null || true

# 2. signet: its `signet init` signet.toml, rate limit raised, audit fsync = batch.
"$SIGNET" init "$WORK/signet" > /dev/null
python3 - "$WORK/signet/signet.toml" "$NO_INJECTION" <<'EOF'
import sys
p = sys.argv[1]; s = open(p).read()
old = "capacity = 60\nrefill_per_second = 1.0"
assert old in s, "the signet scaffold's rate_limit lines changed"
s = s.replace(old, "capacity = 1000000000\nrefill_per_second = 1000000000.0")
if sys.argv[2] == "1":
    on = 'kind = "prompt_injection"\nmode = "enforce"'
    assert on in s, "the signet scaffold's prompt_injection lines changed"
    s = s.replace(on, 'kind = "prompt_injection"\nmode = "disabled"')
s += '\n[audit]\npath = "audit.jsonl"\nfsync = "batch"\n'
open(p, "w").write(s)
EOF
SIG_PORT=$(free_port)
echo "== signet gate on CPU $GATE_CPU, port $SIG_PORT" >&2
(cd "$WORK/signet" && exec taskset -c "$GATE_CPU" "$SIGNET" serve --config signet.toml --upstream "$MOCK" \
    --port "$SIG_PORT" --allow-ephemeral-key > gate.log 2>&1) &
SIG_PID=$!
PIDS+=($SIG_PID)
wait_port "$SIG_PORT"
sleep 1
load "signet $("$SIGNET" --version | awk '{print $2}')" "$SIG_PID" "http://127.0.0.1:$SIG_PORT" "$WORK/signet.json"

# 3. Side by side.
python3 - "$WORK/reference.json" "$WORK/signet.json" "$NO_INJECTION" <<'EOF'
import json, sys
ref, sig = (json.load(open(p)) for p in sys.argv[1:3])
print(f"reference: {ref['gate']}    signet: {sig['gate']}    prompt injection: {'OFF in both' if sys.argv[3] == '1' else 'on in both'}")
for line in sig["setup"][1:]:
    print("  " + line)
print()
hdr = f"{'scenario':<11} {'':<10} {'added p50 ms':>13} {'added p99 ms':>13} {'req/s':>9} {'CPU µs/req':>11} {'errors':>7}"
print(hdr)
def row(name, s):
    a, g = s["added"], s["gate"]
    cpu = s["gate_cpu_us_per_request"]
    print(f"{'':<11} {name:<10} {a['p50_ms']:>13.3f} {a['p99_ms']:>13.3f} {g['requests_per_s']:>9.0f} "
          f"{(f'{cpu:.0f}' if cpu is not None else '-'):>11} {g['errors']:>7}")
def ratio(x, y):
    return f"{x / y:,.0f}x" if y > 0 else "n/a"
by = {s["name"]: s for s in sig["scenarios"]}
for r in ref["scenarios"]:
    s = by.get(r["name"])
    if s is None:
        continue
    print(r["name"])
    row("reference", r)
    row("signet", s)
    print(f"{'':<11} {'ratio':<10} {ratio(r['added']['p50_ms'], s['added']['p50_ms']):>13} "
          f"{ratio(r['added']['p99_ms'], s['added']['p99_ms']):>13} "
          f"{ratio(s['gate']['requests_per_s'], r['gate']['requests_per_s']):>9}")
mem = lambda j, k: j["memory"].get(k)
print()
print(f"gate RSS idle MiB: reference {mem(ref,'idle_rss_mib') or 0:.1f}, signet {mem(sig,'idle_rss_mib') or 0:.1f}; "
      f"peak: reference {mem(ref,'peak_rss_mib') or 0:.1f}, signet {mem(sig,'peak_rss_mib') or 0:.1f}")
print("ratios: added latency = reference / signet (higher is better for signet); req/s = signet / reference")
EOF
echo "(raw JSON: $WORK/reference.json, $WORK/signet.json)" >&2
