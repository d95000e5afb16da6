#!/usr/bin/env bash
# The readers' C extensions built a second time with AddressSanitizer and
# UndefinedBehaviorSanitizer (and -Wall -Wextra -Werror), into build/sanitize (the
# normal in-place build is left alone), then the native tests and the batch fuzz tests
# run against that build: any out-of-bounds access, use after free or undefined
# behaviour aborts the run with a report. CI runs it (.ci/run).
#
#   bash scripts/sanitize.sh                 the native and fuzz tests
#   bash scripts/sanitize.sh -k parquet      extra arguments go to pytest
#
# Python is not instrumented: libasan is preloaded (LD_PRELOAD), leaks are not checked
# (the interpreter keeps objects until exit by design), Python objects and Arrow
# buffers are allocated with malloc (PYTHONMALLOC=malloc,
# ARROW_DEFAULT_MEMORY_POOL=system) so that ASan's redzones surround them, and the
# Parquet reader's buffer pool keeps nothing and rounds nothing under ASan (pool.h).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
PYTEST=$(dirname "$PY")/pytest
CC=${CC:-gcc}
BUILD=build/sanitize
started=$(date +%s)

LIBASAN=$("$CC" -print-file-name=libasan.so)
if [ ! -e "$LIBASAN" ]; then
    echo "sanitize: $CC has no libasan.so ($LIBASAN); cannot run the sanitizer build" >&2
    exit 1
fi

rm -rf "$BUILD"
export LINREG_REQUIRE_NATIVE=1
export LINREG_NATIVE_CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all -Wall -Wextra -Werror"
export LINREG_NATIVE_LDFLAGS="-fsanitize=address,undefined"
CC="$CC" "$PY" setup.py --quiet build --build-base "$BUILD" --build-lib "$BUILD/lib" \
    --build-temp "$BUILD/temp" > "$BUILD.log" 2>&1 || {
    cat "$BUILD.log" >&2
    echo "sanitize: the sanitizer build failed (above)" >&2
    exit 1
}
LIB="$PWD/$BUILD/lib"

export PYTHONPATH="$LIB${PYTHONPATH:+:$PYTHONPATH}"
# libstdc++ too, after libasan: else ASan's interceptor of C++ exceptions (pyarrow throws
# and catches some) finds no __cxa_throw to call and aborts
LIBSTDCXX=$(readlink -f "$("$CC" -print-file-name=libstdc++.so)")
export LD_PRELOAD="$LIBASAN $LIBSTDCXX"
# reports go to files too (pytest captures the tests' stderr, which an abort loses)
REPORT="$PWD/$BUILD/report"
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1:detect_stack_use_after_return=1:log_path=$REPORT"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$REPORT"
export PYTHONMALLOC=malloc
export ARROW_DEFAULT_MEMORY_POOL=system
unset LINREG_NO_NATIVE

# The tests must import the sanitized build, not the in-place one.
"$PY" -P - "$LIB" <<'PY'
import sys
from inference.io.csv import native as csv_native
from inference.io.parquet import native as parquet_native

for ext in (csv_native._ext, parquet_native._ext):
    assert ext is not None and ext.__file__.startswith(sys.argv[1]), ext
    with open(ext.__file__, "rb") as f:
        assert b"__asan_report_load" in f.read(), f"{ext.__file__}: not built with ASan"
    print(f"sanitize: {ext.__name__} from {ext.__file__}")
PY

# pytest's own script (not python -m pytest, which puts the working directory first on
# sys.path) and --import-mode=append keep the in-place build off the path.
status=0
"$PYTEST" --import-mode=append -p no:cacheprovider -q -m "not slow" \
    tests/inference/test_fastcsv.py \
    tests/inference/test_fastparquet.py \
    tests/inference/test_batch_fastpath.py \
    tests/inference/test_batch_parquet_fast.py \
    tests/inference/test_line_limit.py \
    tests/security/test_fuzz_batch.py \
    tests/security/test_fuzz_reader.py \
    "$@" || status=$?
if compgen -G "$REPORT.*" >/dev/null; then
    cat "$REPORT".* >&2
    echo "sanitize: the sanitizers reported the errors above" >&2
    exit 1
fi
if [ "$status" != 0 ]; then
    echo "sanitize: the tests failed (status $status)" >&2
    exit "$status"
fi
echo "sanitize: passed in $(( $(date +%s) - started )) s"
