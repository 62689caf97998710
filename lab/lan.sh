#!/usr/bin/env bash
# The LAN lab: N network namespaces on one bridge, each a LAN host running `tern-node run --lan-only` from its
# own profile, with no route anywhere but the lab's LAN. Everything is torn down on exit, even on failure.
#
# Scenario (docs/testing.md):
#   1. the hosts find each other by mDNS (no --peer, no bootstrap) and exchange messages both ways, every
#      pair, each delivered exactly once;
#   2. host 2 is killed (SIGKILL) while host 1 writes to it; host 3 runs with --mailbox and holds the mail;
#   3. host 2 comes back and gets the message; host 1 sees it delivered.
#
# Usage (root, iproute2):  lab/lan.sh [--hosts N] [--keep]
#   TERN_NODE=path/to/tern-node   the binary (default: built with cargo into $CARGO_TARGET_DIR or target/)
#   --keep                        leave the work directory (profiles and logs) for inspection
set -euo pipefail

HOSTS=3
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --hosts) HOSTS="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    *) echo "usage: $0 [--hosts N] [--keep]" >&2; exit 2 ;;
  esac
done
[ "$HOSTS" -ge 3 ] && [ "$HOSTS" -le 50 ] || { echo "--hosts must be 3..50" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces)" >&2; exit 2; }
command -v ip >/dev/null || { echo "needs iproute2 (ip)" >&2; exit 2; }

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "${TERN_NODE:-}" ]; then
  (cd "$ROOT" && cargo build --quiet -p tern-node --bin tern-node)
  TERN_NODE="${CARGO_TARGET_DIR:-$ROOT/target}/debug/tern-node"
fi
[ -x "$TERN_NODE" ] || { echo "no tern-node binary at $TERN_NODE" >&2; exit 2; }

PREFIX="ternlab$$"          # unique per run, so two runs never share (or delete) each other's namespaces
SWITCH="${PREFIX}sw"
WORK="$(mktemp -d /tmp/tern-lan.XXXXXX)"
PASSWORD="lan-lab-password"
declare -A PGID=()

