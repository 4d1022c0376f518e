#!/usr/bin/env bash
# action.yml: run one backfill-sync command as the example workflow does. The inputs arrive as variables
# (BFS_COMMAND, BFS_PATHS, BFS_ARGS; paths and args are split on spaces), never spliced into the script.
set -euo pipefail

read -r -a paths <<< "${BFS_PATHS:-backfills/}"
read -r -a extra <<< "${BFS_ARGS:-}"

needs_mage() {
  if [ -z "${MAGE_URL:-}" ]; then
    echo "::error::MAGE_URL is empty: set it (and Mage credentials) in the job's env, e.g. from the Actions variable MAGE_URL"
    exit 1
  fi
}

case "${BFS_COMMAND}" in
  validate)
    backfill-sync validate "${extra[@]}" "${paths[@]}"
    ;;
  fmt)
    # CI never rewrites: it prints the diff and fails. Fix with `backfill-sync fmt` and commit.
    backfill-sync fmt --check "${extra[@]}" "${paths[@]}"
    ;;
  plan)
    needs_mage
    # Exit 2 means "there are changes", not a failure; any other non-zero code fails the step.
    status=0
    backfill-sync plan --detailed-exitcode --format markdown --out plan.json "${extra[@]}" "${paths[@]}" > plan.md || status=$?
    case "${status}" in
      0) echo "changes=false" >> "${GITHUB_OUTPUT}" ;;
      2) echo "changes=true" >> "${GITHUB_OUTPUT}" ;;
      *) exit "${status}" ;;
    esac
    ;;
  apply)
    needs_mage
    # Exactly the reviewed plan; each item is re-read first and refused as stale if Mage changed since.
    backfill-sync apply --auto-approve "${extra[@]}" plan.json
    # Then nothing may be left to do.
    backfill-sync plan --detailed-exitcode "${paths[@]}"
    ;;
  wait)
    needs_mage
    # Read-only: waits until the started backfills are finished; fails naming the dates that failed.
    backfill-sync wait --timeout "${BFS_TIMEOUT:-2h}" "${extra[@]}" "${paths[@]}"
    ;;
  *)
    echo "::error::unknown command '${BFS_COMMAND}': use validate, fmt, plan, apply, wait or comment"
    exit 1
    ;;
esac
