#!/usr/bin/env bash
# Sets up, builds with warnings as errors, and runs the whole test suite (unit and
# integration). Integration tests may not skip here: a missing tool is a failure.
# SPDX-License-Identifier: Apache-2.0
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
export PATH="$PWD/.tools/helm/bin:$PATH"
build=${BUILD_DIR:-build-test}
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --wrap-mode=nodownload -Dwerror=true -Dtests=enabled -Dintegration_tests=enabled
fi
ninja -C "$build"
set +e
FERRY_REQUIRE_INTEGRATION=1 meson test -C "$build" --print-errorlogs --num-processes 2
status=$?
set -e
# One closing line for CI, counting doctest cases across all test programs.
awk '/\[doctest\] test cases:/ { gsub(/\|/, " "); p += $5; f += $7 } END { printf "%d passed, %d failed\n", p, f }' \
  "$build/meson-logs/testlog.txt"
exit $status
