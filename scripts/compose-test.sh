#!/usr/bin/env bash
# The compose stack really runs: images built locally, started next to a crust-node-shaped devnet, supervised by
# Docker, scraped by Prometheus. Run by scripts/test.sh under CI=true; elsewhere it skips loudly when no Docker engine
# answers and it cannot start one (starting one needs root).
#
# What it does, each step failing with a clear message:
#   1. a Docker engine (as root: installs docker.io, debootstrap and docker-compose with apt-get when missing, starts
#      `dockerd --bridge=none --iptables=false`);
#   2. images, all from Debian packages (public registries are not reachable here): a bookworm base made with
#      debootstrap, PostgreSQL 15 (ops/images/postgres), Prometheus (ops/images/prometheus), and smanager from the
#      project's Dockerfile (`--target prebuilt`, taking the binary the test build made), cached by image name except
#      smanager, which is rebuilt every run;
#   3. `smanager devnet --peers-only` on the host (chain 19944, sWorker 12222, IPFS 5001, as crust-node);
#   4. the project's docker-compose.yml with only image names, the config file and the healthcheck interval
#      overridden, and checks: PostgreSQL healthy; smanager healthy; files indexed, sealed and cleaned; logs are JSON
#      lines; SIGKILL of smanager in the container → Docker restarts it, nothing is pinned twice; `stop` → exit 0
#      within the grace period with every lease handed back; `down` + `up` keeps the database and resumes; the `logs`
#      profile's Prometheus scrapes smanager and every PromQL expression of the Grafana dashboard evaluates with data;
#   5. removes everything it started (containers, volumes, the devnet, the engine if it started it).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

log() { echo "compose-test: $*" >&2; }
fail() {
  echo "compose-test: FAIL: $*" >&2
  exit 1
}
skip() {
  if [ -n "${CI:-}" ]; then
    fail "$* (CI=true: the compose test must run)"
  fi
  echo "compose-test: !! SKIPPED: $*" >&2
  exit 0
}

PROJECT=smanager-compose-test
BASE_IMAGE=${SMANAGER_BASE_IMAGE:-smanager-local/debian:bookworm}
PG_IMAGE=smanager-local/postgres:15
PROM_IMAGE=smanager-local/prometheus:debian
APP_IMAGE=smanager-local/smanager:test
WORK=$(mktemp -d)
STARTED_DOCKERD=""
DEVNET_PID=""
COMPOSE_UP=""

compose() { docker-compose -p "$PROJECT" "$@"; }

cleanup() {
  local rc=$?
  set +e
  if [ -n "$COMPOSE_UP" ]; then
    if [ "$rc" != 0 ]; then
      log "logs of the failed run:"
      compose --profile logs logs --tail 40 2>&1 | sed 's/^/  /' >&2
    fi
    compose --profile logs down -v --remove-orphans >/dev/null 2>&1
  fi
  if [ -n "$DEVNET_PID" ]; then
    kill "$DEVNET_PID" 2>/dev/null
    wait "$DEVNET_PID" 2>/dev/null
  fi
  if [ -n "$STARTED_DOCKERD" ]; then
    kill "$STARTED_DOCKERD" 2>/dev/null
    wait "$STARTED_DOCKERD" 2>/dev/null
  fi
  rm -rf "$WORK" "$ROOT/.docker-bin"
  exit "$rc"
}
trap cleanup EXIT

# --- 1. a Docker engine -------------------------------------------------------------------------------------------
apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; }
}
if ! docker info >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || skip "no Docker engine answers, and starting one needs root"
  command -v apt-get >/dev/null || skip "no Docker engine and no apt-get to install one"
  for tool in dockerd:docker.io docker:docker.io debootstrap:debootstrap docker-compose:docker-compose; do
    command -v "${tool%%:*}" >/dev/null || { log "installing ${tool#*:}"; apt_install "${tool#*:}" || fail "cannot install ${tool#*:}"; }
  done
  log "starting dockerd (--bridge=none --iptables=false)"
  dockerd --bridge=none --iptables=false >"$WORK/dockerd.log" 2>&1 &
  STARTED_DOCKERD=$!
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || fail "dockerd did not answer within 60 s: $(tail -5 "$WORK/dockerd.log")"
fi
command -v docker-compose >/dev/null || { [ "$(id -u)" = 0 ] && apt_install docker-compose; } ||
  skip "docker-compose is not installed"

