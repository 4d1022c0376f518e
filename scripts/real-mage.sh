#!/usr/bin/env bash
# Run the conformance suite (tests/contract, marker real_mage) against a throw-away real Mage 0.9.80.
#
# What it does, in order:
#   1. makes sure mage-ai==0.9.80 is installed in its own venv (BFS_MAGE_VENV, default
#      ~/.cache/backfill-sync/mage-ai-0.9.80; reused when present; needs about 1.4 GB, 2 GB free asked);
#   2. creates a Mage project in a fresh temporary directory (its SQLite DB lives there too);
#   3. starts Mage on 127.0.0.1 at a free port (never 6789), authentication on (0.9.80's default),
#      in its own session (setsid) so that the whole process group can be stopped;
#   4. creates the pipeline bfs_conformance with a no-op block, bfs_flags whose block fails on dates
#      flagged by a file in a folder of this run, an Editor and a Viewer user, through the API;
#   5. runs `pytest -m real_mage tests/contract` with the BFS_REAL_MAGE_* variables set;
#   6. always stops the server's process group and removes the temporary directory (trap); when
#      something failed, Mage's own log is kept in build/real-mage-server.log.
#
# Environment: BFS_MAGE_VENV (venv dir), BFS_MAGE_START_TIMEOUT (seconds, default 180),
#              BFS_MAGE_INSTALL_HEARTBEAT (seconds between progress lines while installing, default 30),
#              PYTEST (default .venv/bin/pytest); extra arguments go to pytest.
#              BFS_REAL_MAGE_RUN: a command to run in step 5 instead of the suite (make bench-real-mage).
set -euo pipefail
cd "$(dirname "$0")/.."

MAGE_VERSION=0.9.80
VENV="${BFS_MAGE_VENV:-$HOME/.cache/backfill-sync/mage-ai-${MAGE_VERSION}}"
START_TIMEOUT="${BFS_MAGE_START_TIMEOUT:-180}"
PYTEST="${PYTEST:-.venv/bin/pytest}"
PIPELINE=bfs_conformance
FLAG_PIPELINE=bfs_flags
EDITOR_EMAIL=bfs-editor@example.com
EDITOR_PASSWORD=bfs-editor-password
VIEWER_EMAIL=bfs-viewer@example.com
VIEWER_PASSWORD=bfs-viewer-password
NEEDED_KB=$((2 * 1024 * 1024))
HEARTBEAT="${BFS_MAGE_INSTALL_HEARTBEAT:-30}"

say() { echo "[real-mage] $*" >&2; }

install_mage() {
  if [ -x "${VENV}/bin/mage" ]; then
    return
  fi
  local parent free_kb
  parent=$(dirname "${VENV}")
  mkdir -p "${parent}"
  free_kb=$(df -Pk "${parent}" | awk 'NR == 2 {print $4}')
  if [ "${free_kb}" -lt "${NEEDED_KB}" ]; then
    say "not enough disk for mage-ai: $((free_kb / 1024)) MB free under ${parent}, 2048 MB needed (the venv takes about 1.4 GB)."
    say "free some space or point BFS_MAGE_VENV at a disk with room."
    exit 1
  fi
  say "installing mage-ai==${MAGE_VERSION} into ${VENV}: once, about 1.4 GB; 1-2 minutes with a fast"
  say "  package index, 10 or more on a slow connection or busy machine. Later runs reuse it."
  say "  step 1/3: creating the venv"
  python3 -m venv "${VENV}"
  say "  step 2/3: upgrading pip"
  if ! "${VENV}/bin/pip" install --quiet --upgrade pip >"${WORK}/pip.log" 2>&1; then
    install_failed
  fi
  say "  step 3/3: downloading and installing mage-ai and its ~185 dependencies"
  "${VENV}/bin/pip" install --progress-bar off "mage-ai==${MAGE_VERSION}" >"${WORK}/pip.log" 2>&1 &
  local pip_pid=$! started=${SECONDS}
  # A line every HEARTBEAT seconds, so a CI log never sits silent for the whole install.
  while kill -0 "${pip_pid}" 2>/dev/null; do
    for _ in $(seq 1 "${HEARTBEAT}"); do
      kill -0 "${pip_pid}" 2>/dev/null || break
      sleep 1
    done
    kill -0 "${pip_pid}" 2>/dev/null || break
    say "  still installing ($(elapsed "${started}"), $(du -sm "${VENV}" 2>/dev/null | cut -f1) MB so far): $(pip_stage)"
  done
  if ! wait "${pip_pid}"; then
    install_failed
  fi
  say "  mage-ai installed in $(elapsed "${started}")"
}

install_failed() {
  say "pip install failed; the end of its log:"
  tail -20 "${WORK}/pip.log" >&2
  rm -rf "${VENV}"
  exit 1
}

