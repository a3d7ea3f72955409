#!/bin/sh
# tests/layers.sh - the engine's files form floors, not a circle
# (csrc/engine/queue.h): compile each engine file on its own, take the
# symbols it defines and the ones it uses (nm), draw an arrow from a file
# to every file defining a symbol it uses, and fail if the arrows close a
# loop.  Prints the files floor by floor, lowest first.  Run from the
# repository root: sh tests/layers.sh (make check-layers).
set -eu
CC=${CC:-cc}
out=${TMPDIR:-/tmp}/kq-layers.$$
mkdir -p "$out"
trap 'rm -rf "$out"' EXIT INT TERM

srcs=$(sed -n 's/\\$//; /^ENGINE_SRC *=/,/^[^	]/p' csrc/sources.mk |
	tr ' \t' '\n\n' | grep '^csrc/engine/.*\.c$')
[ -n "$srcs" ] || { echo "layers: no engine sources in csrc/sources.mk"; exit 1; }

for s in $srcs; do
	b=$(basename "$s" .c)
	$CC -std=c99 -D_GNU_SOURCE -O0 -c -o "$out/$b.o" "$s"
	nm "$out/$b.o" | awk -v f="$b" '$2 ~ /^[TDBRC]$/ { print $3, f }' >>"$out/defs"
	nm "$out/$b.o" | awk -v f="$b" '$1 == "U" { print f, $2 }' >>"$out/uses"
done

# file -> file, once per pair; a file's own symbols are no arrow.
awk 'NR == FNR { def[$1] = $2; next }
     ($2 in def) && def[$2] != $1 { print $1, def[$2] }' \
	"$out/defs" "$out/uses" | sort -u >"$out/edges"

# Every file stands in the graph, even one with no arrow.
for s in $srcs; do b=$(basename "$s" .c); echo "$b $b"; done >>"$out/edges"

if ! tsort "$out/edges" >"$out/order" 2>"$out/loop"; then
	echo "layers: the engine's files call each other in a circle:"
	cat "$out/loop"
	exit 1
fi

# Floors: a file stands one above the highest file it calls.
awk 'NR == FNR { if ($1 != $2) calls[$1] = calls[$1] " " $2; next }
     { order[++n] = $1 }
     END {
	for (i = n; i >= 1; i--) {
		f = order[i]; h = 0
		m = split(calls[f], c, " ")
		for (j = 1; j <= m; j++) if (floor[c[j]] + 1 > h) h = floor[c[j]] + 1
		floor[f] = h; if (h > top) top = h
	}
	for (k = 0; k <= top; k++) {
		line = ""
		for (i = 1; i <= n; i++) if (floor[order[i]] == k) line = line " " order[i]
		printf "floor %d:%s\n", k + 1, line
	}
     }' "$out/edges" "$out/order"
echo "layers: no circle among $(echo "$srcs" | wc -w) engine files"