# --- 2. images ----------------------------------------------------------------------------------------------------
mirror() {
  local m
  m=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -1)
  [ -n "$m" ] || m=$(grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}' | head -1)
  echo "${m:-http://deb.debian.org/debian}"
}
t0=$(date +%s)
if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null || { [ "$(id -u)" = 0 ] && apt_install debootstrap; } || skip "debootstrap is not installed"
  log "building $BASE_IMAGE with debootstrap from $(mirror)"
  debootstrap --variant=minbase bookworm "$WORK/rootfs" "$(mirror)" >"$WORK/debootstrap.log" 2>&1 ||
    fail "debootstrap failed: $(tail -5 "$WORK/debootstrap.log")"
  tar -C "$WORK/rootfs" -c . | docker import - "$BASE_IMAGE" >/dev/null || fail "docker import of the base failed"
  rm -rf "$WORK/rootfs"
fi
build() { # image, context, extra args…
  local image=$1 ctx=$2
  shift 2
  docker build --network host --build-arg BASE_IMAGE="$BASE_IMAGE" -t "$image" "$@" "$ctx" >"$WORK/build.log" 2>&1 ||
    fail "building $image failed: $(tail -15 "$WORK/build.log")"
}
docker image inspect "$PG_IMAGE" >/dev/null 2>&1 || { log "building $PG_IMAGE"; build "$PG_IMAGE" ops/images/postgres; }
docker image inspect "$PROM_IMAGE" >/dev/null 2>&1 || { log "building $PROM_IMAGE"; build "$PROM_IMAGE" ops/images/prometheus; }
BIN=${SMANAGER_BIN:-}
if [ -z "$BIN" ]; then
  BIN=target/debug/smanager
  [ -x "$BIN" ] || { log "building the smanager binary"; cargo build -q --bin smanager; }
fi
[ -x "$BIN" ] || fail "no smanager binary at $BIN"
mkdir -p .docker-bin
cp "$BIN" .docker-bin/smanager
log "building $APP_IMAGE from the Dockerfile (--target prebuilt)"
build "$APP_IMAGE" . --target prebuilt
log "images ready in $(($(date +%s) - t0)) s"

# --- 3. the crust-node-shaped devnet on the host ------------------------------------------------------------------
for port in 19944 12222 5001 5433 8686 9090; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    fail "127.0.0.1:$port is already in use; the compose test needs crust-node's and the stack's ports"
  fi
done
"$BIN" devnet --peers-only --block-ms 1000 --order-rate 2 --group-members 1 --report-secs 2 \
  >"$WORK/devnet.out" 2>"$WORK/devnet.err" &
DEVNET_PID=$!
for _ in $(seq 60); do grep -q '^endpoints: ' "$WORK/devnet.out" && break; sleep 0.5; done
grep -q '^endpoints: ' "$WORK/devnet.out" || fail "devnet --peers-only did not start: $(cat "$WORK/devnet.err")"
ACCOUNT=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["account"])' \
  "$(sed -n 's/^endpoints: //p' "$WORK/devnet.out" | head -1)")
log "devnet peers up; smanager will run as $ACCOUNT"

# --- 4. the compose stack -----------------------------------------------------------------------------------------
cat >"$WORK/smanager_config.json" <<EOF
{
  "chain": {"account": "$ACCOUNT", "endPoint": "ws://127.0.0.1:19944", "pollIntervalMs": 500, "groupRefreshSecs": 5},
  "sworker": {"endPoint": "http://127.0.0.1:12222"},
  "ipfs": {"endPoint": "http://127.0.0.1:5001"},
  "node": {"role": "member"},
  "telemetry": {"endPoint": ""},
  "dataDir": "data",
  "scheduler": {"minSrdRatio": 30, "tickSecs": 2},
  "sealer": {"checkIntervalSecs": 5},
  "cleanup": {"intervalSecs": 2},
  "puller": {"leaseSecs": 15},
  "admin": {"bind": "127.0.0.1:8686"}
}
EOF
chmod 644 "$WORK/smanager_config.json"
chmod 755 "$WORK"
export SMANAGER_IMAGE=$APP_IMAGE SMANAGER_PG_IMAGE=$PG_IMAGE SMANAGER_PROMETHEUS_IMAGE=$PROM_IMAGE
export SMANAGER_CONFIG_FILE=$WORK/smanager_config.json SMANAGER_HEALTHCHECK_INTERVAL=3s

container() { compose ps -q "$1"; }
health() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$(container "$1")" 2>/dev/null; }
wait_healthy() { # service, seconds
  local s
  for _ in $(seq "$2"); do
    s=$(health "$1")
    [ "$s" = healthy ] && return 0
    sleep 1
  done
  fail "$1 is not healthy after $2 s (state: ${s:-none})"
}
status_json() { docker exec "$(container smanager)" smanager status --json 2>/dev/null; }
field() { python3 -c 'import json,sys; v=json.load(sys.stdin); print(eval(sys.argv[1], {}, {"s": v}))' "$1"; }
psql_q() { PGPASSWORD=smanager psql -h 127.0.0.1 -p 5433 -U smanager -d smanager -tAc "$1"; }
devnet_stat() { sed -n 's/^progress: //p' "$WORK/devnet.out" | tail -1 | field "s['$1']"; }

