#!/usr/bin/env bash
# bench/history.sh: time `latch scan --git` against `gitleaks git` on one
# generated repository with a long history.
#
#   bench/history.sh             COMMITS=10000 FILES=300 TOKENS=60 by default
#   COMMITS=2000 bench/history.sh   a quicker check
#
# The repository (bench/corpus/_history/repo, gitignored; the leading
# underscore keeps its .go files out of `go build ./...`) is written with
# `git fast-import` from a stream made by bench/internal/histgen: FILES
# source-like files (Go, and every tenth a YAML configuration file), then
# COMMITS-1 commits each editing one to four of them by a few lines, with
# TOKENS valid latch tokens (every kind in turn) added at evenly spaced commits
# in realistic lines, every other one deleted again some commits later. The
# history is deterministic and made again only when a parameter or the
# generator changes. gitleaks is installed with `go install` into
# bench/corpus/.bin when it is not on PATH; if that fails the script says
# "gitleaks unavailable" and goes on. Set GITLEAKS=0 to skip it,
# GITLEAKS_TIMEOUT (seconds, default 900) to bound it, RUNS (default 2) for the
# number of runs of each tool (the best is kept).
set -euo pipefail
cd "$(dirname "$0")/.."

COMMITS=${COMMITS:-10000}
FILES=${FILES:-300}
TOKENS=${TOKENS:-60}
RUNS=${RUNS:-2}
CORPUS=bench/corpus
BIN=$CORPUS/.bin
HIST=$CORPUS/_history
REPO=$HIST/repo
OUT=$HIST/out
mkdir -p "$BIN" "$HIST" "$OUT"

go build -o "$BIN/latch" ./cmd/latch
go build -o "$BIN/histgen" ./bench/internal/histgen

STAMP="$COMMITS $FILES $TOKENS $(sha256sum "$BIN/histgen" | cut -c1-16)"
if [ ! -f "$HIST/.stamp" ] || [ "$(cat "$HIST/.stamp")" != "$STAMP" ] || [ ! -d "$REPO/.git" ]; then
	echo "generating $COMMITS commits with git fast-import…"
	rm -rf "$REPO" "$HIST/.stamp"
	git init -q -b main "$REPO"
	"$BIN/histgen" gen -commits "$COMMITS" -files "$FILES" -tokens "$TOKENS" -planted "$HIST/planted.txt" |
		git -C "$REPO" fast-import --quiet
	git -C "$REPO" reset -q --hard
	git -C "$REPO" gc -q
	echo "$STAMP" >"$HIST/.stamp"
fi

NCOMMITS=$(git -C "$REPO" rev-list --count --all)
PACK=$(du -sk "$REPO/.git/objects" | awk '{printf "%.1f", $1 / 1024}')
PLANTED=$(grep -c . "$HIST/planted.txt")
echo "repository: $NCOMMITS commits, $(git -C "$REPO" ls-files | wc -l) files at HEAD, $PACK MiB of objects, $PLANTED planted tokens; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
# Warm the page cache.
cat "$REPO"/.git/objects/pack/* >/dev/null

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }
best() { awk -v a="$1" -v b="$2" 'BEGIN {print (a == "" || b + 0 < a + 0) ? b : a}'; }
ROWS=()

# latch: every unique blob once.
LT=
for _ in $(seq "$RUNS"); do
	t0=$(now)
	"$BIN/latch" scan -q --git "$REPO" --format json --show-secrets >"$OUT/latch.json" || [ $? -eq 1 ]
	t1=$(now)
	LT=$(best "$LT" "$(secs "$t0" "$t1")")
done
read -r LN LP _ < <("$BIN/histgen" count -planted "$HIST/planted.txt" -format latch "$OUT/latch.json")
BLOBS=$(grep -o '"files": *[0-9]*' "$OUT/latch.json" | grep -o '[0-9]*$')
BYTES=$(grep -o '"bytes": *[0-9]*' "$OUT/latch.json" | grep -o '[0-9]*$')
ROWS+=("$(printf '%-24s %8s %9s %14s' "latch scan --git" "$LT" "$LN" "$LP/$PLANTED")")

# For reference: what each tool has Git produce.
t0=$(now)
git -C "$REPO" log -p -U0 --full-history --all --diff-filter=tuxdb | wc -c >"$OUT/patch-bytes"
t1=$(now)
PT=$(secs "$t0" "$t1")

# gitleaks, default rules.
GT=
if [ "${GITLEAKS:-1}" != 0 ]; then
	GL=$(command -v gitleaks || true)
	[ -z "$GL" ] && [ -x "$BIN/gitleaks" ] && GL=$BIN/gitleaks
	if [ -z "$GL" ]; then
		echo "installing gitleaks with go install…"
		if GOBIN="$PWD/$BIN" go install github.com/zricethezav/gitleaks/v8@latest >"$OUT/gitleaks-install.log" 2>&1; then
			GL=$BIN/gitleaks
		fi
	fi
	if [ -n "$GL" ]; then
		GLV=$(go version -m "$GL" 2>/dev/null | awk '$1 == "mod" {print $3}')
		[ -n "$GLV" ] || GLV=$("$GL" version 2>/dev/null || echo "?")
		if "$GL" git --help >/dev/null 2>&1; then
			glcmd=("$GL" git "$REPO")
		else
			glcmd=("$GL" detect --source "$REPO")
		fi
		for _ in $(seq "$RUNS"); do
			rm -f "$OUT/gitleaks.json"
			t0=$(now)
			timeout "${GITLEAKS_TIMEOUT:-900}" "${glcmd[@]}" --no-banner --log-level error --exit-code 0 \
				--report-format json --report-path "$OUT/gitleaks.json" || echo "gitleaks failed or timed out"
			t1=$(now)
			GT=$(best "$GT" "$(secs "$t0" "$t1")")
		done
		if [ -s "$OUT/gitleaks.json" ]; then
			read -r GN GP _ < <("$BIN/histgen" count -planted "$HIST/planted.txt" -format gitleaks "$OUT/gitleaks.json")
			ROWS+=("$(printf '%-24s %8s %9s %14s' "gitleaks $GLV git" "$GT" "$GN" "$GP/$PLANTED")")
		else
			ROWS+=("$(printf '%-24s %8s %9s %14s' "gitleaks $GLV (no report)" "$GT" - -)")
			GT=
		fi
	else
		echo "gitleaks unavailable"
	fi
fi

echo
echo "latch read $BLOBS unique blobs, $(awk -v b="$BYTES" 'BEGIN {printf "%.1f", b / 1048576}') MiB; \`git log -p -U0 --full-history --all\` (what gitleaks reads) is $(awk -v b="$(cat "$OUT/patch-bytes")" 'BEGIN {printf "%.1f", b / 1048576}') MiB and takes ${PT} s alone"
echo "best of $RUNS runs each:"
printf '%-24s %8s %9s %14s\n' tool seconds findings "planted found"
printf '%s\n' "${ROWS[@]}"
if [ -n "$GT" ]; then
	echo
	awk -v g="$GT" -v l="$LT" 'BEGIN {if (l > 0) printf "latch is %.1f× faster than gitleaks\n", g / l}'
fi
