#!/usr/bin/env bash
# Interleaved echo comparison: legume-rs against peer programs on other libraries.
#
#   IMPLS=legume-rs bash bench/compare.sh       # legume-rs alone: needs nothing outside this repository
#   PEERS_SRC=/path/to/peers bash bench/compare.sh              # everything, 3 reps (about 10 minutes)
#   PEERS_SRC=/path/to/peers REPS=1 WLS="W1 W3" bash bench/compare.sh    # a subset
#
# The peer programs (echo servers and clients on renet, laminar and raw UDP, and a Python legume
# 0.5 one) are not part of this repository: they are a Cargo workspace with legume_echo.py beside
# its Cargo.toml, and take the command line of examples/echo.rs. Point PEERS_SRC at them (or
# SHARED at a folder holding them as peers/); without them only legume-rs and legume-rs-secure run.
#
# Builds `cargo build --release --example echo` here and the peers from a copy of PEERS_SRC
# (read-only where it lies), then runs every selected workload REPS times per implementation
# through bench/echo_run.py (W4 through bench/lossy_proxy.py), interleaved: rep 1 of every
# workload x implementation, then rep 2, ... Each run starts a fresh server. Raw JSON lines go to
# $OUT (one per run, plus one per skipped pair); the markdown tables of medians and of the
# legume-rs ratios go to stdout, progress to stderr.
#
# Workloads (loopback; "echoed" counts distinct echoes back at the client):
#   W1  1 client  x 100,000 x 32 B    ordered
#   W2  16 clients x 5,000 x 32 B     reliable
#   W3  1 client  x 2,000 x 1,200 B   reliable
#   W4  1 client  x 20,000 x 32 B     ordered, through lossy_proxy.py at 5 % loss
#   W5  1 client  x 100,000 x 32 B    unreliable (the echoed share is part of the result)
#   W6  1 client  x 200 x 64 KiB      reliable (fragmented)
# Implementations: legume-rs, legume-rs-secure (connect tokens, encrypted packets; opt-in), renet,
# laminar, udp (W5 only), legume-py (Python legume 0.5; opt-in).
#
# Environment:
#   IMPLS   implementations, default "legume-rs renet laminar udp" (all but legume-rs need
#           PEERS_SRC); add legume-py to include
#           Python legume 0.5 (fetched with pip unless LEGUME_PY_DIR names an unpacked Legume-0.5)
#   WLS     workloads, default "W1 W2 W3 W4 W5 W6"
#   REPS    runs per implementation and workload, default 3
#   OUT     results file, default target/bench-compare/results-<date>.jsonl
#   TIMEOUT client timeout per run in seconds, default 60
#   LAMINAR_W4  once (default: rep 1 only) | all | skip. laminar never recovers from the first
#           loss under W4 (no timer-based resend; see the peers' README.md), so it times out.
#   LAMINAR_W4_TIMEOUT  its client timeout, default 20
#   PEERS_SRC   the peer programs' Cargo workspace; no default (see above)
#   SHARED      a folder holding the peers as peers/: sets PEERS_SRC=$SHARED/peers when unset
#   ECHO_RUN    the echo runner, default bench/echo_run.py (W4 needs lossy_proxy.py beside it)
#   PEERS_TARGET  cargo target dir for the peers, default target/bench-peers (kept between runs)
#   PY      python interpreter, default python3
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SUMMARIZE="$ROOT/bench/summarize.py"
SHARED=${SHARED:-}
ECHO_RUN=${ECHO_RUN:-$ROOT/bench/echo_run.py}
PEERS_SRC=${PEERS_SRC:-${SHARED:+$SHARED/peers}}
PEERS_TARGET=${PEERS_TARGET:-$ROOT/target/bench-peers}
REPS=${REPS:-3}
IMPLS=${IMPLS:-"legume-rs renet laminar udp"}
WLS=${WLS:-"W1 W2 W3 W4 W5 W6"}
TIMEOUT=${TIMEOUT:-60}
LAMINAR_W4=${LAMINAR_W4:-once}
LAMINAR_W4_TIMEOUT=${LAMINAR_W4_TIMEOUT:-20}
LEGUME_PY_DIR=${LEGUME_PY_DIR:-}
PY=${PY:-python3}
OUT=${OUT:-$ROOT/target/bench-compare/results-$(date +%Y%m%d-%H%M%S).jsonl}

