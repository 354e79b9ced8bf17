#!/usr/bin/env bash
# Sets up, builds with warnings as errors, and runs the whole test suite (unit,
# integration, fuzz reproducers). Integration tests may not skip here: a missing tool is
# a failure. Three passes, all run by CI:
#   1. the static build (-Dstatic_build=true, the binary jump hosts get): the whole suite
#      drives the fully static ferry, and the static test runs it in an empty root;
#   2. the Debian and RPM packages built, linted, installed and run
#      (packaging/test-packages.sh; FERRY_PACKAGES=0 skips it, about 10 minutes);
#   3. the suite again in a shared-library build with AddressSanitizer +
#      UndefinedBehaviorSanitizer (leaks, memory errors and undefined behaviour in ferry
#      and in its tests). FERRY_SANITIZE=0 skips it (about 20 minutes on two cores: 10 to
#      build, 11 to run).
# SPDX-License-Identifier: Apache-2.0
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
export PATH="$PWD/.tools/helm/bin:$PATH"
export FERRY_REQUIRE_INTEGRATION=1

# One closing line per run, counting doctest cases across all test programs.
count() {
  awk '/\[doctest\] test cases:/ { gsub(/\|/, " "); p += $5; f += $7 } END { printf "%d passed, %d failed", p, f }' \
    "$1/meson-logs/testlog.txt"
}

# libcurl, libarchive and fmt built static from Debian's source packages (cached).
static_deps="$PWD/.tools/static-deps"
./packaging/static/build-deps.sh "$static_deps"

build=${BUILD_DIR:-build-test}
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --wrap-mode=nodownload -Dwerror=true -Dtests=enabled -Dintegration_tests=enabled \
    -Dstatic_build=true -Dpkg_config_path="$static_deps/lib/pkgconfig"
fi
ninja -C "$build"
set +e
meson test -C "$build" --print-errorlogs --num-processes 2
status=$?
set -e
summary="$(count "$build") (optimised static build)"

if [ "${FERRY_PACKAGES:-1}" != 0 ]; then
  set +e
  STATIC_DEPS="$static_deps" ./packaging/test-packages.sh 2>&1 | tee "$build/packages.log"
  pstatus=${PIPESTATUS[0]}
  set -e
  [ "$status" -ne 0 ] || status=$pstatus
  if [ "$pstatus" -eq 0 ]; then
    summary="$summary; $(grep '^packages: ' "$build/packages.log" | tail -n1)"
  else
    summary="$summary; packages FAILED"
  fi
fi

if [ "${FERRY_SANITIZE:-1}" != 0 ]; then
  sbuild=${SANITIZE_BUILD_DIR:-build-sanitize}
  if [ ! -f "$sbuild/build.ninja" ]; then
    # -O0 with line tables only (-g1): on two cores this builds in about 10 minutes, less
    # than half the time of -O1 -g, and the run stays short because the heavy work
    # (hashing, zstd, tar) happens in the uninstrumented libraries. Every UBSan finding
    # aborts; assertions stay on.
    meson setup "$sbuild" --wrap-mode=nodownload -Dwerror=true -Dtests=enabled -Dintegration_tests=enabled \
      -Dbuildtype=plain -Db_ndebug=false \
      -Dcpp_args='-O0 -g1 -fno-omit-frame-pointer -fno-sanitize-recover=all' \
      -Db_sanitize=address,undefined -Db_lundef=false
  fi
  ninja -C "$sbuild"
  reports="$PWD/$sbuild/sanitizer-reports"
  rm -rf "$reports" && mkdir -p "$reports"
  # Reports go to files as well as the failing test: a sanitizer finding in a ferry run
  # whose exit code a test does not look at still fails CI below. The quarantine is
  # kept small so the memory bounds the tests check stay meaningful; the load test's
  # large image is 1 GiB here (5 GiB in the optimised run above).
  export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1:abort_on_error=1:quarantine_size_mb=32"
  export LSAN_OPTIONS="print_suppressions=0"
  export UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1:halt_on_error=1"
  export FERRY_LOAD_BYTES=$((1 << 30))
  set +e
  meson test -C "$sbuild" --print-errorlogs --num-processes 2 --timeout-multiplier 3
  sstatus=$?
  set -e
  unset ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS FERRY_LOAD_BYTES
  if compgen -G "$reports/*" >/dev/null; then
    echo "sanitizer reports:" >&2
    for f in "$reports"/*; do
      echo "== $f" >&2
      cat "$f" >&2
    done
    sstatus=1
  fi
  [ "$status" -ne 0 ] || status=$sstatus
  summary="$summary; $(count "$sbuild") (AddressSanitizer + UndefinedBehaviorSanitizer$([ "$sstatus" -eq 0 ] || echo ', FAILED'))"
fi

echo "$summary"
exit $status
