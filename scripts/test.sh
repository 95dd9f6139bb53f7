#!/usr/bin/env bash
# The test command (README, .ci/run): brings up what the tests need, then runs lints and every test.
#   PostgreSQL: the server at 127.0.0.1:5432 when reachable, otherwise a throwaway cluster made with the local
#   PostgreSQL binaries; each test creates and drops its own database.
#   docker-compose.yml: validated with Debian's `docker-compose config`.
set -euo pipefail
cd "$(dirname "$0")/.."
CI=${CI:-}
log() { printf '\n== %s\n' "$*"; }
skip() { printf '\n!! SKIPPED: %s\n' "$*" >&2; }

# --- PostgreSQL -------------------------------------------------------------------------------------------------
PG_TMP=""
cleanup() {
  if [ -n "$PG_TMP" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_TMP"
  fi
}
trap cleanup EXIT
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if [ -z "${SMANAGER_TEST_ADMIN_URL:-}" ]; then
  if psql "postgres://postgres@127.0.0.1:5432/postgres" -Atqc 'select 1' >/dev/null 2>&1; then
    export SMANAGER_TEST_ADMIN_URL="postgres://postgres@127.0.0.1:5432/postgres"
    log "PostgreSQL: using 127.0.0.1:5432"
  else
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
    if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
      echo "PostgreSQL is not reachable at 127.0.0.1:5432 and no local initdb was found." >&2
      echo "Install it (Debian: apt-get install postgresql) or set SMANAGER_TEST_ADMIN_URL=postgres://user@host:port/postgres" >&2
      exit 1
    fi
    PG_TMP=$(mktemp -d /tmp/smanager-pg.XXXXXX)
    chmod 755 "$PG_TMP"
    [ "$(id -u)" = 0 ] && chown postgres "$PG_TMP"
    PORT=$((20000 + RANDOM % 20000))
    log "PostgreSQL: starting a throwaway cluster on 127.0.0.1:$PORT ($PG_TMP)"
    as_pg "$PG_BIN/initdb" -D "$PG_TMP/data" -A trust -U postgres >/dev/null
    as_pg "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/log" -w \
      -o "-p $PORT -k $PG_TMP -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" start >/dev/null
    export SMANAGER_TEST_ADMIN_URL="postgres://postgres@127.0.0.1:$PORT/postgres"
  fi
fi

# --- npm peers ---------------------------------------------------------------------------------------------------
# js-ipfs 0.66.1 (a real Kubo-RPC IPFS node) from test-peers/jsipfs, installed once into .cache/jsipfs.
install_npm_peer() { # name
  local src="test-peers/$1" dst=".cache/$1"
  mkdir -p "$dst"
  if ! cmp -s "$src/package.json" "$dst/package.json" || [ ! -d "$dst/node_modules" ]; then
    cp "$src"/* "$dst"/
    log "npm install $1 (first run: a few minutes)"
    (cd "$dst" && npm install --no-audit --no-fund --loglevel=error >npm-install.log 2>&1) || {
      tail -20 "$dst/npm-install.log" >&2
      return 1
    }
  fi
  cp "$src"/* "$dst"/ # scripts may change without the dependencies changing
}
if command -v npm >/dev/null 2>&1; then
  install_npm_peer jsipfs
  export JSIPFS_DIR="$PWD/.cache/jsipfs"
  install_npm_peer polkadotjs
  export POLKADOTJS_DIR="$PWD/.cache/polkadotjs"
  install_npm_peer chopsticks
  export CHOPSTICKS_DIR="$PWD/.cache/chopsticks"
elif [ -n "$CI" ]; then
  echo "npm is required under CI=true (tests use js-ipfs, polkadot.js and chopsticks as real peers)" >&2
  exit 1
else
  skip "npm not installed: tests that need js-ipfs, polkadot.js or chopsticks will be skipped"
fi

# --- Chromium (status page test) ---------------------------------------------------------------------------------
if ! command -v chromium >/dev/null 2>&1 && [ -n "$CI" ] && [ "$(id -u)" = 0 ]; then
  log "installing Debian's chromium for the status page test"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
    { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }
fi

# --- docker-compose.yml ------------------------------------------------------------------------------------------
if ! command -v docker-compose >/dev/null 2>&1 && [ -n "$CI" ] && [ "$(id -u)" = 0 ]; then
  log "installing Debian's docker-compose to validate docker-compose.yml"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose >/dev/null 2>&1 || \
    { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose >/dev/null; }
fi
if command -v docker-compose >/dev/null 2>&1; then
  log "docker-compose config"
  SMANAGER_CONFIG_FILE=./config/smanager-config.example.json docker-compose -f docker-compose.yml config -q
  SMANAGER_CONFIG_FILE=./config/smanager-config.example.json docker-compose -f docker-compose.yml --profile logs config -q
elif [ -n "$CI" ]; then
  echo "docker-compose is required under CI=true (apt-get install docker-compose)" >&2
  exit 1
else
  skip "docker-compose not installed: docker-compose.yml not validated (apt-get install docker-compose)"
fi

# --- Rust --------------------------------------------------------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings
log "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast "$@"
else
  cargo test --no-fail-fast "$@"
fi

# --- The compose stack, built and run (Docker) --------------------------------------------------------------------
if [ "$#" -gt 0 ]; then
  log "test filter given: the compose test is not run"
elif [ -n "$CI" ]; then
  log "compose test (scripts/compose-test.sh)"
  ./scripts/compose-test.sh
elif docker info >/dev/null 2>&1; then
  log "compose test (scripts/compose-test.sh)"
  ./scripts/compose-test.sh
else
  skip "no Docker engine answers: the compose test (scripts/compose-test.sh) is not run; as root it installs and starts one itself"
fi
