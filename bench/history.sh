#!/usr/bin/env bash
# bench/history.sh: time `latch scan --git` against `gitleaks git` on a
# generated repository with a long history.
#
#   bench/history.sh                  PROFILE=edit COMMITS=10000 FILES=300 TOKENS=60 by default
#   PROFILE=add bench/history.sh      commits that add new files instead
#   PROFILE=both bench/history.sh     edit, then add, then a summary of both
#   COMMITS=2000 bench/history.sh     a quicker check
#
# Each profile's repository (bench/corpus/_history/repo for edit,
# bench/corpus/_history-add/repo for add; gitignored, and the leading
# underscore keeps their .go files out of `go build ./...`) is written with
# `git fast-import` from a stream made by bench/internal/histgen: FILES
# source-like files (Go, and every tenth a YAML configuration file), then
# COMMITS-1 commits that
#   - edit: each edit one to four of the files by a few lines, as ordinary
#     development does;
#   - add: each add one new file of ADD_MIN to ADD_MAX bytes (default 8192 to
#     16384; Go, every eighth YAML), as vendored or generated code arrives,
#     every fourth also editing an existing file by a few lines;
# with TOKENS valid latch tokens (every kind in turn) added at evenly spaced
# commits in realistic lines, every other one deleted again some commits
# later. The repository is then repacked with `git repack -adf`, as a clone
# or a gc would store it (REPACK=0 keeps the pack fast-import wrote, whose
# deltas are against unrelated blobs). The history is deterministic and made
# again only when a parameter or the generator changes. gitleaks is installed with `go install` into
# bench/corpus/.bin when it is not on PATH; if that fails the script says
# "gitleaks unavailable" and goes on. Set GITLEAKS=0 to skip it,
# GITLEAKS_TIMEOUT (seconds, default 600) to bound each of its runs (a run that
# hits it is reported as timed out and not repeated), RUNS (default 2) for
# the number of runs of each tool (the best is kept). For reference it also
# times what Git takes to make the patch gitleaks reads and to list every
# object of the history (`git rev-list --all --objects`), a floor for any
# scanner that names each blob with the commit and path that introduced it.
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILE=${PROFILE:-edit}
COMMITS=${COMMITS:-10000}
FILES=${FILES:-300}
TOKENS=${TOKENS:-60}
ADD_MIN=${ADD_MIN:-8192}
ADD_MAX=${ADD_MAX:-16384}
RUNS=${RUNS:-2}
REPACK=${REPACK:-1}
GITLEAKS_TIMEOUT=${GITLEAKS_TIMEOUT:-600}
CORPUS=bench/corpus
BIN=$CORPUS/.bin
case $PROFILE in
edit | add) PROFILES=$PROFILE ;;
both) PROFILES="edit add" ;;
*)
	echo "history.sh: PROFILE must be edit, add or both, not $PROFILE" >&2
	exit 2
	;;
esac
mkdir -p "$BIN"

go build -o "$BIN/latch" ./cmd/latch
go build -o "$BIN/histgen" ./bench/internal/histgen

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }
best() { awk -v a="$1" -v b="$2" 'BEGIN {print (a == "" || b + 0 < a + 0) ? b : a}'; }
row() { printf '%-30s %9s %9s %14s' "$@"; }

# gitleaks, found or installed once.
GL=
if [ "${GITLEAKS:-1}" != 0 ]; then
	GL=$(command -v gitleaks || true)
	[ -z "$GL" ] && [ -x "$BIN/gitleaks" ] && GL=$BIN/gitleaks
	if [ -z "$GL" ]; then
		echo "installing gitleaks with go install…"
		if GOBIN="$PWD/$BIN" go install github.com/zricethezav/gitleaks/v8@latest >"$BIN/gitleaks-install.log" 2>&1; then
			GL=$BIN/gitleaks
		else
			echo "gitleaks unavailable (see $BIN/gitleaks-install.log)"
		fi
	fi
	if [ -n "$GL" ]; then
		GLV=$(go version -m "$GL" 2>/dev/null | awk '$1 == "mod" {print $3}')
		[ -n "$GLV" ] || GLV=$("$GL" version 2>/dev/null || echo "?")
	fi