elapsed() {
  local seconds=$((SECONDS - $1))
  printf '%dm%02ds' $((seconds / 60)) $((seconds % 60))
}

# pip's latest "Collecting x" / "Downloading x" / "Installing collected packages" line, shortened.
pip_stage() {
  grep -E '^(Collecting|  Downloading|Installing|Building|Successfully)' "${WORK}/pip.log" 2>/dev/null |
    tail -n 1 | sed -E 's/^ +//' | cut -c1-100 || true
}

free_port() {
  "${VENV}/bin/python" - <<'EOF'
import socket
while True:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    if port != 6789:
        print(port)
        break
EOF
}

answers() {
  local code
  code=$(curl -s -o /dev/null -m 3 -w '%{http_code}' "${URL}/api/status" 2>/dev/null || true)
  [ -n "${code}" ] && [ "${code}" != "000" ]
}

start_mage() {
  (cd "${WORK}" && "${VENV}/bin/mage" init project >/dev/null 2>&1)
  # No usage statistics leave this machine.
  sed -i 's/^help_improve_mage: true/help_improve_mage: false/' "${WORK}/project/metadata.yaml"
  (
    cd "${WORK}"
    export MAGE_DATA_DIR="${WORK}/.mage_data" REQUIRE_USER_AUTHENTICATION=True
    export DISABLE_AUTO_BROWSER_OPEN=true ENABLE_OPEN_AI=false ENABLE_HUGGING_FACE=false SENTRY_DSN=
    exec setsid "${VENV}/bin/mage" start project --host 127.0.0.1 --port "${PORT}" >"${WORK}/server.log" 2>&1 </dev/null
  ) &
  SERVER_PID=$!
}

wait_until_answering() {
  local deadline=$((SECONDS + START_TIMEOUT))
  until answers; do
    if ! kill -0 "${SERVER_PID}" 2>/dev/null; then
      say "Mage exited while starting; the end of its log:"
      tail -20 "${WORK}/server.log" >&2
      exit 1
    fi
    if [ "${SECONDS}" -ge "${deadline}" ]; then
      say "Mage did not answer within ${START_TIMEOUT}s"
      exit 1
    fi
    sleep 1
  done
}

stop_mage() {
  local status=$?
  if [ "${status}" -ne 0 ] && [ -s "${WORK}/server.log" ]; then
    # What Mage itself said (its scheduler's tracebacks above all) outlives the throw-away project.
    mkdir -p build
    cp "${WORK}/server.log" build/real-mage-server.log
    say "Mage's own log is kept in build/real-mage-server.log"
  fi
  if [ -n "${SERVER_PID:-}" ]; then
    # setsid made the server a session leader: its pid is its process-group id.
    kill -TERM -- "-${SERVER_PID}" 2>/dev/null || true
    for _ in $(seq 1 20); do
      kill -0 -- "-${SERVER_PID}" 2>/dev/null || break
      sleep 0.5
    done
    kill -KILL -- "-${SERVER_PID}" 2>/dev/null || true
  fi
  rm -rf "${WORK}"
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bfs-real-mage.XXXXXX")
SERVER_PID=
trap stop_mage EXIT
install_mage
PORT=$(free_port)
URL="http://127.0.0.1:${PORT}"
say "starting Mage ${MAGE_VERSION} on ${URL} (project in ${WORK})"
start_mage
wait_until_answering
say "Mage answers; creating pipelines ${PIPELINE} and ${FLAG_PIPELINE}, an Editor and a Viewer"
FLAG_DIR="${WORK}/flags"
mkdir -p "${FLAG_DIR}"
"${VENV}/bin/python" scripts/real_mage_setup.py "${URL}" "${PIPELINE}" "${EDITOR_EMAIL}" "${EDITOR_PASSWORD}" \
  "${FLAG_PIPELINE}" "${FLAG_DIR}" "${VIEWER_EMAIL}" "${VIEWER_PASSWORD}"

export BFS_REAL_MAGE_URL="${URL}" BFS_REAL_MAGE_PIPELINE="${PIPELINE}"
export BFS_REAL_MAGE_FLAG_PIPELINE="${FLAG_PIPELINE}" BFS_REAL_MAGE_FLAG_DIR="${FLAG_DIR}"
export BFS_REAL_MAGE_EDITOR_EMAIL="${EDITOR_EMAIL}" BFS_REAL_MAGE_EDITOR_PASSWORD="${EDITOR_PASSWORD}"
export BFS_REAL_MAGE_VIEWER_EMAIL="${VIEWER_EMAIL}" BFS_REAL_MAGE_VIEWER_PASSWORD="${VIEWER_PASSWORD}"
if [ -n "${BFS_REAL_MAGE_RUN:-}" ]; then
  # Another command against this throw-away Mage instead of the suite (make bench-real-mage).
  ${BFS_REAL_MAGE_RUN} "$@"
else
  "${PYTEST}" -m real_mage tests/contract "$@"
fi