log() { printf '[lan %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

teardown() {
  local status=$?
  set +e
  for i in "${!PGID[@]}"; do
    kill -KILL -- "-${PGID[$i]}" 2>/dev/null
  done
  wait 2>/dev/null
  for i in $(seq 1 "$HOSTS"); do
    ip netns del "${PREFIX}h$i" 2>/dev/null
  done
  ip netns del "$SWITCH" 2>/dev/null
  if [ "$KEEP" -eq 1 ] || [ "$status" -ne 0 ]; then
    log "work directory kept: $WORK"
  else
    rm -rf "$WORK"
  fi
  [ "$status" -eq 0 ] && log "PASS" || log "FAIL (exit $status)"
  exit "$status"
}
trap teardown EXIT
trap 'exit 130' INT TERM

ns() { local i=$1; shift; ip netns exec "${PREFIX}h$i" "$@"; }

# --- The LAN: a bridge in its own namespace, one veth per host. ----------------------------------------------
log "creating $HOSTS hosts on one bridge"
ip netns add "$SWITCH"
ip -n "$SWITCH" link add br0 type bridge
ip -n "$SWITCH" link set br0 up
for i in $(seq 1 "$HOSTS"); do
  host="${PREFIX}h$i"
  ip netns add "$host"
  ip link add "tl$$h$i" type veth peer name eth0 netns "$host"
  ip link set "tl$$h$i" netns "$SWITCH"
  ip -n "$SWITCH" link set "tl$$h$i" master br0 up
  ip -n "$host" link set lo up
  ip -n "$host" addr add "10.77.0.$i/24" dev eth0
  ip -n "$host" link set eth0 multicast on up
  # mDNS needs a route for multicast; nothing else has one.
  ip -n "$host" route add 224.0.0.0/4 dev eth0
done
if ns 1 ip route get 1.1.1.1 >/dev/null 2>&1; then
  echo "host 1 has a route off the LAN" >&2; exit 1
fi
# Host 2 answers a TCP connection on a closed port with a reset ("refused"): the LAN carries traffic.
for try in $(seq 1 20); do
  probe=$(ns 1 timeout 2 bash -c 'exec 3<>/dev/tcp/10.77.0.2/9' 2>&1 || true)
  if grep -q refused <<<"$probe"; then break; fi
  [ "$try" -lt 20 ] || { echo "the LAN does not carry traffic" >&2; exit 1; }
  sleep 0.5
done

# --- Profiles: every host has every other as a contact. -------------------------------------------------------
tern() { local i=$1; shift; TERN_PASSWORD="$PASSWORD" "$TERN_NODE" --profile "$WORK/h$i" --json "$@"; }
declare -A INVITE=()
for i in $(seq 1 "$HOSTS"); do
  INVITE[$i]=$(tern "$i" init --name "Host$i" --kdf-memory-kib 32 --kdf-iterations 1 |
    sed -n 's/.*"invite": *"\([^"]*\)".*/\1/p')
  [ -n "${INVITE[$i]}" ] || { echo "no invite for host $i" >&2; exit 1; }
done
for i in $(seq 1 "$HOSTS"); do
  for j in $(seq 1 "$HOSTS"); do
    [ "$i" -eq "$j" ] || tern "$i" contact add "${INVITE[$j]}" >/dev/null
  done
done

# --- Running hosts: stdin from a command file, JSON events appended to a log. --------------------------------
start_host() {
  local i=$1; shift
  : > "$WORK/h$i.cmds"
  setsid bash -c 'tail -n +1 -f "$1" | exec ip netns exec "$2" env TERN_PASSWORD="$3" "$4" \
      --profile "$5" --json run --lan-only --listen /ip4/0.0.0.0/tcp/4001 "${@:7}" >>"$6.log" 2>>"$6.err"' \
    _ "$WORK/h$i.cmds" "${PREFIX}h$i" "$PASSWORD" "$TERN_NODE" "$WORK/h$i" "$WORK/h$i" "$@" &
  PGID[$i]=$!
}
stop_host() { kill -KILL -- "-${PGID[$1]}"; wait "${PGID[$1]}" 2>/dev/null || true; unset "PGID[$1]"; }
cmd() { printf '%s\n' "$2" >> "$WORK/h$1.cmds"; }
# Lines of a host's event log holding every one of the given strings (JSON keys come sorted, so match pieces).
lines_with() {
  local out
  out=$(cat "$WORK/h$1.log" 2>/dev/null || true); shift
  for piece in "$@"; do out=$(grep -F -- "$piece" <<<"$out" || true); done
  [ -n "$out" ] && printf '%s\n' "$out" || true
}
count() { lines_with "$@" | grep -c . || true; }
# wait_count HOST N SECONDS PIECE...: until at least N event lines hold every piece.
wait_count() {
  local host=$1 want=$2 deadline=$((SECONDS + $3)); shift 3
  until [ "$(count "$host" "$@")" -ge "$want" ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "host $host: timed out waiting for $want line(s) with: $*" >&2
      tail -n 20 "$WORK/h$host.log" "$WORK/h$host.err" >&2 || true
      return 1
    fi
    sleep 0.2
  done
}
wait_for() { local host=$1 secs=$2; shift 2; wait_count "$host" 1 "$secs" "$@"; }

start_host 1
start_host 2
start_host 3 --mailbox
for i in $(seq 4 "$HOSTS"); do start_host "$i"; done
for i in $(seq 1 "$HOSTS"); do wait_for "$i" 30 '"event":"started"'; done
log "waiting for mDNS: every host sees the other $((HOSTS - 1)) online"
for i in $(seq 1 "$HOSTS"); do
  for j in $(seq 1 "$HOSTS"); do
    [ "$i" -eq "$j" ] || wait_for "$i" 60 '"event":"online"' "\"contact\":\"Host$j\"" '"online":true'
  done
done

# --- 1. Both ways between every pair. -------------------------------------------------------------------------
sent=0
for i in $(seq 1 "$HOSTS"); do
  for j in $(seq 1 "$HOSTS"); do
    [ "$i" -eq "$j" ] && continue
    cmd "$i" "{\"cmd\":\"send\",\"to\":\"Host$j\",\"text\":\"lan $i to $j\"}"
    sent=$((sent + 1))
  done
done
for i in $(seq 1 "$HOSTS"); do
  for j in $(seq 1 "$HOSTS"); do
    [ "$i" -eq "$j" ] && continue
    wait_for "$j" 60 '"event":"message"' "\"text\":\"lan $i to $j\""
  done
  wait_count "$i" $((HOSTS - 1)) 60 '"event":"status"' '"status":"delivered"'
done
for i in $(seq 1 "$HOSTS"); do
  for j in $(seq 1 "$HOSTS"); do
    [ "$i" -eq "$j" ] && continue
    n=$(count "$j" '"event":"message"' "\"text\":\"lan $i to $j\"")
    [ "$n" -eq 1 ] || { echo "host $j got 'lan $i to $j' $n times" >&2; exit 1; }
  done
done
log "1. mDNS discovery and $sent messages both ways between every pair: each received once, each delivered"

# --- 2. Host 2 goes down while host 1 writes to it; host 3 (--mailbox) holds the mail. ------------------------
offline_before=$(count 1 '"event":"online"' '"contact":"Host2"' '"online":false')
stop_host 2
wait_count 1 $((offline_before + 1)) 30 '"event":"online"' '"contact":"Host2"' '"online":false'
sent_before=$(count 1 '"event":"status"' '"status":"sent"')
delivered_before=$(count 1 '"event":"status"' '"status":"delivered"')
cmd 1 '{"cmd":"send","to":"Host2","text":"written while you were down"}'
wait_count 1 $((sent_before + 1)) 60 '"event":"status"' '"status":"sent"'
log "2. host 2 killed (SIGKILL); host 1's message to it is held by host 3's LAN mailbox (status sent)"

# --- 3. Host 2 returns and gets it; host 1 learns it was delivered. -------------------------------------------
start_host 2
wait_for 2 90 '"event":"message"' '"text":"written while you were down"'
wait_count 1 $((delivered_before + 1)) 60 '"event":"status"' '"status":"delivered"'
n=$(count 2 '"event":"message"' '"text":"written while you were down"')
[ "$n" -eq 1 ] || { echo "host 2 got the held message $n times" >&2; exit 1; }
for i in $(seq 1 "$HOSTS"); do cmd "$i" '{"cmd":"quit"}'; done
log "3. host 2 came back and got the held message once; host 1 saw it delivered"
log "summary: hosts=$HOSTS messages=$((sent + 1)) received-once=$((sent + 1)) lost=0 duplicated=0"
