#!/usr/bin/env bash
# action.yml: install backfill-sync. BFS_VERSION is a version ("0.1.0"), any pip requirement, or empty for
# the action's own copy (GITHUB_ACTION_PATH), which is the version the workflow's `uses: ...@ref` names.
set -euo pipefail
case "${BFS_VERSION:-}" in
  "") requirement="${GITHUB_ACTION_PATH}" ;;
  [0-9]*) requirement="backfill-sync==${BFS_VERSION}" ;;
  *) requirement="${BFS_VERSION}" ;;
esac
python -m pip install --disable-pip-version-check --quiet "${requirement}"
