#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions are called indirectly (run_case, traps)
# End-to-end suite: real BitTorrent clients (aria2 and transmission-cli) share
# a random file through a freshly built tracker, and the tracker's scrape must
# show the swarm as it really is. Run it with `make e2e`. A last case runs
# the tracker in private mode for a Gazelle site held by a throw-away MariaDB
# server: passkey URLs, the site's updates, and the credit and snatch rows
# the transfer must leave in the database.
#
# Everything stays on 127.0.0.1: the tracker listens there, the torrents
# announce there, and DHT, PEX, local peer discovery and port mapping are off
# in both clients, so the only way a leecher finds the seeder is the tracker.
# Every client runs under `timeout -k` and is stopped by its PID; nothing is
# ever killed by name.
#
# Missing tools (MariaDB's server and client included) are installed with
# apt-get when running as root on Debian; otherwise the suite fails and names
# the packages to install. With CI=true a missing tool is a failure too,
# never a skip.
#
# Environment: GO (go command, default "go"); E2E_KEEP=1 keeps the work
# directory (it is always kept after a failure).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
E2E=$ROOT/e2e
GO=${GO:-go}
TOOL="python3 $E2E/tracker_tool.py"

# Short intervals, so that a whole case takes seconds: clients re-announce
# every 2 s and a silent peer is gone after 6 s (the reaper runs every 1.5 s).
ANNOUNCE=2s
MIN_ANNOUNCE=1s
PEER_LIFETIME=6s
EXPIRY_WAIT=20 # seconds to wait for a swarm to empty (lifetime + reaper + slack)
TRANSFER_WAIT=75 # seconds a leecher may take to end with the whole file

PASSED=0
FAILED=0
SUITE_START=$SECONDS

pass() { PASSED=$((PASSED + 1)); echo "PASS $1"; }
fail() {
	FAILED=$((FAILED + 1))
	echo "FAIL $1"
	shift
	local line
	for line in "$@"; do echo "     $line"; done
}
note() { printf '  [%3ds] %s\n' $((SECONDS - SUITE_START)) "$*"; }

# finish: stop everything, then end with the summary line.
finish() {
	trap - EXIT INT TERM
	cleanup
	echo "$PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
	exit $?
}

# --------------------------------------------------------------------------
# Tools
# --------------------------------------------------------------------------

# command:package pairs. Go is not installed from apt: Debian's is older than
# the go.mod requires. The private-mode case runs its own MariaDB server
# (mariadbd and mariadb-install-db from mariadb-server, the mariadb client).
REQUIRED="aria2c:aria2 transmission-cli:transmission-cli mktorrent:mktorrent python3:python3 timeout:coreutils cmp:diffutils
mariadbd:mariadb-server mariadb-install-db:mariadb-server mariadb:mariadb-client"

# find_bin NAME...: the path of the first NAME found in $PATH, /usr/sbin or
# /usr/libexec (mariadbd lives in /usr/sbin, which a user's $PATH may lack).
find_bin() {
	local n d
	for n in "$@"; do
		command -v "$n" 2>/dev/null && return 0
		for d in /usr/sbin /usr/libexec; do
			[ -x "$d/$n" ] && { echo "$d/$n"; return 0; }
		done
	done
	return 1
}

missing_packages() {
	local pair out=" "
	for pair in $REQUIRED; do
		find_bin "${pair%%:*}" >/dev/null || case "$out" in
			*" ${pair#*:} "*) ;;
			*) out="$out${pair#*:} " ;;
		esac
	done
	out="${out# }"
	echo "${out% }"
}

