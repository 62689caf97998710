#!/usr/bin/env bash
# The internet lab: contacts who share only a community bootstrap node, some behind home NAT routers, on a
# "public" network of network namespaces that routes nowhere else. Everything is torn down on exit.
#
#                        b1 11.0.1.2   b2 11.0.2.2   (tern-bootstrap, federated; TCP 4001)
#                               \         /
#   p1 11.2.1.2 ---------------  inet router  --------------- p2 11.2.2.2   (public users)
#                          /      |      |      \
#   router rN, WAN 11.1.N.2 (N = 1..6), each a home: LAN 192.168.1.0/24, the user at 192.168.1.2
#     homes 1, 2, 5: endpoint-independent NAT (MASQUERADE: one mapping per local address and port)
#     homes 3, 4, 6: symmetric NAT (MASQUERADE --random-fully: a different port for every connection)
#
# Addresses are internet-like (11.0.0.0/8): AutoNAT ignores private and documentation ranges, so a lab on
# 203.0.113.0/24 never sees a NAT. No namespace has a link to the host, so nothing can route out of the lab;
# a check refuses to run if one can. Every home uses the same LAN addresses, as real homes do.
#
# Pairs of contacts (fresh profiles and bootstrap nodes every round; no --peer, no mDNS, only --bootstrap b1 b2):
#   public: p1-p2   eim: u1-u2 (both endpoint-independent)   symmetric: u3-u4   mixed: u5 (EIM) - u6 (symmetric)
#
# A round: all eight users start together; for WAIT seconds nobody sends (presence must come without
# traffic); then each pair's first user sends MESSAGES messages one at a time (each waits for the other to
# receive it), then a typing notice. Observed from the outside: `tern-node --json run` events (timestamped
# as they are printed) and the users' TCP connections (`ss`): a direct connection is one to the other home's
# public address, a relayed one is "online" with no direct connection. Users listen on TCP only, so `ss` sees
# every path.
#
# Baseline, in the same run: each pair again, with a port forward on each home router and the second user
# started with --peer at the first's forwarded public address (no bootstrap): known addresses, dialled.
#
# Usage (root, iproute2, iptables):  lab/internet.sh [--rounds N] [--messages N] [--wait SECS] [--results FILE] [--keep]
#   TERN_NODE=path/to/tern-node, TERN_BOOTSTRAP=path/to/tern-bootstrap   (default: built with cargo, debug)
#   --results FILE   machine-readable lines for tern-bench (`pair`, `msg`, `base`, `basemsg`; see below)
set -euo pipefail

ROUNDS=3
MESSAGES=10
WAIT=40
RESULTS=""
KEEP=0
usage() { echo "usage: $0 [--rounds N] [--messages N] [--wait SECS] [--results FILE] [--keep]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    --messages) MESSAGES="$2"; shift 2 ;;
    --wait) WAIT="$2"; shift 2 ;;
    --results) RESULTS="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    *) usage ;;
  esac
done
for v in "$ROUNDS" "$MESSAGES" "$WAIT"; do [[ "$v" =~ ^[0-9]+$ ]] || usage; done
[ "$ROUNDS" -ge 1 ] && [ "$ROUNDS" -le 50 ] || { echo "--rounds must be 1..50" >&2; exit 2; }
[ "$MESSAGES" -ge 1 ] && [ "$MESSAGES" -le 1000 ] || { echo "--messages must be 1..1000" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces, iptables)" >&2; exit 2; }
for tool in ip iptables ss awk; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install iproute2 iptables)" >&2; exit 2; }
done

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "${TERN_NODE:-}" ] || [ -z "${TERN_BOOTSTRAP:-}" ]; then
  (cd "$ROOT" && cargo build --quiet --workspace --bin tern-node --bin tern-bootstrap)
  TERN_NODE="${TERN_NODE:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/tern-node}"
  TERN_BOOTSTRAP="${TERN_BOOTSTRAP:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/tern-bootstrap}"
fi
[ -x "$TERN_NODE" ] || { echo "no tern-node binary at $TERN_NODE" >&2; exit 2; }
[ -x "$TERN_BOOTSTRAP" ] || { echo "no tern-bootstrap binary at $TERN_BOOTSTRAP" >&2; exit 2; }

