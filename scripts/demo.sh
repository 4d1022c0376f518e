#!/usr/bin/env bash
# `make demo`: the main job end to end against the bundled Mage emulator. It starts the emulator on a
# free loopback port, validates, plans and applies examples/backfills and waits for their runs, shows
# that a second plan has nothing to do; then lets two dates fail, names them, and retries exactly those.
# It always stops the emulator by its process id.
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
step backfill-sync apply --auto-approve --wait "$examples"
backfill-sync apply --auto-approve --wait "$examples"
step backfill-sync plan --detailed-exitcode "$examples"
status=0
backfill-sync plan --detailed-exitcode "$examples" || status=$?
if [ "$status" -ne 0 ]; then
  echo "demo failed: the plan after apply should have nothing to do (exit $status)" >&2
  exit 1
fi

# Act two: the window gains two days, the pipeline fails on one of them, the failure is fixed and
# exactly that date is retried. The emulator's control endpoint plays the broken upstream.
say() { printf '\n# %s\n' "$*"; }
control() { python3 -c 'import sys, urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), method="POST"), timeout=10).read()' "$url/_emulator/$1" "$2"; }
cp -r "$examples" "$workdir/backfills"
manifest="$workdir/backfills/daily_sales.yaml"
sed -i "s/end_datetime: '2024-03-31T00:00:00Z'/end_datetime: '2024-04-02T00:00:00Z'/" "$manifest"
control runs/outcomes '{"pipeline_uuid": "daily_sales", "fail_dates": ["2024-04-02"]}'
say "reload-eu-2024-q1 now ends on 2024-04-02 instead of 2024-03-31; upstream data for 2024-04-02 is broken"
step backfill-sync plan "$workdir/backfills"
backfill-sync plan "$workdir/backfills"
step backfill-sync apply --auto-approve --wait "$workdir/backfills"
status=0
backfill-sync apply --auto-approve --wait "$workdir/backfills" || status=$?
if [ "$status" -ne 1 ]; then
  echo "demo failed: apply --wait should have reported the failed date with exit 1 (exit $status)" >&2
  exit 1
fi
control runs/outcomes '{"pipeline_uuid": "daily_sales", "fail_dates": []}'
now=$(python3 -c 'import datetime; print(datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))')
sleep 1  # run times have whole seconds: the instant must come after the failure's second
sed -i "s/retry_failed_before: '2024-07-01T00:00:00Z'/retry_failed_before: '$now'/" "$manifest"
say "upstream fixed; a pull request sets retry_failed_before to now ($now)"
step backfill-sync plan "$workdir/backfills"
backfill-sync plan "$workdir/backfills"
step backfill-sync apply --auto-approve --wait "$workdir/backfills"
backfill-sync apply --auto-approve --wait "$workdir/backfills"
step backfill-sync status "$workdir/backfills"
backfill-sync status "$workdir/backfills"
status=0
backfill-sync plan --detailed-exitcode "$workdir/backfills" >/dev/null || status=$?
if [ "$status" -ne 0 ]; then
  echo "demo failed: after the retry the plan should have nothing to do (exit $status)" >&2
  exit 1
fi
printf '\nDemo complete: Mage (emulated at %s) matches the manifests, and every date was reprocessed.\n' "$url"
