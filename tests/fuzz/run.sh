#!/usr/bin/env bash
# Coverage-guided fuzzing of the readers' C units with libFuzzer (clang
# -fsanitize=fuzzer,address,undefined): one harness per unit (tests/fuzz/fuzz_*.c), each
# run for FUZZ_SECONDS (default 25) from its committed corpus (tests/fuzz/corpus/NAME,
# seeded with pages and blocks pyarrow writes: tests/fuzz/make_seeds.py). A crash, a
# sanitizer report or a failed check of a harness fails the run and leaves the input in
# build/fuzz/ (the path is printed). New inputs found go to build/fuzz/NAME-new/, never
# into the committed corpus; `bash tests/fuzz/run.sh --merge` minimizes them into it.
#
#   bash tests/fuzz/run.sh                 every harness, FUZZ_SECONDS each
#   bash tests/fuzz/run.sh csv snappy      some of them
#   bash tests/fuzz/run.sh --merge [NAME]  fuzz, then keep what found new coverage
#   FUZZ_SEEDS=build/fuzz/seeds bash tests/fuzz/run.sh --merge
#                                          also from new seeds (make_seeds.py)
#   bash tests/fuzz/run.sh --coverage      the line coverage of the units by the committed
#                                          corpus (no fuzzing; llvm-profdata, llvm-cov)
#
# --merge rewrites tests/fuzz/corpus/NAME as the smallest set of the inputs (corpus,
# seeds, new finds) that covers all they cover (libFuzzer's -merge=1).
#
# Without clang's libFuzzer it says so and exits 0 (.ci/run installs clang when it can).
set -euo pipefail
cd "$(dirname "$0")/../.."
CLANG=${CLANG:-clang}
SECONDS_EACH=${FUZZ_SECONDS:-25}
OUT=build/fuzz
ALL=(thrift snappy rle reader csv)
merge=0
coverage=0
names=()
for arg in "$@"; do
    case "$arg" in
    --merge) merge=1 ;;
    --coverage) coverage=1 ;;
    *) names+=("$arg") ;;
    esac
done
[ ${#names[@]} -gt 0 ] || names=("${ALL[@]}")

if ! command -v "$CLANG" >/dev/null 2>&1; then
    echo "fuzz: skipped: no $CLANG (Debian: apt-get install clang)"
    exit 0
fi
mkdir -p "$OUT"
probe="$OUT/probe.c"
echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }' > "$probe"
if ! "$CLANG" -fsanitize=fuzzer "$probe" -o "$OUT/probe" >/dev/null 2>&1; then
    echo "fuzz: skipped: $CLANG cannot link -fsanitize=fuzzer (no libFuzzer runtime)"
    exit 0
fi

PQ=inference/io/parquet/csrc
CSV=inference/io/csv/csrc
FLAGS=(-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
    -fno-sanitize-recover=all -Wall -Wextra -Werror)

sources() {
    case "$1" in
    thrift) echo "$PQ/thrift.c" ;;
    snappy) echo "$PQ/snappy.c" ;;
    rle) echo "$PQ/rle.c" ;;
    reader) echo "$PQ/reader.c $PQ/decode.c $PQ/thrift.c $PQ/snappy.c $PQ/rle.c $PQ/pool.c" ;;
    csv) echo "$CSV/parse.c" ;;
    *) echo "fuzz: unknown harness $1 (expected one of ${ALL[*]})" >&2; return 1 ;;
    esac
}

if [ "$coverage" = 1 ]; then
    for name in "${names[@]}"; do
        src=$(sources "$name")
        bin=$OUT/cover_$name
        # shellcheck disable=SC2086
        "$CLANG" -O1 -fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping -I"$PQ" \
            -I"$CSV" "tests/fuzz/fuzz_$name.c" $src -o "$bin"
        LLVM_PROFILE_FILE="$OUT/$name.profraw" "$bin" -runs=0 "tests/fuzz/corpus/$name" \
            >/dev/null 2>&1
        llvm-profdata merge -sparse "$OUT/$name.profraw" -o "$OUT/$name.profdata"
        echo "fuzz: $name: line coverage by tests/fuzz/corpus/$name"
        # shellcheck disable=SC2086
        llvm-cov report "$bin" -instr-profile="$OUT/$name.profdata" $src |
            awk '/[.]c |^TOTAL/ { n = split($1, p, "/"); print "    " p[n] ": lines " $10 ", branches " $13 }'
    done
    exit 0
fi

export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
started=$(date +%s)
for name in "${names[@]}"; do
    src=$(sources "$name")
    # shellcheck disable=SC2086
    "$CLANG" "${FLAGS[@]}" -I"$PQ" -I"$CSV" "tests/fuzz/fuzz_$name.c" $src -o "$OUT/fuzz_$name"
    corpus=tests/fuzz/corpus/$name
    fresh=$OUT/$name-new
    rm -rf "$fresh"
    mkdir -p "$fresh" "$corpus"
    dirs=("$fresh" "$corpus")
    if [ -n "${FUZZ_SEEDS:-}" ] && [ -d "$FUZZ_SEEDS/$name" ]; then dirs+=("$FUZZ_SEEDS/$name"); fi
    echo "fuzz: $name for ${SECONDS_EACH} s from $(find "${dirs[@]:1}" -type f | wc -l) inputs"
    if ! "$OUT/fuzz_$name" "${dirs[@]}" -max_total_time="$SECONDS_EACH" -timeout=10 \
        -rss_limit_mb=2048 -max_len=262144 -print_final_stats=1 \
        -artifact_prefix="$OUT/$name-" >"$OUT/$name.log" 2>&1; then
        tail -n 60 "$OUT/$name.log"
        echo "fuzz: $name FAILED; the input is in $OUT/$name-* (see above)" >&2
        exit 1
    fi
    grep -E "^stat::(number_of_executed_units|new_units_added)|cov: [0-9]+ ft" "$OUT/$name.log" |
        tail -n 3 | sed "s/^/fuzz: $name: /"
    if [ "$merge" = 1 ]; then
        merged=$OUT/$name-merged
        rm -rf "$merged"
        mkdir -p "$merged"
        "$OUT/fuzz_$name" -merge=1 "$merged" "${dirs[@]}" >"$OUT/$name-merge.log" 2>&1
        rm -rf "$corpus"
        mv "$merged" "$corpus"
        echo "fuzz: $name: corpus now $(find "$corpus" -type f | wc -l) inputs," \
            "$(du -sk "$corpus" | cut -f1) KiB"
    fi
done
echo "fuzz: passed in $(( $(date +%s) - started )) s"