ensure_tools() {
	local pkgs
	pkgs=$(missing_packages)
	if [ -n "$pkgs" ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "installing: $pkgs"
		export DEBIAN_FRONTEND=noninteractive
		local aptlog="${TMPDIR:-/tmp}/chihaya-e2e-apt.log"
		# shellcheck disable=SC2086 # $pkgs is a list of package names
		if { apt-get update -qq && apt-get install -y -qq --no-install-recommends $pkgs; } >"$aptlog" 2>&1; then
			rm -f "$aptlog"
		else
			tail -n 20 "$aptlog"
		fi
		pkgs=$(missing_packages)
	fi
	if [ -n "$pkgs" ]; then
		fail "setup: missing tools${CI:+ (CI=$CI: a missing client is a failure, not a skip)}" \
			"install them with: apt-get install -y --no-install-recommends $pkgs"
		finish
	fi
	if ! command -v "$GO" >/dev/null 2>&1; then
		fail "setup: no Go toolchain ($GO)" "install the Go version go.mod names"
		finish
	fi
}

# --------------------------------------------------------------------------
# Processes: each started in the background, remembered by PID, stopped by
# PID in cleanup.
# --------------------------------------------------------------------------

WORK=""
TRACKER_PID=""
CLIENT_PIDS=()

cleanup() {
	local pid
	for pid in "${CLIENT_PIDS[@]}"; do
		# Signals sent to timeout(1) reach its child, and arm its -k.
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${CLIENT_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
	CLIENT_PIDS=()
	if [ -n "$TRACKER_PID" ]; then
		kill -TERM "$TRACKER_PID" 2>/dev/null
		wait "$TRACKER_PID" 2>/dev/null
		TRACKER_PID=""
	fi
	# After the tracker, which flushes to it when it stops.
	stop_mariadb
	if [ -n "$MDB_SOCK_DIR" ]; then
		rm -rf "$MDB_SOCK_DIR"
		MDB_SOCK_DIR=""
	fi
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		if [ "${E2E_KEEP:-0}" = 1 ] || [ "$FAILED" -gt 0 ]; then
			echo "work directory kept: $WORK"
		else
			rm -rf "$WORK"
		fi
	fi
}
trap cleanup EXIT
trap 'echo "interrupted"; FAILED=$((FAILED + 1)); finish' INT TERM

forget_pid() {
	local keep=() p
	for p in "${CLIENT_PIDS[@]}"; do [ "$p" != "$1" ] && keep+=("$p"); done
	CLIENT_PIDS=("${keep[@]}")
}

# child_of PID: the PID of PID's (first) child, i.e. the client that a
# timeout(1) process runs.
child_of() {
	local parent=$1 c="" f line fields
	if [ -r "/proc/$parent/task/$parent/children" ]; then
		read -r c _ <"/proc/$parent/task/$parent/children"
	fi
	if [ -z "$c" ]; then
		for f in /proc/[0-9]*/stat; do
			read -r line <"$f" 2>/dev/null || continue
			# After "pid (comm) " come state, ppid, ...
			read -ra fields <<<"${line##*) }"
			if [ "${fields[1]:-}" = "$parent" ]; then
				c=${line%% *}
				break
			fi
		done
	fi
	echo "$c"
}

# The next three set RC to the exit status of the timeout(1) wrapper. (Not
# printed: `wait` only works in this shell, not in a $(...) subshell.)
RC=""

# stop_client PID SIGNAL: send SIGNAL to the timeout(1) wrapper (which hands
# it to the client and arms its -k) and wait.
stop_client() {
	local pid=$1 sig=$2
	kill "-$sig" "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	RC=$?
	forget_pid "$pid"
}

# vanish_client PID: kill -9 the client itself (not its timeout wrapper), so
# that it sends nothing more to the tracker.
vanish_client() {
	local pid=$1 child
	child=$(child_of "$pid")
	if [ -n "$child" ]; then
		kill -KILL "$child" 2>/dev/null
	else
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	RC=$?
	forget_pid "$pid"
}

# wait_client PID: wait for a client to end on its own.
wait_client() {
	local pid=$1
	wait "$pid" 2>/dev/null
	RC=$?
	forget_pid "$pid"
}

# --------------------------------------------------------------------------
# Tracker
# --------------------------------------------------------------------------

BIN=""
TRACKER_PORT=""
ADMIN_PORT=""
TRACKER_LOG=""

build_tracker() {
	BIN=$WORK/chihaya
	if ! (cd "$ROOT" && "$GO" build -o "$BIN" ./cmd/chihaya) >"$WORK/build.log" 2>&1; then
		fail "build: go build ./cmd/chihaya" "$(tail -n 20 "$WORK/build.log")"
		finish
	fi
	pass "build: go build ./cmd/chihaya"
}

# start_tracker NAME [EXTRA_JSON]: start the daemon on free loopback ports
# with short intervals. EXTRA_JSON is spliced into the config object (e.g.
# '"private_tracker": true,' for a private-mode case).
start_tracker() {
	local name=$1 extra=${2:-} dir=$WORK/$1
	mkdir -p "$dir"
	read -r TRACKER_PORT ADMIN_PORT <<<"$($TOOL free-ports 2)"
	cat >"$dir/config.json" <<EOF
{
  "addr": "127.0.0.1:$TRACKER_PORT",
  "admin_addr": "127.0.0.1:$ADMIN_PORT",
  $extra
  "announce": "$ANNOUNCE",
  "min_announce": "$MIN_ANNOUNCE",
  "peer_lifetime": "$PEER_LIFETIME",
  "purge_inactive_torrents": true
}
EOF
	TRACKER_LOG=$dir/tracker.log
	"$BIN" -config "$dir/config.json" -v=3 2>"$TRACKER_LOG" &
	TRACKER_PID=$!
	if ! $TOOL wait-up "http://127.0.0.1:$ADMIN_PORT/check" 10 >/dev/null; then
		fail "$name: tracker starts and answers /check" "$(tail -n 20 "$TRACKER_LOG")"
		return 1
	fi
	note "tracker pid $TRACKER_PID on 127.0.0.1:$TRACKER_PORT (admin $ADMIN_PORT)"
}

# stop_tracker NAME [EXPECTED]: SIGTERM by PID; it must shut down cleanly,
# must not have logged an error or a panic, and must have answered every
# request without a failure reason, except requests whose log line matches
# the extended regular expression EXPECTED (failures a case asked for).
stop_tracker() {
	local name=$1 expected=${2:-} rc bad
	kill -TERM "$TRACKER_PID" 2>/dev/null
	wait "$TRACKER_PID" 2>/dev/null
	rc=$?
	TRACKER_PID=""
	if [ "$rc" -eq 0 ] && grep -q 'shut down cleanly' "$TRACKER_LOG"; then
		pass "$name: tracker shuts down cleanly on SIGTERM"
	else
		fail "$name: tracker shuts down cleanly on SIGTERM (rc $rc)" "$(tail -n 10 "$TRACKER_LOG")"
	fi
	# -v=3 logs each request as "GET /path?query from addr: <error or <nil>>".
	bad=$({
		grep -E '^[EF][0-9]|panic' "$TRACKER_LOG"
		grep 'http\.go.*GET /' "$TRACKER_LOG" | grep -v ': <nil>$' |
			if [ -n "$expected" ]; then grep -vE -- "$expected"; else cat; fi
	} | head -n 10)
	local n
	n=$(grep -c 'http.go.*GET /' "$TRACKER_LOG")
	if [ -z "$bad" ] && [ "$n" -gt 0 ]; then
		pass "$name: tracker answered all $n requests without an error"
	else
		fail "$name: tracker answered all $n requests without an error" "$bad"
	fi
}

# check_loopback_only: every request the tracker saw came from 127.0.0.1,
# and aria2 (whose info log names each connection) connected to nothing else.
check_loopback_only() {
	local bad
	bad=$({
		grep 'http\.go.*GET /' "$WORK"/*/tracker.log | grep -v ' from 127\.0\.0\.1:[0-9]*: '
		cat "$WORK"/*/aria2-*.log.debug 2>/dev/null | grep -oE 'Connecting to [^ ]+' | grep -v 'Connecting to 127\.0\.0\.1:'
	} | head -n 10)
	if [ -z "$bad" ]; then
		pass "loopback only: the tracker saw only 127.0.0.1, aria2 connected only to 127.0.0.1"
	else
		fail "loopback only" "$bad"
	fi
}

# tracker_saw PORT EVENT: whether the tracker logged an announce (at
# /announce, or /<passkey>/announce in private mode) with event=EVENT from
# the client listening on PORT (-v=3 logs every request).
# (No grep -q at the end of the pipeline: exiting at the first match would
# SIGPIPE the greps before it, and pipefail would turn that into a "no".)
tracker_saw() {
	grep -E 'http\.go.*GET (/[^/ ]+)?/announce\?' "$TRACKER_LOG" | grep -E "[?&]port=$1([& ]|$)" |
		grep -E "[?&]event=$2([& ]|$)" >/dev/null
}

# PASSKEY_PATH: "" for the public tracker; a private-mode case sets it
# (local) to "/<passkey>" so that expect_scrape scrapes as that user.
PASSKEY_PATH=""
scrape_url() { echo "http://127.0.0.1:$TRACKER_PORT$PASSKEY_PATH/scrape"; }
announce_url() { echo "http://127.0.0.1:$TRACKER_PORT/announce"; }

# expect_scrape CHECK HASH SECONDS COND...: poll the scrape until the
# conditions hold; PASS or FAIL named CHECK.
expect_scrape() {
	local check=$1 hash=$2 secs=$3 out
	shift 3
	if out=$($TOOL wait-scrape "$(scrape_url)" "$hash" "$secs" "$@" 2>&1); then
		pass "$check ($out)"
		return 0
	fi
	fail "$check" "$out"
	return 1
}

# --------------------------------------------------------------------------
# MariaDB: a throw-away server for the private-mode case, started as
# internal/mariadbtest starts one: mariadb-install-db into a fresh data
# directory in the work directory, mariadbd on a free 127.0.0.1 port (and a
# Unix socket) and nowhere else, Gazelle's strict sql_mode, --user=root when
# root. Stopped by its PID in cleanup.
# --------------------------------------------------------------------------

MDB_PID=""
MDB_DIR=""
MDB_SOCK=""
MDB_SOCK_DIR="" # set when the socket had to go to a short directory of its own
MDB_PORT=""
MDB_DB=gazelle_test # the database backend/mysql/testdata/gazelle-min.sql creates
MDB_SQL_MODE="STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION,ONLY_FULL_GROUP_BY"

# mdb ARGS...: the mariadb client, as root over the socket, tab-separated
# output without column names.
mdb() {
	"$(find_bin mariadb mysql)" --no-defaults --protocol=socket --socket="$MDB_SOCK" -u root -N -B "$@"
}

# sql QUERY: run QUERY in the site database; prints the rows.
sql() { mdb "$MDB_DB" -e "$1"; }

# start_mariadb NAME: install a data directory, start mariadbd and wait until
# it answers (a port taken in between is retried on another, as mariadbtest
# does).
start_mariadb() {
	local name=$1 bin install deadline
	bin=$(find_bin mariadbd mysqld)
	install=$(find_bin mariadb-install-db mysql_install_db)
	if [ -z "$bin" ] || [ -z "$install" ]; then
		fail "$name: MariaDB server binaries (mariadbd, mariadb-install-db)" \
			"install them with: apt-get install -y --no-install-recommends mariadb-server mariadb-client"
		return 1
	fi
	MDB_DIR=$WORK/mariadb
	MDB_SOCK=$MDB_DIR/sock
	if [ ${#MDB_SOCK} -gt 100 ]; then # sun_path holds 108 bytes
		MDB_SOCK_DIR=$(mktemp -d /tmp/chihaya-mdb.XXXXXX)
		MDB_SOCK=$MDB_SOCK_DIR/sock
	fi
	# A temporary directory of its own: servers sharing /tmp remove each
	# other's temporary tables (see mariadbtest).
	mkdir -p "$MDB_DIR/tmp"
	local common=(--no-defaults --datadir="$MDB_DIR/data" --tmpdir="$MDB_DIR/tmp"
		--innodb-log-file-size=8M --innodb-buffer-pool-size=32M)
	[ "$(id -u)" -eq 0 ] && common+=(--user=root)
	if ! "$install" --no-defaults --auth-root-authentication-method=normal --skip-test-db "${common[@]:1}" \
		>"$MDB_DIR/install.log" 2>&1; then
		fail "$name: $install" "$(tail -n 20 "$MDB_DIR/install.log")"
		return 1
	fi
	for _ in 1 2 3; do
		MDB_PORT=$($TOOL free-ports 1)
		"$bin" "${common[@]}" --socket="$MDB_SOCK" --port="$MDB_PORT" --skip-networking=0 \
			--bind-address=127.0.0.1 --skip-name-resolve --pid-file="$MDB_DIR/mariadbd.pid" \
			--log-error="$MDB_DIR/error.log" --sql-mode="$MDB_SQL_MODE" \
			--character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
			--innodb-flush-log-at-trx-commit=2 --skip-log-bin --max-connections=500 \
			>"$MDB_DIR/mariadbd.out" 2>&1 </dev/null &
		MDB_PID=$!
		deadline=$((SECONDS + 60))
		while [ "$SECONDS" -lt "$deadline" ] && kill -0 "$MDB_PID" 2>/dev/null; do
			if mdb -e 'SELECT 1' >/dev/null 2>&1; then
				note "mariadbd pid $MDB_PID on 127.0.0.1:$MDB_PORT (socket $MDB_SOCK)"
				return 0
			fi
			sleep 0.2
		done
		stop_mariadb
	done
	fail "$name: mariadbd starts and answers" "$(cat "$MDB_DIR/mariadbd.out")" "$(tail -n 20 "$MDB_DIR/error.log")"
	return 1
}

# stop_mariadb: SIGTERM by PID; SIGKILL after 30 s.
stop_mariadb() {
	[ -n "$MDB_PID" ] || return 0
	local deadline=$((SECONDS + 30)) rc
	kill -TERM "$MDB_PID" 2>/dev/null
	while kill -0 "$MDB_PID" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
	kill -0 "$MDB_PID" 2>/dev/null && kill -KILL "$MDB_PID" 2>/dev/null
	wait "$MDB_PID" 2>/dev/null
	rc=$?
	MDB_PID=""
	return "$rc"
}

# --------------------------------------------------------------------------
# Clients. Each runs under timeout -k on its own port, in the background;
# the function sets CLIENT (the timeout wrapper's PID) and records it.
# --------------------------------------------------------------------------

CLIENT=""

# Clients run without proxy variables: aria2 and Transmission's libcurl would
# otherwise send the loopback tracker requests to a proxy.
NO_PROXY_ENV=(env -u http_proxy -u HTTP_PROXY -u https_proxy -u HTTPS_PROXY -u all_proxy -u ALL_PROXY
	-u ftp_proxy -u FTP_PROXY)

# aria2 DIR TORRENT PORT LOG SECONDS [extra options]
aria2() {
	local dir=$1 torrent=$2 port=$3 log=$4 secs=$5
	shift 5
	timeout -k 5 "$secs" "${NO_PROXY_ENV[@]}" aria2c --no-conf=true --dir="$dir" \
		--enable-dht=false --enable-dht6=false --bt-enable-lpd=false --enable-peer-exchange=false \
		--disable-ipv6=true --interface=127.0.0.1 --listen-port="$port" --seed-ratio=0.0 \
		--file-allocation=none --summary-interval=0 --console-log-level=notice \
		--log="$log.debug" --log-level=info \
		"$@" "$torrent" >"$log" 2>&1 </dev/null &
	CLIENT=$!
	CLIENT_PIDS+=("$CLIENT")
}

# transmission CFGDIR DIR TORRENT PORT LOG SECONDS: SIGINT ends it.
transmission() {
	local cfg=$1 dir=$2 torrent=$3 port=$4 log=$5 secs=$6
	mkdir -p "$cfg"
	sed "s/\"peer-port\": [0-9]*/\"peer-port\": $port/" "$E2E/transmission-settings.json" >"$cfg/settings.json"
	timeout -s INT -k 10 "$secs" "${NO_PROXY_ENV[@]}" transmission-cli -g "$cfg" -w "$dir" -p "$port" -M "$torrent" \
		>"$log" 2>&1 </dev/null &
	CLIENT=$!
	CLIENT_PIDS+=("$CLIENT")
}

# --------------------------------------------------------------------------
# Shared steps
# --------------------------------------------------------------------------

# make_payload DIR: a 1-4 MiB random file whose size is not a multiple of the
# piece size, so that the last piece is short; prints its path.
make_payload() {
	local dir=$1 size
	mkdir -p "$dir"
	size=$(((1 + RANDOM % 4) * 1048576 - 1 - RANDOM))
	head -c "$size" /dev/urandom >"$dir/payload.bin"
	echo "$dir/payload.bin"
}

# make_torrent FILE OUT [ANNOUNCE_URL [mktorrent options]]: a torrent
# announcing to ANNOUNCE_URL (default: the running tracker's /announce);
# prints its info_hash.
make_torrent() {
	local file=$1 out=$2 url=${3:-$(announce_url)}
	shift 2
	[ $# -gt 0 ] && shift
	mktorrent "$@" -a "$url" -o "$out" "$file" >"$out.log" 2>&1 || return 1
	$TOOL infohash "$out"
}

# wait_identical WANT GOT SECONDS WATCHPID: wait until GOT is byte-identical
# to WANT, or the deadline passes, or WATCHPID ends without it.
wait_identical() {
	local want=$1 got=$2 secs=$3 watch=$4 deadline=$((SECONDS + $3))
	while [ "$SECONDS" -lt "$deadline" ]; do
		[ -f "$got" ] && cmp -s "$want" "$got" && return 0
		if ! kill -0 "$watch" 2>/dev/null; then
			[ -f "$got" ] && cmp -s "$want" "$got" && return 0
			return 1
		fi
		sleep 0.5
	done
	return 1
}

# show_logs FILE...: the end of each log, for a failed check.
show_logs() {
	local f
	for f in "$@"; do
		[ -f "$f" ] || continue
		echo "---- tail of $f"
		tr '\r' '\n' <"$f" | grep -v '^Progress: ' | grep -v '^$' | tail -n 25
	done
}

rc_in() { # rc_in RC ALLOWED...
	local rc=$1 a
	shift
	for a in "$@"; do [ "$rc" = "$a" ] && return 0; done
	return 1
}

# --------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------

# aria2_to_transmission SEED_TORRENT LEECH_TORRENT [aria2 options...]
# The transfer both aria2-seeding cases share: aria2 seeds SEED_TORRENT from
# $d/seed on port $sp, transmission-cli leeches LEECH_TORRENT (the same
# torrent, or the leecher's own copy with its passkey) into $d/leech on port
# $lp, and the scrape must then show two seeders and a download. Uses and
# sets the calling case's locals (name d payload hash sp lp seeder leecher
# ok); returns non-zero when the case cannot go on.
aria2_to_transmission() {
	local seed_torrent=$1 leech_torrent=$2
	shift 2
	aria2 "$d/seed" "$seed_torrent" "$sp" "$d/aria2-seed.log" 150 --check-integrity=true "$@"
	seeder=$CLIENT
	expect_scrape "$name: seeder registered (aria2, left=0)" "$hash" 20 complete==1 incomplete==0 ||
		{ show_logs "$d/aria2-seed.log" "$TRACKER_LOG"; return 1; }

	transmission "$d/tr-cfg" "$d/leech" "$leech_torrent" "$lp" "$d/transmission-leech.log" 150
	leecher=$CLIENT
	if wait_identical "$payload" "$d/leech/payload.bin" "$TRANSFER_WAIT" "$leecher"; then
		pass "$name: transmission-cli downloaded a byte-identical file ($((SECONDS - SUITE_START))s)"
	else
		fail "$name: transmission-cli downloaded a byte-identical file" "$(show_logs "$d/aria2-seed.log" "$d/transmission-leech.log")"
		return 1
	fi

	# Transmission announces `completed` at its next announce (about 2 s).
	expect_scrape "$name: scrape after the transfer: 2 seeders, downloaded>=1" "$hash" 10 \
		complete==2 incomplete==0 downloaded\>=1 || ok=0
}

# public_case_files SEEDER_CLIENT LEECHER_CLIENT: what a public case starts
# from, in the calling case's locals (bash scoping): its directory $d, a
# payload and a torrent of it ($payload, $hash) and two free ports, $sp for
# the seeder and $lp for the leecher. Fails the case if mktorrent does.
public_case_files() {
	mkdir -p "$d"
	payload=$(make_payload "$d/seed")
	hash=$(make_torrent "$payload" "$d/test.torrent") || { fail "$name: mktorrent" "$(cat "$d/test.torrent.log")"; return 1; }
	read -r sp lp <<<"$($TOOL free-ports 2)"
	note "$name: $(stat -c %s "$payload") bytes, info_hash $hash, $1 port $sp, $2 port $lp"
}

# Case 1: aria2 seeds, transmission-cli leeches. Afterwards the seeder sends
# `stopped` (SIGINT, a graceful aria2 shutdown) and the leecher, by then a
# seeder too, vanishes (kill -9): the swarm must empty by stopped + expiry.
case_aria2_seeds_transmission_leeches() {
	local name="aria2->transmission" d=$WORK/case1 payload hash sp lp seeder leecher ok=1
	public_case_files aria2 transmission || return

	aria2_to_transmission "$d/test.torrent" "$d/test.torrent" --seed-time=3 || return

	stop_client "$seeder" INT
	rc_in "$RC" 0 || fail "$name: aria2 seeder exits 0 on SIGINT (rc $RC)" "$(show_logs "$d/aria2-seed.log")"
	if tracker_saw "$sp" stopped; then
		expect_scrape "$name: aria2's stopped removes it at once" "$hash" 4 complete==1 incomplete==0 || ok=0
	else
		fail "$name: aria2 sent stopped on SIGINT" "no event=stopped from port $sp in $TRACKER_LOG"
		ok=0
	fi

	vanish_client "$leecher"
	rc_in "$RC" 137 || note "$name: transmission wrapper rc $RC after kill -9"
	expect_scrape "$name: vanished transmission expires; swarm empty" "$hash" "$EXPIRY_WAIT" \
		complete==0 incomplete==0 || ok=0
	[ "$ok" = 1 ] || show_logs "$d/aria2-seed.log" "$d/transmission-leech.log"
}

# Case 2: transmission-cli seeds, aria2 leeches. aria2 seeds for a few
# seconds after its download (so that it announces `completed`), then ends on
# its own with `stopped`; transmission is stopped with SIGINT, after which
# Transmission 3.00 may or may not send `stopped`: either way the swarm must
# empty, by stopped or by expiry.
case_transmission_seeds_aria2_leeches() {
	local name="transmission->aria2" d=$WORK/case2 payload hash sp lp seeder leecher ok=1
	public_case_files transmission aria2 || return

	# Transmission checks the file it finds, then announces left=0 (after
	# its quirky leading `stopped`).
	transmission "$d/tr-cfg" "$d/seed" "$d/test.torrent" "$sp" "$d/transmission-seed.log" 150
	seeder=$CLIENT
	expect_scrape "$name: seeder registered (transmission, left=0)" "$hash" 20 complete==1 incomplete==0 ||
		{ show_logs "$d/transmission-seed.log"; return; }

	# --seed-time is in minutes: 0.25 = 15 s of seeding after the download.
	aria2 "$d/leech" "$d/test.torrent" "$lp" "$d/aria2-leech.log" 150 --seed-time=0.25
	leecher=$CLIENT
	if wait_identical "$payload" "$d/leech/payload.bin" "$TRANSFER_WAIT" "$leecher"; then
		pass "$name: aria2 downloaded a byte-identical file ($((SECONDS - SUITE_START))s)"
	else
		fail "$name: aria2 downloaded a byte-identical file" "$(show_logs "$d/transmission-seed.log" "$d/aria2-leech.log")"
		return
	fi

	expect_scrape "$name: scrape after the transfer: 2 seeders, downloaded>=1" "$hash" 10 \
		complete==2 incomplete==0 downloaded\>=1 || ok=0

	wait_client "$leecher"
	rc_in "$RC" 0 || fail "$name: aria2 ends 0 when its seed time is over (rc $RC)" "$(show_logs "$d/aria2-leech.log")"
	if tracker_saw "$lp" completed && tracker_saw "$lp" stopped; then
		expect_scrape "$name: aria2's stopped removes it at once" "$hash" 4 complete==1 incomplete==0 || ok=0
	else
		fail "$name: aria2 sent completed, then stopped at the end of its seed time" \
			"completed: $(tracker_saw "$lp" completed && echo yes || echo no), stopped: $(tracker_saw "$lp" stopped && echo yes || echo no)"
		ok=0
	fi

	# transmission-cli ends on SIGINT: 0 (or 130) when we send it, 124 had
	# timeout(1) sent it first.
	stop_client "$seeder" INT
	rc_in "$RC" 0 124 130 || fail "$name: transmission-cli ends on SIGINT (rc $RC)" "$(show_logs "$d/transmission-seed.log")"
	expect_scrape "$name: stopped transmission leaves (stopped or expiry); swarm empty" "$hash" "$EXPIRY_WAIT" \
		complete==0 incomplete==0 || ok=0
	[ "$ok" = 1 ] || show_logs "$d/transmission-seed.log" "$d/aria2-leech.log"
}

# Case 3: private mode, as a Gazelle site's tracker (see README "Replacing
# Ocelot"). A throw-away MariaDB holds the site (backend/mysql/testdata/
# gazelle-min.sql, the OPS "leech_stats" schema). The seeder's user is in the
# database when the tracker starts (loaded at start); the torrent and the
# leecher's user are added afterwards as Gazelle adds them: database rows,
# then the site update (add_torrent, add_user) on the admin listener. Each
# client's torrent announces to its own user's passkey URL (BEP 27 private
# torrents, one info_hash). aria2 seeds, transmission-cli leeches (it sends
# `completed`, which makes the snatch); then the database, flushed every
# second, must show the credit, the snatch and the peers. An unknown passkey
# gets Ocelot's "Passkey not found".

rand_hex32() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

PRIV_SECRET=$(rand_hex32)     # tracker_secret (Gazelle's TRACKER_SECRET)
PRIV_REPORT=$(rand_hex32)     # report_secret (TRACKER_REPORTKEY)
PRIV_SEEDER_PK=$(rand_hex32)  # users_main.torrent_pass of the seeder's user
PRIV_LEECHER_PK=$(rand_hex32) # ... of the leecher's user
PRIV_BAD_PK=$(rand_hex32)     # nobody's
PRIV_SEEDER_UID=7
PRIV_LEECHER_UID=8
PRIV_TID=42 # torrents.ID

# private_site NAME: the site's database, with the seeder's user, before the
# tracker starts.
private_site() {
	local name=$1 out
	if ! out=$(mdb <"$ROOT/backend/mysql/testdata/gazelle-min.sql" 2>&1 &&
		sql "INSERT INTO users_main (ID, torrent_pass, Enabled) VALUES ($PRIV_SEEDER_UID, '$PRIV_SEEDER_PK', '1');
			INSERT INTO users_leech_stats (UserID) VALUES ($PRIV_SEEDER_UID);" 2>&1); then
		fail "$name: site database (gazelle-min.sql, the seeder's user)" "$out"
		return 1
	fi
	pass "$name: site database on MariaDB $(mdb -e 'SELECT VERSION()' 2>/dev/null) (gazelle-min.sql, strict sql_mode, the seeder's user)"
}

private_config() {
	cat <<EOF2
"private_tracker": true,
  "tracker_secret": "$PRIV_SECRET",
  "report_secret": "$PRIV_REPORT",
  "backend": {"driver": "mysql", "params": {
    "dsn": "root@tcp(127.0.0.1:$MDB_PORT)/$MDB_DB",
    "schema": "leech_stats",
    "flush_interval": "1s"}},
EOF2
}

# site_update QUERY: the site's update call; prints the body ("success").
site_update() { $TOOL get "http://127.0.0.1:$ADMIN_PORT/$PRIV_SECRET/update?$1" 2>&1; }

# private_counters: one line, "seederUp seederDown leecherUp leecherDown
# snatched snatchRows allSnatchRows peerUsers".
private_counters() {
	sql "SELECT
		(SELECT Uploaded FROM users_leech_stats WHERE UserID = $PRIV_SEEDER_UID),
		(SELECT Downloaded FROM users_leech_stats WHERE UserID = $PRIV_SEEDER_UID),
		(SELECT Uploaded FROM users_leech_stats WHERE UserID = $PRIV_LEECHER_UID),
		(SELECT Downloaded FROM users_leech_stats WHERE UserID = $PRIV_LEECHER_UID),
		(SELECT Snatched FROM torrents_leech_stats WHERE TorrentID = $PRIV_TID),
		(SELECT COUNT(*) FROM xbt_snatched WHERE uid = $PRIV_LEECHER_UID AND fid = $PRIV_TID AND IP = '127.0.0.1'),
		(SELECT COUNT(*) FROM xbt_snatched),
		(SELECT COUNT(DISTINCT uid) FROM xbt_files_users WHERE fid = $PRIV_TID AND uid IN ($PRIV_SEEDER_UID, $PRIV_LEECHER_UID))" 2>&1 |
		tr '\t' ' '
}

PRIV_SIZE=""
PRIV_TRANSFERRED="" # set once the case has reached its database checks

# private_db_checks NAME WHEN SECONDS: poll the database (the tracker flushes every
# second) until the counters are what the transfer must have left, or the
# deadline; then one PASS or FAIL per fact.
#
# The credit is what the clients themselves reported (uploaded/downloaded in
# their announces), not what the tracker measured. On loopback with one
# seeder and one leecher both should be about the file size; the bounds
# leave slack: at least 90% (a client may count only the payload of pieces
# it has verified, or send its last announce with a block still in flight)
# and at most 150% (a tracker that credited an announce twice would double
# it; Transmission counts re-requested blocks too, but there are few on
# loopback).
private_db_checks() {
	local name=$1 when=$2 deadline=$(($3 + SECONDS)) su sd lu ld sn rows all peers c
	local lo=$((PRIV_SIZE * 9 / 10)) hi=$((PRIV_SIZE * 3 / 2))
	while :; do
		c=$(private_counters)
		read -r su sd lu ld sn rows all peers <<<"$c"
		if [[ "$su $sd $ld $sn $rows $all $peers" =~ ^[0-9\ ]+$ ]] &&
			[ "$su" -ge "$lo" ] && [ "$su" -le "$hi" ] && [ "$sd" -eq 0 ] &&
			[ "$ld" -ge "$lo" ] && [ "$ld" -le "$hi" ] &&
			[ "$sn" -eq 1 ] && [ "$rows" -eq 1 ] && [ "$all" -eq 1 ] && [ "$peers" -eq 2 ]; then
			break
		fi
		[ "$SECONDS" -ge "$deadline" ] && break
		sleep 0.5
	done
	if ! [[ "$su $sd $lu $ld $sn $rows $all $peers" =~ ^[0-9\ ]+$ ]]; then
		fail "$name: database $when: counters readable" "$c"
		return 1
	fi
	local ok=0
	if [ "$su" -ge "$lo" ] && [ "$su" -le "$hi" ] && [ "$sd" -eq 0 ]; then
		pass "$name: database $when: seeder's users_leech_stats Uploaded $su (file $PRIV_SIZE), Downloaded $sd"
	else
		fail "$name: database $when: seeder's users_leech_stats Uploaded in [$lo, $hi], Downloaded 0" "Uploaded $su, Downloaded $sd"
		ok=1
	fi
	if [ "$ld" -ge "$lo" ] && [ "$ld" -le "$hi" ]; then
		pass "$name: database $when: leecher's users_leech_stats Downloaded $ld (file $PRIV_SIZE), Uploaded $lu"
	else
		fail "$name: database $when: leecher's users_leech_stats Downloaded in [$lo, $hi]" "Downloaded $ld, Uploaded $lu"
		ok=1
	fi
	if [ "$sn" -eq 1 ] && [ "$rows" -eq 1 ] && [ "$all" -eq 1 ]; then
		pass "$name: database $when: torrents_leech_stats.Snatched 1, one xbt_snatched row (leecher, IP 127.0.0.1)"
	else
		fail "$name: database $when: torrents_leech_stats.Snatched 1, one xbt_snatched row (leecher, IP 127.0.0.1)" \
			"Snatched $sn; xbt_snatched rows for the leecher from 127.0.0.1: $rows, in all: $all" \
			"$(sql 'SELECT * FROM xbt_snatched' 2>&1)"
		ok=1
	fi
	if [ "$peers" -eq 2 ]; then
		pass "$name: database $when: xbt_files_users has both users' peers"
	else
		fail "$name: database $when: xbt_files_users has both users' peers" "$(sql 'SELECT uid, fid, active, completed, uploaded, downloaded, remaining, ip FROM xbt_files_users' 2>&1)"
		ok=1
	fi
	return "$ok"
}

case_private_passkey() {
	local name="private" d=$WORK/case3 payload hash lhash sp lp seeder leecher out ok=1
	local seeder_url="http://127.0.0.1:$TRACKER_PORT/$PRIV_SEEDER_PK/announce"
	local leecher_url="http://127.0.0.1:$TRACKER_PORT/$PRIV_LEECHER_PK/announce"
	mkdir -p "$d"
	payload=$(make_payload "$d/seed")
	PRIV_SIZE=$(stat -c %s "$payload")
	# Same file, same piece length (-l 18: 256 KiB), both private: the same
	# info dict, so one info_hash; only the announce URLs differ.
	hash=$(make_torrent "$payload" "$d/seeder.torrent" "$seeder_url" -p -l 18) ||
		{ fail "$name: mktorrent (seeder)" "$(cat "$d/seeder.torrent.log")"; return; }
	lhash=$(make_torrent "$payload" "$d/leecher.torrent" "$leecher_url" -p -l 18) ||
		{ fail "$name: mktorrent (leecher)" "$(cat "$d/leecher.torrent.log")"; return; }
	if [ "$hash" = "$lhash" ] && grep -q '7:privatei1e' "$d/seeder.torrent" && grep -q '7:privatei1e' "$d/leecher.torrent" &&
		grep -qF "$PRIV_SEEDER_PK/announce" "$d/seeder.torrent" && grep -qF "$PRIV_LEECHER_PK/announce" "$d/leecher.torrent"; then
		pass "$name: seeder's and leecher's torrents: private, own passkey URLs, one info_hash"
	else
		fail "$name: seeder's and leecher's torrents: private, own passkey URLs, one info_hash" "seeder $hash, leecher $lhash"
		return
	fi
	read -r sp lp <<<"$($TOOL free-ports 2)"
	note "$name: $PRIV_SIZE bytes, info_hash $hash, aria2 port $sp, transmission port $lp"

	# The upload, as Gazelle does it: the rows, then the tracker is told.
	if out=$(sql "INSERT INTO torrents (ID, info_hash, FreeTorrent, Size) VALUES ($PRIV_TID, UNHEX('$hash'), '0', $PRIV_SIZE);
			INSERT INTO torrents_leech_stats (TorrentID) VALUES ($PRIV_TID);
			INSERT INTO users_main (ID, torrent_pass, Enabled) VALUES ($PRIV_LEECHER_UID, '$PRIV_LEECHER_PK', '1');
			INSERT INTO users_leech_stats (UserID) VALUES ($PRIV_LEECHER_UID);" 2>&1) &&
		[ "$(site_update "action=add_torrent&id=$PRIV_TID&info_hash=$($TOOL quote "$hash")&freetorrent=0")" = success ] &&
		[ "$(site_update "action=add_user&passkey=$PRIV_LEECHER_PK&id=$PRIV_LEECHER_UID&visible=1")" = success ]; then
		pass "$name: site adds the torrent and the leecher (rows, then /update add_torrent and add_user: success)"
	else
		fail "$name: site adds the torrent and the leecher (rows, then /update add_torrent and add_user: success)" "$out" "$(tail -n 5 "$TRACKER_LOG")"
		return
	fi

	out=$($TOOL announce "http://127.0.0.1:$TRACKER_PORT/$PRIV_BAD_PK/announce" "$hash" 2>&1)
	if [ "$out" = "failure reason: Passkey not found" ]; then
		pass "$name: an unknown passkey gets \"Passkey not found\""
	else
		fail "$name: an unknown passkey gets \"Passkey not found\"" "got: $out"
	fi

	local PASSKEY_PATH=/$PRIV_SEEDER_PK # expect_scrape scrapes as the seeder's user
	aria2_to_transmission "$d/seeder.torrent" "$d/leecher.torrent" || return
	if ! tracker_saw "$lp" completed; then
		fail "$name: transmission-cli sent completed" "no event=completed from port $lp in $TRACKER_LOG"
		ok=0
	fi

	# Both stop: aria2 sends `stopped` with its final counters; Transmission
	# may or may not (its `completed` already carried its download).
	stop_client "$seeder" INT
	rc_in "$RC" 0 || fail "$name: aria2 seeder exits 0 on SIGINT (rc $RC)" "$(show_logs "$d/aria2-seed.log")"
	tracker_saw "$sp" stopped || { fail "$name: aria2 sent stopped on SIGINT" "no event=stopped from port $sp"; ok=0; }
	stop_client "$leecher" INT
	rc_in "$RC" 0 124 130 || fail "$name: transmission-cli ends on SIGINT (rc $RC)" "$(show_logs "$d/transmission-leech.log")"

	# A flush or more (every second): first look after 3 s, then poll.
	sleep 3
	PRIV_TRANSFERRED=1
	private_db_checks "$name" "after the flushes" 10 || ok=0
	[ "$ok" = 1 ] || show_logs "$d/aria2-seed.log" "$d/transmission-leech.log"
}

# run_case FUNCTION: run one case, then stop (by PID) any client it left
# running, e.g. after an early failure.
run_case() {
	"$1"
	local pid
	for pid in "${CLIENT_PIDS[@]}"; do
		stop_client "$pid" TERM
	done
}

# --------------------------------------------------------------------------

main() {
	echo "chihaya end-to-end suite (aria2, transmission-cli; loopback only)"
	ensure_tools
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/chihaya-e2e.XXXXXX")
	build_tracker

	if start_tracker public; then
		run_case case_aria2_seeds_transmission_leeches
		run_case case_transmission_seeds_aria2_leeches
		stop_tracker public
	fi
	# Private mode: its own MariaDB and tracker. The deliberate unknown
	# passkey is the one request allowed to fail.
	if start_mariadb private && private_site private && start_tracker private "$(private_config)"; then
		run_case case_private_passkey
		stop_tracker private "GET /$PRIV_BAD_PK/announce\\?.*: Passkey not found\$"
		# The flush at shutdown must not count anything a second time.
		[ "$PRIV_TRANSFERRED" = 1 ] && private_db_checks private "after the tracker stopped" 0
	fi
	stop_mariadb
	check_loopback_only
	note "done"
	finish
}

main "$@"
