#!/usr/bin/env bash
# Takes the README's screenshots from the real app in a real window under Xvfb:
# builds tern-gui-demo, writes a populated demo profile, opens the app on each screen, captures the
# screen with ImageMagick's `import`. Needs (Debian): xvfb libgl1-mesa-dri libegl1 libxkbcommon-x11-0
# imagemagick x11-utils. Usage: scripts/screenshots.sh [OUT_DIR] (default docs/screenshots).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/screenshots}
mkdir -p "$out"
work=$(mktemp -d)
display=:${TERN_SCREENSHOT_DISPLAY:-97}
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# TERN_SCREENSHOT_PROFILE=debug reuses a debug build (the pictures are the same).
# TERN_SCREENSHOT_BIN=path uses an already built tern-gui-demo.
profile=${TERN_SCREENSHOT_PROFILE:-release}
demo=${TERN_SCREENSHOT_BIN:-target/$profile/examples/tern-gui-demo}
if [ -z "${TERN_SCREENSHOT_BIN:-}" ]; then
  if [ "$profile" = release ]; then
    cargo build --release -p tern-gui --example tern-gui-demo
  else
    cargo build -p tern-gui --example tern-gui-demo
  fi
fi
"$demo" populate --root "$work/profiles"

Xvfb "$display" -screen 0 1100x720x24 -nolisten tcp &
pids+=($!)
for _ in $(seq 50); do
  xdpyinfo -display "$display" >/dev/null 2>&1 && break
  sleep 0.1 # Xvfb has no readiness signal to wait on; poll until it answers.
done

for view in conversation verify settings; do
  for theme in dark light; do
    flag=""
    [ "$theme" = light ] && flag="--light"
    log="$work/$view-$theme.log"
    : >"$log"
    # shellcheck disable=SC2086
    DISPLAY=$display LIBGL_ALWAYS_SOFTWARE=1 "$demo" show --root "$work/profiles" --view "$view" $flag >"$log" 2>&1 &
    pid=$!
    # The demo prints "ready" once the screen has been drawn for 30 frames.
    timeout 120 bash -c "until grep -q '^ready' '$log'; do sleep 0.2; done" || {
      cat "$log"
      exit 1
    }
    DISPLAY=$display import -window root "$out/$view-$theme.png"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    echo "wrote $out/$view-$theme.png"
  done
done
