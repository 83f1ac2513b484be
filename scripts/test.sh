#!/usr/bin/env bash
# Runs every test. PostgreSQL tests use TEST_DATABASE_URL (default: the local server on
# 127.0.0.1:5432). Without a reachable PostgreSQL they are skipped with a loud note, except
# under CI, where that is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

default_pg="postgres://postgres@127.0.0.1:5432/postgres"
if [[ -z "${TEST_DATABASE_URL:-}" ]]; then
  if (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
    export TEST_DATABASE_URL="$default_pg"
  elif [[ -n "${CI:-}" ]]; then
    echo "PostgreSQL is not reachable on 127.0.0.1:5432 and TEST_DATABASE_URL is unset: CI must run the PostgreSQL tests." >&2
    exit 1
  else
    echo "*** PostgreSQL not reachable: PostgreSQL tests will be SKIPPED (set TEST_DATABASE_URL to run them). ***" >&2
  fi
fi

if [[ -z "${OPTIMIZER_SAMPLE_DATA:-}" ]]; then
  echo "*** OPTIMIZER_SAMPLE_DATA is unset: the checks against third-party sample catalogs are SKIPPED (the project's own fixtures still run). ***" >&2
fi

echo "== Rust tests (SQLite and PostgreSQL) =="
cargo test --workspace --no-fail-fast

echo "== API fuzzing from the OpenAPI document (Schemathesis, SQLite and PostgreSQL) =="
# `cargo test` has just built target/debug/optimizer (the CLI tests run it).
[[ -x target/debug/optimizer ]] || cargo build -p cli
bash scripts/schemathesis.sh

echo "== Dashboard unit tests =="
npm --prefix web run test:unit

# `cargo test` has just built target/debug/optimizer (the CLI tests run it); building it
# again with `cargo build` would recompile dependencies under other features.
[[ -x target/debug/optimizer ]] || cargo build -p cli
# The conformance and browser tests run the fake WooCommerce store and the fake Wix, Stripe
# and OpenAI APIs.
cargo build -p testkit --bin fake-woocommerce --bin fake-wix --bin fake-stripe --bin fake-openai

echo "== API fakes against the vendors' official clients =="
# Installed from the committed lock, as web/ is (the Makefile's conformance-deps rule).
[[ conformance/node_modules/.package-lock.json -nt conformance/package-lock.json ]] \
  || npm --prefix conformance install --no-audit --no-fund
npm --prefix conformance test

echo "== Dashboard end-to-end tests (headless Chromium) =="
bash scripts/ensure-chromium.sh
npm --prefix web run test:e2e
