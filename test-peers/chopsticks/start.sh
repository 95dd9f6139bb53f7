#!/bin/bash
# usage: start.sh PORT [CONFIG] — starts chopsticks on 127.0.0.1:PORT (HTTP + WS): with a chopsticks config file
# (JSON or YAML; its own port is overridden), else with the Rococo Asset Hub chain spec written here.
# Prints "ready" once it answers; the PID is in chopsticks-PORT.pid. Needs `npm install` done in CHOPSTICKS_DIR.
set -u
PORT=$1
DIR=${CHOPSTICKS_DIR:-$(cd "$(dirname "$0")" && pwd)}
cd "$DIR" || exit 1
CONFIG=${2:-}
if [ -n "$CONFIG" ]; then
  nohup node_modules/.bin/chopsticks --config "$CONFIG" --host 127.0.0.1 --port "$PORT" > "chopsticks-$PORT.log" 2>&1 &
else
  node -e 'const s=require(require("path").resolve("node_modules/@substrate/connect-known-chains/dist/commonjs/specs/rococo_v2_2_asset_hub.js")); require("fs").writeFileSync("asset-hub.json", s.chainSpec)' || exit 1
  nohup node_modules/.bin/chopsticks --genesis asset-hub.json --host 127.0.0.1 --port "$PORT" > "chopsticks-$PORT.log" 2>&1 &
fi
echo $! > "chopsticks-$PORT.pid"
for _ in $(seq 1 600); do
  if curl -sf -H 'Content-Type: application/json' -d '{"id":1,"jsonrpc":"2.0","method":"chain_getBlockHash","params":[0]}' "http://127.0.0.1:$PORT" >/dev/null 2>&1; then
    echo ready; exit 0; fi
  kill -0 "$(cat "chopsticks-$PORT.pid")" 2>/dev/null || { echo "chopsticks died:"; tail -20 "chopsticks-$PORT.log"; exit 1; }
  sleep 0.1
done
echo "chopsticks did not come up"; tail -20 "chopsticks-$PORT.log"; exit 1
