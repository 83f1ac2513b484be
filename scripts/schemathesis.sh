#!/usr/bin/env bash
# Fuzzes the API from its own OpenAPI document with Schemathesis (pinned below), once on
# SQLite and once on PostgreSQL, each against a fresh database and the real `optimizer`
# binary, signed in as the demo account. Every check runs, and the stateful phase chains
# operations through the document's links. Any failure fails the run.
#
#   OPTIMIZER_BIN        the binary to fuzz (default target/debug/optimizer)
#   TEST_DATABASE_URL    a PostgreSQL server; a fresh database is created on it and dropped
#                        afterwards (without it, only SQLite runs, with a loud note)
#   SCHEMATHESIS_SEED    the random seed (default fixed, so runs repeat)
#   SCHEMATHESIS_MAX_EXAMPLES  examples per operation and phase, stateful scenarios too
#                        (default: scripts/schemathesis.toml)
#
# Schemathesis is installed into a virtual environment under the user cache, reused while
# the pinned version stays the same. Settings: scripts/schemathesis.toml.
#
# The fuzzer cannot lock itself out: it never sees the demo session's refresh token, so it
# cannot sign that session out, and no API operation deletes an account. What it creates
# (accounts, stores, jobs) lives in the throwaway database.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
cache="${XDG_CACHE_HOME:-$HOME/.cache}/ultimate-optimizer"
venv="$cache/schemathesis-$SCHEMATHESIS_VERSION"
# The stamp is written last, so an interrupted install is redone rather than used.
if [[ ! -f "$venv/.installed" ]]; then
  echo "Installing Schemathesis $SCHEMATHESIS_VERSION into $venv"
  rm -rf "$venv"
  mkdir -p "$cache"
  if python3 -m venv "$venv" 2>/dev/null; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
  else
    # Without ensurepip (Debian's python3 lacks it unless python3-venv is installed), the
    # environment is made bare and filled by the system's pip.
    rm -rf "$venv"
    python3 -m venv --without-pip "$venv"
    python3 -m pip --python "$venv/bin/python" install --quiet --disable-pip-version-check \
      "schemathesis==$SCHEMATHESIS_VERSION"
  fi
  touch "$venv/.installed"
fi

binary="${OPTIMIZER_BIN:-target/debug/optimizer}"
[[ -x "$binary" ]] || { echo "$binary is missing: build it first (cargo build -p cli)" >&2; exit 1; }
seed="${SCHEMATHESIS_SEED:-20261205}"
budget=()
[[ -n "${SCHEMATHESIS_MAX_EXAMPLES:-}" ]] && budget=(--max-examples "$SCHEMATHESIS_MAX_EXAMPLES")
work="$(mktemp -d)"
server_pid=""
pg_database=""

cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [[ -n "$pg_database" ]]; then psql "$TEST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS $pg_database WITH (FORCE)" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts `optimizer serve --demo` on a fresh data folder and database, waits for it, and
# exchanges the printed demo login link for an access token.
start_server() {
  local name="$1" database_url="$2"
  local data="$work/$name"
  mkdir -p "$data"
  port="$(free_port)"
  # The fuzzer sends thousands of requests a minute from one account: the per-account
  # limit is raised so it exercises the API rather than the limiter (429 stays documented).
  OPTIMIZER_DATA_DIR="$data" \
    DATABASE_URL="$database_url" \
    OPTIMIZER_HOST=127.0.0.1 \
    OPTIMIZER_PORT="$port" \
    OPTIMIZER_WEB_DIR="$data/no-dashboard" \
    OPTIMIZER_RATE_LIMIT_PER_MINUTE=1000000 \
    OPTIMIZER_LOG_FORMAT=json \
    RUST_LOG=warn \
    "$binary" serve --demo >"$data/stdout.log" 2>"$data/server.log" &
  server_pid=$!
  local link=""
  for _ in $(seq 1 300); do
    link="$(grep -o 'demo-login#token=[A-Za-z0-9_-]*' "$data/stdout.log" 2>/dev/null || true)"
    [[ -n "$link" ]] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$data/server.log" >&2; echo "the server stopped" >&2; exit 1; }
    sleep 0.2
  done
  [[ -n "$link" ]] || { echo "no demo login link after 60 s" >&2; exit 1; }
  base_url="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    curl -fsS "$base_url/health" >/dev/null 2>&1 && break
    sleep 0.2
  done
  access_token="$(curl -fsS -X POST "$base_url/api/v1/auth/demo-login" \
    -H 'content-type: application/json' \
    -d "{\"token\": \"${link#demo-login#token=}\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["accessToken"])')"
}

stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

fuzz() {
  local name="$1" database_url="$2"
  echo "== Schemathesis $SCHEMATHESIS_VERSION on $name (seed $seed) =="
  start_server "$name" "$database_url"
  local status=0
  "$venv/bin/schemathesis" --config-file scripts/schemathesis.toml run "$base_url/api/openapi.json" \
    --checks all \
    --seed "$seed" \
    "${budget[@]}" \
    -H "Authorization: Bearer $access_token" \
    --report junit --report-dir "target/schemathesis/$name" \
    --no-color || status=$?
  if grep -q '"level":"ERROR"' "$work/$name/server.log"; then
    echo "The server logged errors during the $name run:" >&2
    grep '"level":"ERROR"' "$work/$name/server.log" | head -20 >&2
    status=1
  fi
  stop_server
  return "$status"
}

failed=0
fuzz sqlite "sqlite://$work/sqlite/optimizer.db" || failed=1

if [[ -n "${TEST_DATABASE_URL:-}" ]]; then
  command -v psql >/dev/null || { echo "psql is needed to create the PostgreSQL database for Schemathesis" >&2; exit 1; }
  pg_database="schemathesis_$$_$RANDOM"
  psql "$TEST_DATABASE_URL" -qc "CREATE DATABASE $pg_database" >/dev/null
  fuzz postgres "$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$TEST_DATABASE_URL" "$pg_database")" || failed=1
else
  echo "*** TEST_DATABASE_URL is unset: Schemathesis did NOT run on PostgreSQL. ***" >&2
fi

exit "$failed"