die() {
  echo "compare.sh: $*" >&2
  exit 1
}
note() { echo "compare.sh: $*" >&2; }

TMP=""
cleanup() {
  if [ -n "$TMP" ] && [ -d "$TMP" ]; then rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- arguments -------------------------------------------------------------------------------
[[ "$REPS" =~ ^[1-9][0-9]*$ ]] || die "REPS must be a positive integer (got '$REPS')"
[[ "$TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die "TIMEOUT must be a positive integer (got '$TIMEOUT')"
[[ "$LAMINAR_W4_TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die "LAMINAR_W4_TIMEOUT must be a positive integer"
case $LAMINAR_W4 in once | all | skip) ;; *) die "LAMINAR_W4 must be once, all or skip" ;; esac
read -r -a impls <<<"$IMPLS"
read -r -a wls <<<"$WLS"
[ ${#impls[@]} -gt 0 ] || die "IMPLS is empty"
[ ${#wls[@]} -gt 0 ] || die "WLS is empty"
for i in "${impls[@]}"; do
  case $i in legume-rs | legume-rs-secure | renet | laminar | udp | legume-py) ;; *) die "unknown implementation '$i' (legume-rs legume-rs-secure renet laminar udp legume-py)" ;; esac
done
for w in "${wls[@]}"; do
  case $w in W1 | W2 | W3 | W4 | W5 | W6) ;; *) die "unknown workload '$w' (W1 .. W6)" ;; esac
done
has_impl() { [[ " ${impls[*]} " == *" $1 "* ]]; }
has_wl() { [[ " ${wls[*]} " == *" $1 "* ]]; }

# ---- what lies outside this repository -------------------------------------------------------
if [ ! -f "$ECHO_RUN" ]; then
  die "echo runner not found at $ECHO_RUN (ECHO_RUN); the repository's own is bench/echo_run.py"
fi
if has_wl W4 && [ ! -f "$(dirname "$ECHO_RUN")/lossy_proxy.py" ]; then
  die "W4 needs lossy_proxy.py beside $ECHO_RUN (the repository's own is bench/lossy_proxy.py)"
fi
need_peers=0
peer_impls=""
for i in renet laminar udp legume-py; do
  if has_impl "$i"; then
    need_peers=1
    peer_impls="$peer_impls $i"
  fi
done
if [ $need_peers = 1 ] && [ -z "$PEERS_SRC" ]; then
  die "IMPLS includes${peer_impls}, whose peer programs are not part of this repository.
  Point PEERS_SRC at their Cargo workspace (or SHARED at a folder holding it as peers/), or run
  legume-rs alone: IMPLS=legume-rs bash bench/compare.sh (add legume-rs-secure for the secure mode)."
fi
if [ $need_peers = 1 ] && [ ! -f "$PEERS_SRC/Cargo.toml" ]; then
  die "peer programs not found at PEERS_SRC=$PEERS_SRC (expected their Cargo.toml there).
  Point PEERS_SRC (or SHARED) at them, or run IMPLS=legume-rs bash bench/compare.sh."
fi
command -v "$PY" >/dev/null || die "no python interpreter '$PY' (set PY)"
command -v cargo >/dev/null || die "cargo not found"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/legume-compare.XXXXXX")
mkdir -p "$(dirname "$OUT")"
: >"$OUT"
LOG="$TMP/runner.log"

# ---- builds ----------------------------------------------------------------------------------
declare -A BIN
if has_impl legume-rs; then
  note "building legume-rs (cargo build --release --example echo)"
  (cd "$ROOT" && cargo build --release --example echo) >&2 || die "cargo build --release --example echo failed"
  BIN[legume-rs]="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/echo"
  [ -x "${BIN[legume-rs]}" ] || die "build gave no ${BIN[legume-rs]}"
fi
if has_impl legume-rs-secure; then
  note "building legume-rs secure mode (echo and token examples)"
  (cd "$ROOT" && cargo build --release --example echo --example token) >&2 || die "cargo build of echo/token failed"
  rel="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples"
  key=$("$rel/token" keygen) || die "token keygen failed"
  # The echo binary with a private key on both sides: the server requires
  # connect tokens, the client issues its own from the key.
  BIN[legume-rs-secure]="$TMP/legume-rs-secure-echo"
  printf '#!/bin/sh\nexec %q "$@" --secure-key %q\n' "$rel/echo" "$key" >"${BIN[legume-rs-secure]}"
  chmod +x "${BIN[legume-rs-secure]}"
fi
if [ $need_peers = 1 ]; then
  cp -r "$PEERS_SRC" "$TMP/peers"
  chmod -R u+w "$TMP/peers"
  rm -rf "$TMP/peers/target"
fi
if has_impl renet || has_impl laminar || has_impl udp; then
  note "building the peers in a copy of $PEERS_SRC (target dir $PEERS_TARGET)"
  (cd "$TMP/peers" && CARGO_TARGET_DIR="$PEERS_TARGET" cargo build --release -j2 --locked) >&2 ||
    die "building the peers failed (in $TMP/peers)"
  for i in renet laminar udp; do
    BIN[$i]="$PEERS_TARGET/release/${i}_echo"
    if has_impl "$i"; then [ -x "${BIN[$i]}" ] || die "peer build gave no ${BIN[$i]}"; fi
  done
fi
if has_impl legume-py; then
  if [ -z "$LEGUME_PY_DIR" ]; then
    if [ -d "$PEERS_SRC/legume/Legume-0.5" ]; then
      LEGUME_PY_DIR="$PEERS_SRC/legume/Legume-0.5"
    else
      note "fetching Python legume 0.5 with pip (into $TMP)"
      mkdir -p "$TMP/legume"
      (cd "$TMP/legume" && "$PY" -m pip download -q --no-deps --no-binary :all: legume==0.5 -d . &&
        "$PY" -c 'import zipfile; zipfile.ZipFile("Legume-0.5.zip").extractall(".")') >&2 ||
        die "could not fetch legume 0.5 with pip; set LEGUME_PY_DIR or drop legume-py from IMPLS"
      LEGUME_PY_DIR="$TMP/legume/Legume-0.5"
    fi
  fi
  [ -d "$LEGUME_PY_DIR" ] || die "LEGUME_PY_DIR=$LEGUME_PY_DIR is not a directory"
  # echo_run.py runs --bin as a program, so wrap the Python peer in one.
  BIN[legume-py]="$TMP/legume-py-echo"
  printf '#!/bin/sh\nPYTHONPATH=%q exec %q %q "$@"\n' "$LEGUME_PY_DIR" "$(command -v "$PY")" \
    "$TMP/peers/legume_echo.py" >"${BIN[legume-py]}"
  chmod +x "${BIN[legume-py]}"
fi

# ---- workloads -------------------------------------------------------------------------------
# wl_spec W -> "messages size delivery clients loss"
wl_spec() {
  case $1 in
    W1) echo "100000 32 ordered 1 0" ;;
    W2) echo "5000 32 reliable 16 0" ;;
    W3) echo "2000 1200 reliable 1 0" ;;
    W4) echo "20000 32 ordered 1 0.05" ;;
    W5) echo "100000 32 unreliable 1 0" ;;
    W6) echo "200 65536 reliable 1 0" ;;
  esac
}