t0=$(date +%s)
COMPOSE_UP=1
compose up -d postgres smanager >"$WORK/up.log" 2>&1 || fail "docker-compose up failed: $(tail -10 "$WORK/up.log")"
wait_healthy postgres 90
log "PostgreSQL healthy (127.0.0.1:5433, host network)"
wait_healthy smanager 120
log "smanager healthy ($(($(date +%s) - t0)) s after up)"

for _ in $(seq 120); do
  st=$(status_json) || st=""
  if [ -n "$st" ] && [ "$(echo "$st" | field "s['files'].get('sealed', 0) > 0 and s['files'].get('cleaned', 0) > 0")" = True ]; then
    break
  fi
  sleep 2
done
[ -n "$st" ] || fail "smanager status --json gave nothing inside the container"
echo "$st" | field "s['files']" >&2
[ "$(echo "$st" | field "s['files'].get('sealed', 0) > 0")" = True ] || fail "no file sealed through the devnet"
[ "$(echo "$st" | field "s['files'].get('cleaned', 0) > 0")" = True ] || fail "no file cleaned through the devnet"
log "files indexed, sealed and cleaned through the devnet"

docker logs "$(container smanager)" >"$WORK/smanager.log" 2>&1
python3 - "$WORK/smanager.log" <<'EOF' || fail "container logs are not one JSON object per line with ts, level, msg"
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
assert lines, "no log lines"
for l in lines:
    o = json.loads(l)
    missing = [k for k in ("ts", "level", "msg") if k not in o]
    assert not missing, f"{missing} missing in {l!r}"
print(f"compose-test: {len(lines)} log lines, all JSON with ts, level, msg", file=sys.stderr)
EOF

# SIGKILL the smanager process inside the container: Docker's restart policy brings it back, it re-adopts its leases.
sealed_before=$(echo "$st" | field "s['files'].get('sealed', 0)")
restarts_before=$(docker inspect -f '{{.RestartCount}}' "$(container smanager)")
killed_at=$(date +%s)
docker exec -u 0 "$(container smanager)" sh -c \
  'for p in /proc/[0-9]*; do if [ "$(cat $p/comm 2>/dev/null)" = smanager ] && tr "\0" " " <$p/cmdline | grep -q " run"; then kill -9 ${p#/proc/}; fi; done' ||
  true
for _ in $(seq 60); do
  [ "$(docker inspect -f '{{.RestartCount}}' "$(container smanager)")" -gt "$restarts_before" ] && break
  sleep 1
done
[ "$(docker inspect -f '{{.RestartCount}}' "$(container smanager)")" -gt "$restarts_before" ] ||
  fail "Docker did not restart smanager after SIGKILL"
wait_healthy smanager 120
for _ in $(seq 60); do
  sealed_now=$(status_json | field "s['files'].get('sealed', 0)") || sealed_now=0
  [ "$sealed_now" -gt "$sealed_before" ] && break
  sleep 2
done
[ "$sealed_now" -gt "$sealed_before" ] || fail "no file sealed after the restart"
sleep 3
twice=$(devnet_stat max_concurrent_same_cid)
[ "$twice" -le 1 ] || fail "a CID was pinned twice at once after the restart (devnet IPFS: $twice)"
# The killed process's leases expire after puller.leaseSecs (15 s) and are re-adopted within another lease period.
sleep $((killed_at + 35 - $(date +%s) > 0 ? killed_at + 35 - $(date +%s) : 0))
stale=$(psql_q "SELECT count(*) FROM pins WHERE status IN ('queued','pinning') AND lease_expires_at < now()")
[ "$stale" = 0 ] || fail "$stale live pin(s) with an expired lease were not re-adopted after the restart"
log "SIGKILL: Docker restarted smanager, it re-adopted the dead process's leases, work resumed, no CID pinned twice (devnet IPFS max concurrent per CID: $twice)"

