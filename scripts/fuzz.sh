#!/usr/bin/env bash
# Fuzzes one parser of untrusted input (or each in turn) with libFuzzer and AddressSanitizer, starting from the
# seed corpus in fuzz/corpus/TARGET; new inputs go to .warden-fuzz/corpus/TARGET, crashes to .warden-fuzz/crashes.
#
#   scripts/fuzz.sh                 # every target, 60 s each
#   scripts/fuzz.sh cel 600         # one target for 10 minutes
#   scripts/fuzz.sh list            # the targets
#
# Not part of the test suite (too long); a crash found here becomes a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${1:-all}
SECONDS_EACH=${2:-60}
FUZZER_LIB=$(ls /opt/swift/usr/lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a 2>/dev/null | head -1 || true)
if [ -z "$FUZZER_LIB" ]; then
    FUZZER_LIB=$(ls "$(dirname "$(command -v swift)")"/../lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a | head -1)
fi
echo "Building warden-fuzz (release, libFuzzer + AddressSanitizer)..."
swift build -c release --product warden-fuzz --build-path .build-fuzz \
    -Xswiftc -DWARDEN_FUZZ -Xswiftc -sanitize=address -Xswiftc -sanitize-coverage=edge,trace-cmp,inline-8bit-counters \
    -Xlinker "$FUZZER_LIB" -Xlinker -lstdc++ >/dev/null
BIN=.build-fuzz/release/warden-fuzz
ALL=$( (WARDEN_FUZZ_TARGET= "$BIN" 2>&1 || true) | sed -n 's/.*one of: //p')
if [ "$TARGET" = list ]; then echo "$ALL"; exit 0; fi
[ "$TARGET" = all ] && TARGETS=$ALL || TARGETS=$TARGET
mkdir -p .warden-fuzz/crashes
status=0
for t in $TARGETS; do
    mkdir -p ".warden-fuzz/corpus/$t"
    seeds=()
    [ -d "fuzz/corpus/$t" ] && seeds=("fuzz/corpus/$t")
    echo "== $t ($SECONDS_EACH s)"
    if ! WARDEN_FUZZ_TARGET=$t "$BIN" ".warden-fuzz/corpus/$t" "${seeds[@]}" -max_total_time="$SECONDS_EACH" -timeout=10 \
        -rss_limit_mb=2048 -max_len=65536 -artifact_prefix=".warden-fuzz/crashes/$t-" -print_final_stats=1 \
        >".warden-fuzz/$t.log" 2>&1; then
        echo "   FOUND: see .warden-fuzz/$t.log and .warden-fuzz/crashes/$t-*"
        status=1
    fi
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" ".warden-fuzz/$t.log" | sed 's/^/   /' || true
done
exit $status
