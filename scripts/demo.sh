#!/usr/bin/env bash
# `make demo`: the main job end to end against the bundled Mage emulator. It starts the emulator on a
# free loopback port, validates, plans and applies examples/backfills, shows that a second plan has
# nothing to do, and always stops the emulator by its process id.
set -euo pipefail
cd "$(dirname "$0")/.."

examples=examples/backfills
workdir=$(mktemp -d)
emulator_pid=
cleanup() {
  if [ -n "$emulator_pid" ]; then
    kill -TERM "$emulator_pid" 2>/dev/null || true
    wait "$emulator_pid" 2>/dev/null || true
  fi
  rm -rf "$workdir"
}
trap cleanup EXIT

pipeline_args=()
for manifest in "$examples"/*.yaml; do
  pipeline_args+=(--pipeline "$(basename "$manifest" .yaml)")
done

backfill-sync emulator --port 0 "${pipeline_args[@]}" >"$workdir/emulator.out" 2>"$workdir/emulator.err" &
emulator_pid=$!
for _ in $(seq 1 100); do
  url=$(head -n 1 "$workdir/emulator.out" 2>/dev/null || true)
  [ -n "$url" ] && break
  if ! kill -0 "$emulator_pid" 2>/dev/null; then
    echo "the emulator did not start:" >&2
    cat "$workdir/emulator.err" >&2
    exit 1
  fi
  sleep 0.1
done
[ -n "$url" ] || { echo "the emulator printed no URL within 10 s" >&2; exit 1; }

# The emulator behaves like Mage 0.9.80 out of the box: authentication on, default owner account.
export MAGE_URL="$url" MAGE_EMAIL=admin@admin.com MAGE_PASSWORD=admin
step() { if [ -t 1 ]; then printf '\n\033[1m$ %s\033[0m\n' "$*"; else printf '\n$ %s\n' "$*"; fi; }

step backfill-sync validate "$examples"
backfill-sync validate "$examples"
step backfill-sync plan "$examples"
backfill-sync plan "$examples"
step backfill-sync apply --auto-approve "$examples"
backfill-sync apply --auto-approve "$examples"
step backfill-sync plan --detailed-exitcode "$examples"
status=0
backfill-sync plan --detailed-exitcode "$examples" || status=$?
if [ "$status" -ne 0 ]; then
  echo "demo failed: the plan after apply should have nothing to do (exit $status)" >&2
  exit 1
fi
printf '\nDemo complete: Mage (emulated at %s) matches %s.\n' "$url" "$examples"