# Why an implementation does not run a workload (empty: it runs it).
skip_reason() {
  local impl=$1 wl=$2 rep=$3
  case $impl:$wl in
    udp:W5) ;;
    udp:*) echo "raw UDP has no reliability" ;;
    laminar:W6) echo "64 KiB is over laminar 0.5's fragment limit (16 x 1024 B)" ;;
    laminar:W4)
      case $LAMINAR_W4 in
        skip) echo "laminar stalls for good at the first loss (no timer resend; peers README)" ;;
        once) [ "$rep" = 1 ] || echo "once" ;;
      esac
      ;;
    legume-py:W1 | legume-py:W4) echo "ordered delivery is broken in legume 0.5 (peers README)" ;;
    legume-py:W2) echo "legume 0.5's server misroutes datagrams between clients (peers README)" ;;
    legume-py:W5) echo "legume 0.5's 16-bit message id does not wrap; sends fail past 65535 (peers README)" ;;
    legume-py:W6) echo "not part of the peers' bench" ;;
    legume-rs-secure:W4) echo "the token names the proxy's address, which the server refuses as another server's" ;;
  esac
}

run_one() {
  local impl=$1 wl=$2 rep=$3
  local messages size delivery clients loss
  read -r messages size delivery clients loss <<<"$(wl_spec "$wl")"
  local timeout=$TIMEOUT
  [ "$impl:$wl" = laminar:W4 ] && timeout=$LAMINAR_W4_TIMEOUT
  local args=(--bin "${BIN[$impl]}" --messages "$messages" --size "$size" --delivery "$delivery"
    --clients "$clients" --timeout "$timeout")
  [ "$loss" = 0 ] || args+=(--loss "$loss")
  local t0 t1 line rc=0
  t0=$(date +%s.%N)
  echo "== $impl $wl rep $rep: $PY $ECHO_RUN ${args[*]}" >>"$LOG"
  # echo_run.py bounds the client at timeout + 10 s; this outer bound only guards the runner.
  line=$(timeout --kill-after=5 $((timeout + 40)) "$PY" "$ECHO_RUN" "${args[@]}" 2>>"$LOG") || rc=$?
  t1=$(date +%s.%N)
  line=$(printf '%s\n' "$line" | tail -n 1)
  line=$(printf '%s\n' "$line" | "$PY" "$SUMMARIZE" tag impl="$impl" workload="$wl" rep="$rep" \
    expected=$((messages * clients)) delivery_requested="$delivery" clients_requested="$clients" \
    size_requested="$size" timeout="$timeout" runner_exit="$rc" \
    wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')")
  printf '%s\n' "$line" >>"$OUT"
  printf '%s\n' "$line" | "$PY" -c '
import json, sys
d = json.loads(sys.stdin.read())
print("[rep {rep}] {workload} {impl}: {e}/{x} echoed, {m:,.0f} msgs/s, {s} s, exit {c}".format(
    e=d.get("echoed", "?"), x=d["expected"], m=d.get("msgs_per_sec", 0.0),
    s=d.get("seconds", "?"), c=d.get("exit", d.get("runner_exit")), **d), file=sys.stderr)'
}

record_skip() {
  "$PY" -c 'import json, sys; print(json.dumps({"impl": sys.argv[1], "workload": sys.argv[2], "skipped": sys.argv[3]}))' \
    "$1" "$2" "$3" >>"$OUT"
  note "$2 $1: skipped ($3)"
}

# ---- runs: rep 1 of everything, then rep 2, ... ----------------------------------------------
note "results: $OUT"
for rep in $(seq 1 "$REPS"); do
  for wl in "${wls[@]}"; do
    for impl in "${impls[@]}"; do
      why=$(skip_reason "$impl" "$wl" "$rep")
      if [ "$why" = once ]; then continue; fi
      if [ -n "$why" ]; then
        [ "$rep" = 1 ] && record_skip "$impl" "$wl" "$why"
        continue
      fi
      run_one "$impl" "$wl" "$rep"
    done
  done
done

# ---- report ----------------------------------------------------------------------------------
echo "Echo comparison, $(date -u +%Y-%m-%d), $REPS interleaved rep(s), $(nproc) CPU(s), $(rustc --version 2>/dev/null || echo rustc ?)."
echo "Raw results: $OUT"
echo
"$PY" "$SUMMARIZE" table "$OUT"
