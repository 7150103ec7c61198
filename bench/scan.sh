#!/usr/bin/env bash
# bench/scan.sh: throughput, recall and precision of `latch scan` beside
# gitleaks and `grep -F` over the same prefixes, on one generated corpus.
#
#   bench/scan.sh [SIZE_MB]      default 200; e.g. bench/scan.sh 20 for a quick check
#
# The corpus (bench/corpus/, gitignored) is source text copied from the Go
# distribution, with PER_KIND (default 50) credentials of every kind latch
# detects planted in realistic lines, the same number of look-alikes of every
# sort (wrong checksums, hashes, UUIDs, base64, unlabelled pairs, truncated
# keys), and a truth file. It is made again only when SIZE_MB or PER_KIND
# change. gitleaks is installed with `go install` into bench/corpus/.bin when
# it is not on PATH; if that fails the script says "gitleaks unavailable" and
# goes on. Set GITLEAKS=0 to skip it, GITLEAKS_TIMEOUT (seconds, default 900)
# to bound it.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MB=${1:-${SIZE_MB:-200}}
PER_KIND=${PER_KIND:-50}
CORPUS=bench/corpus
BIN=$CORPUS/.bin
OUT=$CORPUS/out
FILES=$CORPUS/_files
mkdir -p "$BIN" "$OUT"

go build -o "$BIN/latch" ./cmd/latch
go build -o "$BIN/benchtool" ./scan/internal/benchtool

STAMP="$SIZE_MB $PER_KIND $(sha256sum "$BIN/benchtool" | cut -c1-16)"
if [ ! -f "$CORPUS/.stamp" ] || [ "$(cat "$CORPUS/.stamp")" != "$STAMP" ] || [ ! -d "$FILES" ]; then
	"$BIN/benchtool" gen -out "$CORPUS" -size "$SIZE_MB" -per-kind "$PER_KIND"
	echo "$STAMP" >"$CORPUS/.stamp"
fi

BYTES=$(find "$FILES" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
NFILES=$(find "$FILES" -type f | wc -l)
PLANTED=$(grep -vc '^#' "$CORPUS/truth.tsv")
MB=$(awk -v b="$BYTES" 'BEGIN {printf "%.1f", b / 1e6}')
echo "corpus: $MB MB in $NFILES files, $PLANTED planted credentials, look-alikes of every sort; $(nproc) cores"
# Warm the page cache so that every tool reads from memory.
find "$FILES" -type f -exec cat {} + >/dev/null

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }
mbps() { awk -v b="$BYTES" -v s="$1" 'BEGIN {if (s <= 0) print "-"; else if (b / 1e6 / s < 10) printf "%.1f", b / 1e6 / s; else printf "%.0f", b / 1e6 / s}'; }
ROWS=()
row() { # name seconds report format
	local acc="-" rec="-" prec="-"
	if [ -n "${3:-}" ]; then
		acc=$("$BIN/benchtool" score -truth "$CORPUS/truth.tsv" -format "$4" "$3")
		rec=$(awk '{print $2}' <<<"$acc")
		prec=$(awk '{print $5}' <<<"$acc")
	fi
	ROWS+=("$(printf '%-26s %8s %8s %8s %10s' "$1" "$2" "$(mbps "$2")" "$rec" "$prec")")
}

# latch scan on every core, then on one.
t0=$(now)
"$BIN/latch" scan -q --format json --show-secrets --max-size 0 "$FILES" >"$OUT/latch.json" || [ $? -eq 1 ]
t1=$(now)
row "latch scan ($(nproc) workers)" "$(secs "$t0" "$t1")" "$OUT/latch.json" latch
t0=$(now)
"$BIN/latch" scan -q --workers 1 --format json --show-secrets --max-size 0 "$FILES" >/dev/null || [ $? -eq 1 ]
t1=$(now)
row "latch scan (1 worker)" "$(secs "$t0" "$t1")"

# grep -F over the same literal prefixes (one thread).
t0=$(now)
grep -rnoF -f "$CORPUS/prefixes.txt" "$FILES" >"$OUT/grep.txt" || [ $? -eq 1 ]
t1=$(now)
row "grep -rnoF (prefixes)" "$(secs "$t0" "$t1")" "$OUT/grep.txt" grep

# gitleaks, default rules.
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
		rm -f "$OUT/gitleaks.json"
		if "$GL" dir --help >/dev/null 2>&1; then
			glcmd=("$GL" dir "$FILES")
		else
			glcmd=("$GL" detect --no-git --source "$FILES")
		fi
		t0=$(now)
		timeout "${GITLEAKS_TIMEOUT:-900}" "${glcmd[@]}" --no-banner --log-level error --exit-code 0 \
			--report-format json --report-path "$OUT/gitleaks.json" || echo "gitleaks failed or timed out"
		t1=$(now)
		if [ -s "$OUT/gitleaks.json" ]; then
			row "gitleaks $GLV" "$(secs "$t0" "$t1")" "$OUT/gitleaks.json" gitleaks
		else
			row "gitleaks $GLV (no report)" "$(secs "$t0" "$t1")"
		fi
	else
		echo "gitleaks unavailable"
	fi
fi

echo
printf '%-26s %8s %8s %8s %10s\n' tool seconds MB/s recall precision
printf '%s\n' "${ROWS[@]}"
echo
echo "latch recall by kind:"
"$BIN/benchtool" score -kinds -truth "$CORPUS/truth.tsv" -format latch "$OUT/latch.json" | tail -n +2
if [ -s "$OUT/gitleaks.json" ]; then
	echo "gitleaks recall by kind:"
	"$BIN/benchtool" score -kinds -truth "$CORPUS/truth.tsv" -format gitleaks "$OUT/gitleaks.json" | tail -n +2
fi