# stop: exit 0 within the grace period, every lease handed back.
t_stop=$(date +%s)
compose stop smanager >/dev/null 2>&1
took=$(($(date +%s) - t_stop))
code=$(docker inspect -f '{{.State.ExitCode}}' "$(container smanager)")
[ "$code" = 0 ] || fail "smanager exited $code on docker-compose stop"
[ "$took" -lt 20 ] || fail "smanager took $took s to stop (grace period 20 s)"
leased=$(psql_q "SELECT count(*) FROM pins WHERE status IN ('queued','pinning') AND lease_holder IS NOT NULL")
[ "$leased" = 0 ] || fail "$leased live pin(s) still leased after stop"
cursor_before=$(psql_q "SELECT block_number FROM chain_cursors WHERE name = 'indexer'")
files_before=$(psql_q "SELECT count(*) FROM files")
log "stop: exit 0 in $took s, no live pin left leased (indexer at block $cursor_before, $files_before files)"

# down + up: the named volume keeps the database; indexing resumes from the cursor.
compose down >/dev/null 2>&1
compose up -d postgres smanager >"$WORK/up.log" 2>&1 || fail "second docker-compose up failed: $(tail -10 "$WORK/up.log")"
wait_healthy postgres 90
wait_healthy smanager 120
files_after=$(psql_q "SELECT count(*) FROM files")
[ "$files_after" -ge "$files_before" ] || fail "the database was not kept across down/up ($files_before → $files_after files)"
for _ in $(seq 60); do
  cursor_after=$(psql_q "SELECT block_number FROM chain_cursors WHERE name = 'indexer'")
  [ "$cursor_after" -gt "$cursor_before" ] && break
  sleep 1
done
[ "$cursor_after" -gt "$cursor_before" ] || fail "indexing did not resume after down/up (cursor $cursor_before → $cursor_after)"
log "down/up: database kept ($files_before → $files_after files), indexing resumed (block $cursor_before → $cursor_after)"

# The logs profile: Prometheus scrapes smanager; every PromQL expression of the dashboard evaluates with data.
compose --profile logs up -d prometheus >"$WORK/up.log" 2>&1 || fail "starting Prometheus failed: $(tail -10 "$WORK/up.log")"
python3 - <<'EOF' || fail "Prometheus or the dashboard queries failed (see above)"
import glob, json, re, sys, time, urllib.parse, urllib.request

def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)

deadline = time.time() + 120
while True:
    try:
        targets = get("http://127.0.0.1:9090/api/v1/targets")["data"]["activeTargets"]
        if targets and all(t["health"] == "up" for t in targets):
            break
    except Exception as e:  # not up yet
        targets = str(e)
    if time.time() > deadline:
        sys.exit(f"Prometheus does not scrape smanager: {targets}")
    time.sleep(2)
print("compose-test: Prometheus scrapes smanager (target up)", file=sys.stderr)
exported = set(re.findall(r"^(smanager_[a-z_]+)", urllib.request.urlopen("http://127.0.0.1:8686/metrics").read().decode(), re.M))
time.sleep(35)  # a few scrapes, so rate() and increase() have two samples
exprs = []
for f in glob.glob("ops/grafana/dashboards/*.json"):
    def walk(panels):
        for p in panels:
            ds = json.dumps(p.get("datasource", ""))
            for t in p.get("targets", []):
                tds = json.dumps(t.get("datasource", "")) + ds
                if "expr" in t and "loki" not in tds.lower():
                    exprs.append(t["expr"])
                elif "expr" in t:
                    print(f"compose-test: not evaluated (Loki, not packaged here): {t['expr']}", file=sys.stderr)
            walk(p.get("panels", []))
    walk(json.load(open(f)).get("panels", []))
if not exprs:
    sys.exit("no PromQL expressions found in ops/grafana/dashboards")
bad = []
for e in exprs:
    q = re.sub(r"\$__rate_interval|\$__interval|\$interval", "5m", e)
    r = get("http://127.0.0.1:9090/api/v1/query?" + urllib.parse.urlencode({"query": q}))
    names = set(re.findall(r"smanager_[a-z_]+", q))
    names = {n[: -len("_bucket")] + "_bucket" if n.endswith("_bucket") else n for n in names}
    needs_data = all(n in exported or n.removesuffix("_bucket") + "_bucket" in exported for n in names)
    if r.get("status") != "success":
        bad.append(f"{e}: {r.get('error')}")
    elif needs_data and not r["data"]["result"]:
        bad.append(f"{e}: no data although smanager exports {sorted(names)}")
    else:
        print(f"compose-test: ok {e} ({len(r['data']['result'])} series)", file=sys.stderr)
if bad:
    sys.exit("dashboard expressions failed:\n  " + "\n  ".join(bad))
print(f"compose-test: all {len(exprs)} PromQL expressions of the dashboard evaluate with data", file=sys.stderr)
EOF

log "passed: images, health, pipeline, JSON logs, SIGKILL restart, clean stop, persistent volume, Prometheus and dashboard"
