#!/usr/bin/env bash
# The main job, end to end: validate the example manifests.
set -euo pipefail
cd "$(dirname "$0")/.."
backfill-sync validate examples/backfills
