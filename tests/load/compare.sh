#!/bin/sh
# tests/load/compare.sh: the load tests of spec/servers_spec.lua against the
# kq examples and the luv baseline (tests/load/luv_server.lua), one table
# for doc/servers.md: the client's time and the server's peak RSS for each
# run, and what an idle keep-alive connection costs.
#
#   sh tests/load/compare.sh [LUA]        (default lua5.4; run `make` first)
#
# Times depend on the machine and what else runs on it; the RSS figures do
# not, much.  Uses /proc (Linux).
set -u
LUA=${1:-lua5.4}
ulimit -n 30000 2>/dev/null || ulimit -n 20000 2>/dev/null ||
	ulimit -n 8192 2>/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
LIMITS="--slice 16384 --max-output 65536"

# run NAME "server command" MODE "client options"
run() {
	$2 >"$tmp/out" 2>"$tmp/err" &
	spid=$!
	i=0
	while ! grep -q LISTENING "$tmp/out" && [ $i -lt 100 ]; do
		sleep 0.1; i=$((i + 1))
	done
	port=$(sed -n 's/^LISTENING .*:\([0-9]*\).*/\1/p' "$tmp/out")
	base=$(awk '/VmRSS/ {print $2}' /proc/$spid/status)
	if [ "$3" = idle ]; then
		$LUA tests/load/client.lua idle 127.0.0.1:$port $4 >"$tmp/client" 2>&1 &
		cpid=$!
		i=0
		while ! grep -q HOLDING "$tmp/client" && [ $i -lt 600 ]; do
			sleep 0.1; i=$((i + 1))
		done
		sleep 0.5
		held=$(awk '/VmRSS/ {print $2}' /proc/$spid/status)
		wait $cpid
		line=$(grep "^idle " "$tmp/client")
		extra=$(echo "$line" | awk -v b="$base" -v h="$held" '{
			n = substr($2, 7); printf "idle RSS %d kB, %d B a connection", h - b, (h - b) * 1024 / n }')
	else
		line=$($LUA tests/load/client.lua $3 127.0.0.1:$port $4 2>&1 | tail -n 1)
		extra="peak RSS $(awk '/VmHWM/ {print $2}' /proc/$spid/status) kB"
	fi
	kill -TERM $spid
	wait $spid
	secs=$(echo "$line" | sed -n 's/.* seconds=\([0-9.]*\).*/\1/p')
	verdict=$(echo "$line" | sed -n 's/.* ok=\([0-9]*\) failed=\([0-9]*\) stalls=\([0-9]*\).*/ok \1, failed \2, stalls \3/p')
	printf '| %s | %s | %s s | %s | %s |\n' "$1" "$3 $4" "$secs" "$extra" "$verdict"
}

echo "| server | load | client time | memory | verdict |"
echo "|---|---|---|---|---|"
for s in kq luv; do
	if [ $s = kq ]; then
		echo_cmd="$LUA examples/echo_server.lua $LIMITS --max-conns 20000"
		http_cmd="$LUA examples/http_server.lua --workers 0 $LIMITS --max-conns 20000"
	else
		echo_cmd="$LUA tests/load/luv_server.lua echo --max-output 65536"
		http_cmd="$LUA tests/load/luv_server.lua http --max-output 65536"
	fi
	run "$s echo" "$echo_cmd" pingpong "--conns 1000 --rounds 50"
	run "$s echo" "$echo_cmd" stream "--conns 1000 --bytes 65536"
	run "$s echo" "$echo_cmd" stream "--conns 4 --bytes 67108864"
	run "$s http" "$http_cmd" http "--conns 1000 --rounds 20"
	run "$s http" "$http_cmd" idle "--conns 10000"
done