fi

SUMMARY=()

# run_profile PROFILE: generate (if needed) and time one profile.
run_profile() {
	local profile=$1 hist repo out
	if [ "$profile" = edit ]; then
		hist=$CORPUS/_history
	else
		hist=$CORPUS/_history-$profile
	fi
	repo=$hist/repo
	out=$hist/out
	mkdir -p "$hist" "$out"
	echo "== profile $profile ($hist)"

	local stamp="$profile $COMMITS $FILES $TOKENS repack=$REPACK"
	[ "$profile" = add ] && stamp+=" $ADD_MIN-$ADD_MAX"
	stamp+=" $(sha256sum "$BIN/histgen" | cut -c1-16)"
	if [ ! -f "$hist/.stamp" ] || [ "$(cat "$hist/.stamp")" != "$stamp" ] || [ ! -d "$repo/.git" ]; then
		echo "generating $COMMITS commits with git fast-import…"
		local g0 g1
		g0=$(now)
		rm -rf "$repo" "$hist/.stamp"
		git init -q -b main "$repo"
		"$BIN/histgen" gen -profile "$profile" -commits "$COMMITS" -files "$FILES" -tokens "$TOKENS" \
			-add-min "$ADD_MIN" -add-max "$ADD_MAX" -planted "$hist/planted.txt" |
			git -C "$repo" fast-import --quiet
		git -C "$repo" reset -q --hard
		git -C "$repo" gc -q
		# fast-import deltas each blob against the blob before it in the
		# stream, whatever its path: a pack about four times the size a
		# clone or a `git gc` of the same history would have. Store it as
		# those would (REPACK=0 keeps fast-import's pack).
		[ "$REPACK" = 0 ] || git -C "$repo" repack -q -a -d -f
		echo "$stamp" >"$hist/.stamp"
		g1=$(now)
		echo "generated in $(secs "$g0" "$g1") s"
	fi

	local ncommits pack planted head
	ncommits=$(git -C "$repo" rev-list --count --all)
	pack=$(du -sk "$repo/.git/objects" | awk '{printf "%.1f", $1 / 1024}')
	planted=$(grep -c . "$hist/planted.txt")
	head=$(git -C "$repo" ls-files | wc -l)
	echo "repository: $ncommits commits, $head files at HEAD, $pack MiB of objects, $planted planted tokens; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
	# Warm the page cache.
	cat "$repo"/.git/objects/pack/* >/dev/null

	local rows=() lt= ln lp gt= gn gp t0 t1 pt rc timedout=
	# latch: every unique blob once.
	for _ in $(seq "$RUNS"); do
		t0=$(now)
		"$BIN/latch" scan -q --git "$repo" --format json --show-secrets >"$out/latch.json" || [ $? -eq 1 ]
		t1=$(now)
		lt=$(best "$lt" "$(secs "$t0" "$t1")")
	done
	read -r ln lp _ < <("$BIN/histgen" count -planted "$hist/planted.txt" -format latch "$out/latch.json")
	local blobs bytes
	blobs=$(grep -o '"files": *[0-9]*' "$out/latch.json" | grep -o '[0-9]*$')
	bytes=$(grep -o '"bytes": *[0-9]*' "$out/latch.json" | grep -o '[0-9]*$')
	rows+=("$(row "latch scan --git" "$lt" "$ln" "$lp/$planted")")

	# For reference: what gitleaks has Git produce.
	t0=$(now)
	git -C "$repo" log -p -U0 --full-history --all --diff-filter=tuxdb | wc -c >"$out/patch-bytes"
	t1=$(now)
	pt=$(secs "$t0" "$t1")
	# And a floor for any tool that names each blob with a commit and a path:
	# Git listing every object of the history (no blob read), best of RUNS.
	local ft=
	for _ in $(seq "$RUNS"); do
		t0=$(now)
		git -C "$repo" rev-list --all --objects >/dev/null
		t1=$(now)
		ft=$(best "$ft" "$(secs "$t0" "$t1")")
	done

	# gitleaks, default rules.
	if [ -n "$GL" ]; then
		local glcmd
		if "$GL" git --help >/dev/null 2>&1; then
			glcmd=("$GL" git "$repo")
		else
			glcmd=("$GL" detect --source "$repo")
		fi
		for _ in $(seq "$RUNS"); do
			rm -f "$out/gitleaks.json"
			t0=$(now)
			rc=0
			timeout "$GITLEAKS_TIMEOUT" "${glcmd[@]}" --no-banner --log-level error --exit-code 0 \
				--report-format json --report-path "$out/gitleaks.json" || rc=$?
			t1=$(now)
			if [ "$rc" = 124 ]; then
				echo "gitleaks timed out after $GITLEAKS_TIMEOUT s"
				timedout=1
				break
			elif [ "$rc" != 0 ]; then
				echo "gitleaks failed (exit status $rc)"
			fi
			gt=$(best "$gt" "$(secs "$t0" "$t1")")
		done
		if [ -z "$timedout" ] && [ -s "$out/gitleaks.json" ]; then
			read -r gn gp _ < <("$BIN/histgen" count -planted "$hist/planted.txt" -format gitleaks "$out/gitleaks.json")
			rows+=("$(row "gitleaks $GLV git" "$gt" "$gn" "$gp/$planted")")
		elif [ -n "$timedout" ]; then
			rows+=("$(row "gitleaks $GLV (timed out)" ">$GITLEAKS_TIMEOUT" - -)")
			gt=
		else
			rows+=("$(row "gitleaks $GLV (no report)" "$gt" - -)")
			gt=
		fi
	fi

	echo
	echo "latch read $blobs unique blobs, $(awk -v b="$bytes" 'BEGIN {printf "%.1f", b / 1048576}') MiB; \`git log -p -U0 --full-history --all\` (what gitleaks reads) is $(awk -v b="$(cat "$out/patch-bytes")" 'BEGIN {printf "%.1f", b / 1048576}') MiB and takes ${pt} s alone"
	echo "\`git rev-list --all --objects\` (every commit, tree and blob named, none read) takes ${ft} s"
	echo "best of $RUNS runs each:"
	row tool seconds findings "planted found"
	echo
	printf '%s\n' "${rows[@]}"
	local ratio=
	if [ -n "$gt" ]; then
		ratio=$(awk -v g="$gt" -v l="$lt" 'BEGIN {if (l > 0) printf "%.1f", g / l}')
		echo
		echo "latch is ${ratio}× faster than gitleaks; 20× would be $(awk -v g="$gt" 'BEGIN {printf "%.2f", g / 20}') s"
	elif [ -n "$timedout" ]; then
		ratio=">$(awk -v g="$GITLEAKS_TIMEOUT" -v l="$lt" 'BEGIN {if (l > 0) printf "%.0f", g / l}')"
		echo
		echo "latch is more than ${ratio#>}× faster than gitleaks (which timed out)"
	fi
	echo
	SUMMARY+=("$(printf '%-6s latch %6s s %4s/%-4s  gitleaks %7s s %4s/%-4s  ratio %s' "$profile" "$lt" "$lp" "$planted" \
		"${gt:-${timedout:+>$GITLEAKS_TIMEOUT}}" "${gp:--}" "$planted" "${ratio:--}×")")
}

for p in $PROFILES; do
	run_profile "$p"
done
if [ "${#SUMMARY[@]}" -gt 1 ]; then
	echo "summary (best of $RUNS; seconds, planted tokens found):"
	printf '%s\n' "${SUMMARY[@]}"
fi