P="ti$$"                    # namespace prefix, unique per run
WORK="$(mktemp -d /tmp/tern-internet.XXXXXX)"
PASSWORD="internet-lab-password"
PORT=4001
HOMES=6
declare -A NAT=([1]=eim [2]=eim [3]=symmetric [4]=symmetric [5]=eim [6]=symmetric)
PAIRS=("public p1 p2" "eim u1 u2" "symmetric u3 u4" "mixed u5 u6")
declare -A PGID=() FD=() PUB=() PEER=() STARTED=() SEEN=() AT_WAIT=()
NAMESPACES=()
POLLER=""

log() { printf '[internet %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

teardown() {
  local status=$?
  set +e
  [ -n "$POLLER" ] && kill "$POLLER" 2>/dev/null
  for u in "${!FD[@]}"; do exec {FD[$u]}>&- 2>/dev/null; done
  for k in "${!PGID[@]}"; do kill -KILL -- "-${PGID[$k]}" 2>/dev/null; done
  wait 2>/dev/null
  for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null; done
  if [ "$KEEP" -eq 1 ] || [ "$status" -ne 0 ]; then
    log "work directory kept: $WORK"
  else
    rm -rf "$WORK"
  fi
  [ "$status" -eq 0 ] && log "done" || log "FAILED (exit $status)"
  exit "$status"
}
trap teardown EXIT
trap 'exit 130' INT TERM
trap '' PIPE   # a user that died makes its command writes fail, not the script

in_ns() { local ns=$1; shift; ip netns exec "$P$ns" "$@"; }
new_ns() { ip netns add "$P$1"; NAMESPACES+=("$P$1"); ip -n "$P$1" link set lo up; }
# link NS_A IF_A CIDR_A NS_B IF_B CIDR_B: a veth between two namespaces.
link() {
  ip link add "$2" netns "$P$1" type veth peer name "$5" netns "$P$4"
  ip -n "$P$1" addr add "$3" dev "$2"; ip -n "$P$1" link set "$2" up
  ip -n "$P$4" addr add "$6" dev "$5"; ip -n "$P$4" link set "$5" up
}
now() { printf '%s' "$EPOCHREALTIME"; }
# Seconds from $1 to $2 (both epoch seconds with decimals), 3 decimals; "-" if either is missing.
since() { if [ -z "$1" ] || [ -z "$2" ]; then printf '%s' -; else awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b - a}'; fi; }

# --- The network ----------------------------------------------------------------------------------------------
log "building the lab: the public network, 2 bootstrap nodes, 2 public users, $HOMES homes behind NAT"
new_ns inet
in_ns inet sysctl -qw net.ipv4.ip_forward=1
for b in 1 2; do
  new_ns "b$b"
  link inet "ib$b" "11.0.$b.1/24" "b$b" eth0 "11.0.$b.2/24"
  ip -n "${P}b$b" route add default via "11.0.$b.1"
done
for p in 1 2; do
  new_ns "p$p"
  link inet "ip$p" "11.2.$p.1/24" "p$p" eth0 "11.2.$p.2/24"
  ip -n "${P}p$p" route add default via "11.2.$p.1"
  PUB[p$p]="11.2.$p.2"
done
for h in $(seq 1 "$HOMES"); do
  new_ns "r$h"; new_ns "u$h"
  link inet "ir$h" "11.1.$h.1/24" "r$h" wan "11.1.$h.2/24"
  link "r$h" lan 192.168.1.1/24 "u$h" eth0 192.168.1.2/24
  ip -n "${P}r$h" route add default via "11.1.$h.1"
  ip -n "${P}u$h" route add default via 192.168.1.1
  in_ns "r$h" sysctl -qw net.ipv4.ip_forward=1
  if [ "${NAT[$h]}" = symmetric ]; then
    in_ns "r$h" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE --random-fully
  else
    in_ns "r$h" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE
  fi
  # A home router answers nothing unasked: unsolicited packets from outside are dropped, not reset.
  in_ns "r$h" iptables -A INPUT -i wan -m conntrack --ctstate NEW,INVALID -j DROP
  in_ns "r$h" iptables -A FORWARD -i wan -m conntrack --ctstate NEW,INVALID -j DROP
  PUB[u$h]="11.1.$h.2"
done
# Nothing leaves the lab: every default route ends at the inet router, which has none (and no namespace has a
# link to the host), so an address outside 11.0.0.0/8 is unreachable.
if in_ns inet ip route get 1.1.1.1 >/dev/null 2>&1; then echo "the public network routes out of the lab" >&2; exit 1; fi
# The public network carries traffic: a home user reaches a public user (refused: nothing listens yet).
probe=$(in_ns u1 timeout 3 bash -c 'exec 3<>/dev/tcp/11.2.1.2/9' 2>&1 || true)
grep -q refused <<<"$probe" || { echo "the lab does not carry traffic: $probe" >&2; exit 1; }

# --- Bootstrap nodes ------------------------------------------------------------------------------------------
start_bg() { # start_bg KEY COMMAND...: in its own process group, stdout timestamped into $WORK/KEY.log
  local key=$1; shift
  setsid bash -c '"${@:2}" 2>>"$1.err" | while IFS= read -r l; do printf "%s %s\n" "$EPOCHREALTIME" "$l"; done >>"$1.log"' \
    _ "$WORK/$key" "$@" &
  PGID[$key]=$!
}
stop_bg() { kill -KILL -- "-${PGID[$1]}" 2>/dev/null || true; wait "${PGID[$1]}" 2>/dev/null || true; unset "PGID[$1]"; }
# wait_line KEY SECONDS PIECE...: the first log line holding every piece (printed); fails after SECONDS.
first_line() {
  local out; out=$(cat "$WORK/$1.log" 2>/dev/null || true); shift
  for piece in "$@"; do out=$(grep -F -- "$piece" <<<"$out" || true); done
  head -n 1 <<<"$out"
}
wait_line() {
  local key=$1 deadline; deadline=$(awk -v s="$SECONDS" -v w="$2" 'BEGIN{print s + w}'); shift 2
  local line
  while :; do
    line=$(first_line "$key" "$@")
    [ -n "$line" ] && { printf '%s\n' "$line"; return 0; }
    [ "$SECONDS" -ge "${deadline%.*}" ] && return 1
    sleep 0.05
  done
}
ts_of() { cut -d' ' -f1 <<<"$1"; }

# start_bootstraps ROUND: two fresh federated nodes (new keys, empty DHT and mailboxes), so rounds are
# independent: a DHT that remembers the last round's users at the same addresses would change the next.
BOOT=()
start_bootstraps() {
  local r=$1 b key line
  BOOT=()
  for b in 1 2; do
    key="r$r-b$b"
    mkdir -p "$WORK/$key"
    {
      printf 'data_dir = "%s"\nlisten = ["/ip4/0.0.0.0/tcp/%s"]\n' "$WORK/$key/data" "$PORT"
      printf 'external_addresses = ["/ip4/11.0.%s.2/tcp/%s"]\n' "$b" "$PORT"
      [ "$b" -eq 2 ] && printf 'peers = ["%s"]\n' "${BOOT[0]}"
    } > "$WORK/$key/bootstrap.toml"
    start_bg "$key" ip netns exec "${P}b$b" "$TERN_BOOTSTRAP" --config "$WORK/$key/bootstrap.toml"
    line=$(wait_line "$key" 30 "listening /ip4/11.0.$b.2/") || { echo "bootstrap $b did not start" >&2; cat "$WORK/$key.err" >&2; exit 1; }
    BOOT+=("$(cut -d' ' -f3 <<<"$line")")
  done
}

# --- Users ----------------------------------------------------------------------------------------------------
tern() { local dir=$1; shift; TERN_PASSWORD="$PASSWORD" "$TERN_NODE" --profile "$dir" --json "$@"; }
# make_pair ROUND A B: fresh profiles named after their hosts, each the other's contact.
make_pair() {
  local r=$1 a=$2 b=$3 out
  declare -A inv=()
  for u in "$a" "$b"; do
    out=$(tern "$WORK/r$r/$u" init --name "$u" --kdf-memory-kib 32 --kdf-iterations 1)
    inv[$u]=$(sed -n 's/.*"invite": *"\([^"]*\)".*/\1/p' <<<"$out")
    PEER[$u]=$(sed -n 's/.*"peer_id": *"\([^"]*\)".*/\1/p' <<<"$out")
  done
  tern "$WORK/r$r/$a" contact add "${inv[$b]}" >/dev/null
  tern "$WORK/r$r/$b" contact add "${inv[$a]}" >/dev/null
}
# start_user ROUND USER ARGS...: `tern-node run` in the user's namespace, commands through a FIFO.
start_user() {
  local r=$1 u=$2; shift 2
  local key="r$r-$u"
  mkfifo "$WORK/$key.in"
  setsid bash -c 'ip netns exec "$2" env TERN_PASSWORD="$3" "$4" --profile "$5" --json run --no-mdns \
      --listen "/ip4/0.0.0.0/tcp/$6" "${@:7}" <"$1.in" 2>>"$1.err" |
      while IFS= read -r l; do printf "%s %s\n" "$EPOCHREALTIME" "$l"; done >>"$1.log"' \
    _ "$WORK/$key" "$P$u" "$PASSWORD" "$TERN_NODE" "$WORK/r$r/$u" "$PORT" "$@" &
  PGID[$key]=$!
  exec {fd}>"$WORK/$key.in"
  FD[$key]=$fd
}
stop_user() {
  local key="r$1-$2"
  if [ -n "${FD[$key]:-}" ]; then exec {FD[$key]}>&-; unset "FD[$key]"; fi
  stop_bg "$key"
}
cmd() { printf '%s\n' "$2" >&"${FD[$1]}" 2>/dev/null || echo "cannot write to $1 (did it stop?)" >&2; }
# Is USER's TCP connection to OTHER's public address (a direct path) established?
direct() { [ -n "$(in_ns "$1" ss -Htn state established dst "${PUB[$2]}" 2>/dev/null)" ]; }
# Does the last `online` event USER printed about OTHER say online?
online() {
  local last
  last=$(grep -F '"event":"online"' "$WORK/$1.log" 2>/dev/null | grep -F "\"contact\":\"$2\"" | tail -n 1 || true)
  grep -q '"online":true' <<<"$last"
}
path_of() { # path_of KEY_A A B: direct | relayed | none
  if direct "$2" "$3"; then echo direct; elif online "$1" "$3"; then echo relayed; else echo none; fi
}
result() { printf '%s\n' "$*" >> "$WORK/results"; }
: > "$WORK/results"

# poll_direct ROUND: writes $WORK/rROUND-KIND.direct with the time each pair first has a direct connection.
poll_direct() {
  local r=$1 kind a b
  while :; do
    for pair in "${PAIRS[@]}"; do
      read -r kind a b <<<"$pair"
      [ -e "$WORK/r$r-$kind.direct" ] && continue
      if direct "$a" "$b" || direct "$b" "$a"; then now > "$WORK/r$r-$kind.direct"; fi
    done
    sleep 0.2
  done
}

# send_messages KEY_A KEY_B A B LABEL COUNT OUTFILE: one at a time, each awaited; lines "<path> <ms|lost>".
send_messages() {
  local ka=$1 kb=$2 a=$3 b=$4 label=$5 n=$6 outfile=$7 m t0 line path
  for m in $(seq 1 "$n"); do
    path=$(path_of "$ka" "$a" "$b")
    t0=$(now)
    cmd "$ka" "{\"cmd\":\"send\",\"to\":\"$b\",\"text\":\"$label $m\"}"
    if line=$(wait_line "$kb" 30 '"event":"message"' "\"text\":\"$label $m\""); then
      printf '%s %s\n' "$path" "$(awk -v a="$t0" -v b="$(ts_of "$line")" 'BEGIN{printf "%.2f", (b - a) * 1000}')" >> "$outfile"
    else
      printf '%s lost\n' "$path" >> "$outfile"
    fi
  done
}

for r in $(seq 1 "$ROUNDS"); do
  log "round $r of $ROUNDS: fresh bootstrap nodes and profiles, all users start together"
  mkdir -p "$WORK/r$r"
  start_bootstraps "$r"
  for pair in "${PAIRS[@]}"; do read -r kind a b <<<"$pair"; make_pair "$r" "$a" "$b"; done
  boot_args=(--bootstrap "${BOOT[0]}" --bootstrap "${BOOT[1]}")
  for pair in "${PAIRS[@]}"; do
    read -r kind a b <<<"$pair"
    start_user "$r" "$a" "${boot_args[@]}"
    start_user "$r" "$b" "${boot_args[@]}"
  done
  poll_direct "$r" & POLLER=$!
  STARTED=() SEEN=() AT_WAIT=()
  for pair in "${PAIRS[@]}"; do
    read -r kind a b <<<"$pair"
    for u in "$a" "$b"; do
      line=$(wait_line "r$r-$u" 30 '"event":"started"') || { echo "user $u did not start" >&2; tail "$WORK/r$r-$u.err" >&2; exit 1; }
      STARTED[$u]=$(ts_of "$line")
    done
  done
  log "round $r: all online; nobody sends for ${WAIT}s (presence and paths must come without traffic)"
  sleep "$WAIT"
  for pair in "${PAIRS[@]}"; do
    read -r kind a b <<<"$pair"
    AT_WAIT[$kind]=$(path_of "r$r-$a" "$a" "$b")
  done
  log "round $r: sending $MESSAGES messages per pair, then a typing notice"
  senders=()
  for pair in "${PAIRS[@]}"; do
    read -r kind a b <<<"$pair"
    send_messages "r$r-$a" "r$r-$b" "$a" "$b" "lab r$r $kind" "$MESSAGES" "$WORK/r$r-$kind.msgs" &
    senders+=($!)
  done
  for pid in "${senders[@]}"; do wait "$pid" || true; done
  for pair in "${PAIRS[@]}"; do
    read -r kind a b <<<"$pair"
    cmd "r$r-$a" "{\"cmd\":\"typing\",\"contact\":\"$b\",\"typing\":true}"
  done
  for pair in "${PAIRS[@]}"; do
    read -r kind a b <<<"$pair"
    later=$(printf '%s\n%s\n' "${STARTED[$a]}" "${STARTED[$b]}" | sort -g | tail -n 1)
    typing=no
    wait_line "r$r-$b" 5 '"event":"typing"' "\"contact\":\"$a\"" '"typing":true' >/dev/null && typing=yes
    first=""
    for pov in "$a $b" "$b $a"; do
      read -r x y <<<"$pov"
      line=$(first_line "r$r-$x" '"event":"online"' "\"contact\":\"$y\"" '"online":true')
      t=$(ts_of "$line")
      SEEN[$x]=$(since "$later" "$t")
      if [ -n "$t" ] && { [ -z "$first" ] || awk -v a="$t" -v b="$first" 'BEGIN{exit !(a < b)}'; }; then first=$t; fi
    done
    direct_at=$(cat "$WORK/r$r-$kind.direct" 2>/dev/null || true)
    final=$(path_of "r$r-$a" "$a" "$b")
    # pair KIND ROUND FIRST_CONNECTION_S DIRECT_S PATH_AFTER_WAIT PATH_AT_END A_SAW_B_ONLINE_S B_SAW_A_ONLINE_S TYPING
    result pair "$kind" "$r" "$(since "$later" "$first")" "$(since "$later" "$direct_at")" \
      "${AT_WAIT[$kind]}" "$final" "${SEEN[$a]}" "${SEEN[$b]}" "$typing"
    while read -r path ms; do result msg "$kind" "$r" "$path" "$ms"; done < "$WORK/r$r-$kind.msgs"
  done
  kill "$POLLER" 2>/dev/null || true; wait "$POLLER" 2>/dev/null || true; POLLER=""
  for pair in "${PAIRS[@]}"; do read -r kind a b <<<"$pair"; stop_user "$r" "$a"; stop_user "$r" "$b"; done
  stop_bg "r$r-b1"; stop_bg "r$r-b2"
  grep "^pair [a-z]* $r " "$WORK/results" | while read -r _ kind _ first direct wait end sa sb typing; do
    log "  $kind: first connection ${first}s, direct ${direct}s, after wait: $wait, at end: $end, presence ${sa}s/${sb}s, typing $typing"
  done
done

# --- Baseline: the same hosts dialling each other's known (forwarded) addresses -------------------------------
log "baseline: port forwards on the home routers; the second user of each pair dials the first's address"
for h in $(seq 1 "$HOMES"); do
  in_ns "r$h" iptables -t nat -A PREROUTING -i wan -p tcp --dport "$PORT" -j DNAT --to-destination "192.168.1.2:$PORT"
  in_ns "r$h" iptables -I FORWARD 1 -i wan -p tcp -d 192.168.1.2 --dport "$PORT" -j ACCEPT
done
mkdir -p "$WORK/rbase"
for pair in "${PAIRS[@]}"; do read -r kind a b <<<"$pair"; make_pair base "$a" "$b"; done
for pair in "${PAIRS[@]}"; do
  read -r kind a b <<<"$pair"
  start_user base "$a"
  line=$(wait_line "rbase-$a" 30 '"event":"started"') || { echo "baseline user $a did not start" >&2; exit 1; }
  start_user base "$b" --peer "/ip4/${PUB[$a]}/tcp/$PORT/p2p/${PEER[$a]}"
done
for pair in "${PAIRS[@]}"; do
  read -r kind a b <<<"$pair"
  line=$(wait_line "rbase-$b" 30 '"event":"started"') || { echo "baseline user $b did not start" >&2; exit 1; }
  t_start=$(ts_of "$line")
  if line=$(wait_line "rbase-$b" 30 '"event":"online"' "\"contact\":\"$a\"" '"online":true'); then
    result base "$kind" "$(since "$t_start" "$(ts_of "$line")")"
  else
    result base "$kind" -
  fi
done
senders=()
for pair in "${PAIRS[@]}"; do
  read -r kind a b <<<"$pair"
  send_messages "rbase-$b" "rbase-$a" "$b" "$a" "lab base $kind" "$MESSAGES" "$WORK/base-$kind.msgs" &
  senders+=($!)
done
for pid in "${senders[@]}"; do wait "$pid" || true; done
for pair in "${PAIRS[@]}"; do
  read -r kind a b <<<"$pair"
  while read -r path ms; do result basemsg "$kind" "$path" "$ms"; done < "$WORK/base-$kind.msgs"
  stop_user base "$a"; stop_user base "$b"
done

# --- Summary --------------------------------------------------------------------------------------------------
# stats: median and p99 (nearest rank, as tern-bench) of the numbers on stdin, or "-".
stats() { sort -g | awk '{v[NR]=$1} END{if(NR==0){print "- -"; exit} m=int((NR-1)*0.5+0.5)+1; p=int((NR-1)*0.99+0.5)+1; print v[m], v[p]}'; }
R="$WORK/results"
log "summary over $ROUNDS round(s), $MESSAGES messages per pair per round (times in s from the later start; latency in ms)"
count_where() { awk -v k="$1" "\$1==\"pair\" && \$2==k && ($2)" "$R" | grep -c . || true; }
printf '%-10s %9s %9s %10s %14s %14s %7s %11s %9s\n' pair first-med direct-med 'direct<=10s' \
  'after-wait:d/r/n' 'at-end:d/r/n' typing 'presence<=5s' base-conn
for pair in "${PAIRS[@]}"; do
  read -r kind a b <<<"$pair"
  first=$(awk -v k="$kind" '$1=="pair" && $2==k && $4!="-" {print $4}' "$R" | stats | cut -d' ' -f1)
  dmed=$(awk -v k="$kind" '$1=="pair" && $2==k && $5!="-" {print $5}' "$R" | stats | cut -d' ' -f1)
  fast=$(count_where "$kind" '$5!="-" && $5<=10')
  wait_d=$(count_where "$kind" '$6=="direct"'); wait_r=$(count_where "$kind" '$6=="relayed"'); wait_n=$(count_where "$kind" '$6=="none"')
  end_d=$(count_where "$kind" '$7=="direct"'); end_r=$(count_where "$kind" '$7=="relayed"'); end_n=$(count_where "$kind" '$7=="none"')
  typing=$(count_where "$kind" '$10=="yes"')
  presence=$(count_where "$kind" '$8!="-" && $9!="-" && $8<=5 && $9<=5')
  base=$(awk -v k="$kind" '$1=="base" && $2==k {print $3}' "$R")
  printf '%-10s %9s %9s %10s %14s %14s %7s %11s %9s\n' "$kind" "$first" "$dmed" "$fast/$ROUNDS" \
    "$wait_d/$wait_r/$wait_n" "$end_d/$end_r/$end_n" "$typing/$ROUNDS" "$presence/$ROUNDS" "$base"
done
printf '%-10s %-8s %6s %10s %10s\n' pair path count median-ms p99-ms
for pair in "${PAIRS[@]}"; do
  read -r kind a b <<<"$pair"
  for path in direct relayed none; do
    n=$(awk -v k="$kind" -v p="$path" '$1=="msg" && $2==k && $4==p && $5!="lost"' "$R" | grep -c . || true)
    [ "$n" -gt 0 ] || continue
    read -r med p99 < <(awk -v k="$kind" -v p="$path" '$1=="msg" && $2==k && $4==p && $5!="lost" {print $5}' "$R" | stats)
    printf '%-10s %-8s %6s %10s %10s\n' "$kind" "$path" "$n" "$med" "$p99"
  done
  read -r med p99 < <(awk -v k="$kind" '$1=="basemsg" && $2==k && $4!="lost" {print $4}' "$R" | stats)
  printf '%-10s %-8s %6s %10s %10s\n' "$kind" baseline "$MESSAGES" "$med" "$p99"
done
lost=$(awk '($1=="msg" && $5=="lost") || ($1=="basemsg" && $4=="lost")' "$R" | grep -c . || true)
log "messages not received within 30 s: $lost"
[ -n "$RESULTS" ] && cp "$R" "$RESULTS"
exit 0
