#!/usr/bin/env bash
# Announce latency with many peers loaded: builds the tracker, starts it on
# loopback with example.json, loads PEERS peers with the side-by-side
# benchmark's wrk script (../shared/bench/announce.lua), then times DUR
# seconds of the same load with wrk --latency and prints the percentiles
# (garbage collection pauses included) and resident memory per peer.
#
#   scripts/bench-latency.sh                 # PEERS=5000000 TORRENTS=500000
#   PEERS=1000000 TORRENTS=100000 scripts/bench-latency.sh
set -euo pipefail
PEERS=${PEERS:-5000000} TORRENTS=${TORRENTS:-500000} DUR=${DUR:-10} CONNS=${CONNS:-64}
bench=${BENCH:-$(dirname "$0")/../../shared/bench}
[ -f "$bench/announce.lua" ] || { echo "no $bench/announce.lua: set BENCH to the benchmark kit's folder" >&2; exit 1; }
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
go build -o "$work/chihaya" ./cmd/chihaya
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
python3 - "$work/config.json" "$port" <<'PY'
import json, sys
cfg = json.load(open("example.json"))
cfg["addr"] = "127.0.0.1:" + sys.argv[2]
cfg["admin_addr"] = ""
json.dump(cfg, open(sys.argv[1], "w"))
PY
"$work/chihaya" -config "$work/config.json" -v=1 2>"$work/log" & pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
rss0=$(awk '/VmRSS/{print $2}' /proc/$pid/status)

url="http://127.0.0.1:$port/announce"
# One wrk thread walks the pool in order, so every peer of it is announced
# once the thread has made PEERS requests; the stored count is checked below.
load_s=${LOAD_S:-$(( PEERS / 20000 + 5 ))}
echo "loading $PEERS peers over $TORRENTS torrents (${load_s}s) ..."
TORRENTS=$TORRENTS POOL=$PEERS wrk -t1 -c"$CONNS" -d"${load_s}s" -s "$bench/announce.lua" "$url" | grep -E 'Requests/sec'
rss=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
echo "timing ${DUR}s of announces with $PEERS peers loaded ..."
TORRENTS=$TORRENTS POOL=$PEERS wrk -t1 -c"$CONNS" -d"${DUR}s" --latency -s "$bench/announce.lua" "$url" | tee "$work/wrk.out" | grep -E 'Latency|50%|75%|90%|99%|Requests/sec|Non-2xx|timeout'
python3 "$bench/count_peers.py" "http://127.0.0.1:$port/scrape" "$TORRENTS" | awk -v r0="$rss0" -v r="$rss" '{printf "peers stored %d; RSS %d MiB, %.1f bytes/peer\n", $1, r/1024, (r-r0)*1024/$1}'
kill -0 "$pid" && echo "tracker alive"
