#!/usr/bin/env bash
# Shows that the Debian packages install on a clean Debian and start there: builds both packages with
# cargo-deb, makes a minimal Debian with debootstrap, installs each package in it with apt (which pulls in
# what the package names, nothing else), then starts the installed programs inside it:
# - the app, on an Xvfb display of this machine, until its window is mapped; a screenshot of it is saved;
# - the community node with the configuration the package installed, until it answers on its metrics port.
# The systemd unit is checked with `systemd-analyze verify` (a chroot runs no systemd).
#
# Needs root, Debian's mirror, debootstrap, Xvfb, x11-utils and ImageMagick on this machine, and cargo-deb
# (`cargo install cargo-deb --locked`).
# Usage: sudo scripts/debian-install-check.sh [ROOT_DIR] [SCREENSHOT] (defaults: a new temporary folder;
# target/debian/installed-app.png). SUITE=bookworm picks the Debian release. TERN_DEB_REUSE=1 keeps the
# packages already built in target/debian.
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-$(mktemp -d /tmp/tern-debian.XXXXXX)}
target=${CARGO_TARGET_DIR:-target}
shot=${2:-$target/debian/installed-app.png}
suite=${SUITE:-bookworm}
display=:${TERN_CHECK_DISPLAY:-94}
mirror=http://deb.debian.org/debian
pids=()
mounted=()

cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT

in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

step() { printf '\n== %s\n' "$*"; }

if [ "${TERN_DEB_REUSE:-0}" != 1 ]; then
  step "building the packages"
  cargo deb -p tern-gui
  cargo deb -p tern-bootstrap
fi
app_deb=$(ls -t "$target"/debian/tern_*_amd64.deb | head -n 1)
node_deb=$(ls -t "$target"/debian/tern-bootstrap_*_amd64.deb | head -n 1)
echo "app: $app_deb"
echo "node: $node_deb"

if [ ! -x "$root/usr/bin/apt-get" ]; then
  step "making a clean Debian ($suite, minbase) in $root"
  debootstrap --variant=minbase "$suite" "$root" "$mirror"
fi
for fs in proc sys dev; do
  mkdir -p "$root/$fs"
  mount --rbind "/$fs" "$root/$fs"
  mounted+=("$root/$fs")
done
mkdir -p "$root/tmp/.X11-unix"
mount --bind /tmp/.X11-unix "$root/tmp/.X11-unix"
mounted+=("$root/tmp/.X11-unix")
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp "$app_deb" "$node_deb" "$root/tmp/"

step "installing the packages with apt"
in_root apt-get update -q
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "/tmp/$(basename "$app_deb")"
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "/tmp/$(basename "$node_deb")"
in_root dpkg -s tern tern-bootstrap | grep -E '^(Package|Status|Version):'
in_root desktop-file-validate /usr/share/applications/org.tern.Tern.desktop 2>/dev/null ||
  echo "(desktop-file-utils is not in the clean system; the entry is validated in CI)"

step "starting the installed app on display $display"
Xvfb "$display" -screen 0 1100x720x24 -nolisten tcp &
pids+=($!)
for _ in $(seq 50); do
  xdpyinfo -display "$display" >/dev/null 2>&1 && break
  sleep 0.1 # Xvfb has no readiness signal to wait on; poll until it answers.
done
profiles=$(in_root mktemp -d)
in_root env DISPLAY="$display" LIBGL_ALWAYS_SOFTWARE=1 HOME=/root tern-gui --profiles "$profiles" \
  >"$root/tmp/tern-gui.log" 2>&1 &
pids+=($!)
app=$!
# The app prints nothing when its window is up; poll the X server's window tree for it.
if ! timeout 60 bash -c "until xwininfo -display '$display' -root -tree 2>/dev/null | grep -q '\"Tern'; do
  kill -0 $app 2>/dev/null || exit 1; sleep 0.2; done"; then
  echo "the installed app showed no window:"
  cat "$root/tmp/tern-gui.log"
  exit 1
fi
sleep 2 # let it draw a few frames before the picture; the window is already there, this is only for the eye
mkdir -p "$(dirname "$shot")"
import -display "$display" -window root "$shot"
echo "the installed app's window is up; screenshot: $shot"
xwininfo -display "$display" -root -tree | grep '"Tern' | head -n 1

step "starting the installed community node"
# As its unit starts it (ExecStart), with metrics on and listening on loopback only.
metrics=127.0.0.1:${TERN_CHECK_METRICS_PORT:-9465}
in_root bash -c "mkdir -p /var/lib/tern-bootstrap && exec tern-bootstrap --config /etc/tern-bootstrap/bootstrap.toml \
  --data-dir /var/lib/tern-bootstrap --listen /ip4/127.0.0.1/tcp/0 --metrics $metrics" \
  >"$root/tmp/tern-bootstrap.log" 2>&1 &
pids+=($!)
node=$!
if ! timeout 60 bash -c "until curl -sf 'http://$metrics/metrics' >/dev/null; do
  kill -0 $node 2>/dev/null || exit 1; sleep 0.2; done"; then
  echo "the installed community node did not answer on $metrics:"
  cat "$root/tmp/tern-bootstrap.log"
  exit 1
fi
grep -m 1 listening "$root/tmp/tern-bootstrap.log" || true
echo "the installed community node answers on http://$metrics/metrics"

step "checking the systemd unit"
unit=$(in_root dpkg -L tern-bootstrap | grep '\.service$' | head -n 1)
echo "unit: $unit"
if in_root sh -c 'command -v systemd-analyze' >/dev/null; then
  in_root systemd-analyze verify "$unit"
  echo "systemd-analyze verify: no complaint"
else
  echo "(systemd is not in the clean system; the unit file is installed but not verified here)"
fi
echo
echo "ok: both packages installed on a clean $suite and started"
