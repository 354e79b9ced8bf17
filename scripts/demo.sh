#!/usr/bin/env bash
# The main job end to end on manifests/example.yaml: keygen -> pack -> verify ->
# inspect -> extract, then an independent check of the result with skopeo.
# Image sources are made here with umoci and skopeo (no Docker daemon needed).
# SPDX-License-Identifier: Apache-2.0
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
build=${BUILD_DIR:-build}
[ -f "$build/build.ninja" ] || meson setup "$build" --wrap-mode=nodownload >/dev/null
ninja -C "$build" src/cli/ferry >/dev/null
ferry="$PWD/$build/src/cli/ferry"
work="$PWD/$build/demo"
rm -rf "$work" && mkdir -p "$work"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "making the example's local image sources (umoci + skopeo)"
src=manifests/example/images
rm -rf "$src" && mkdir -p "$src/rootfs"
head -c 3000000 /dev/urandom > "$src/rootfs/app.bin"
echo "hello from ferry" > "$src/rootfs/hello.txt"
umoci init --layout "$src/layout"
umoci new --image "$src/layout:web"
umoci insert --image "$src/layout:web" "$src/rootfs/app.bin" /opt/app.bin
umoci insert --image "$src/layout:web" "$src/rootfs/hello.txt" /srv/hello.txt
umoci new --image "$src/layout:worker"
umoci insert --image "$src/layout:worker" "$src/rootfs/app.bin" /opt/app.bin
skopeo copy --quiet "oci:$src/layout:worker" "docker-archive:$src/worker.tar:example/worker:1.0"
echo "$src/layout (web, worker sharing a 3 MB layer) and $src/worker.tar (docker save format)"

step "ferry keygen"
"$ferry" keygen --out "$work/release"

step "ferry pack"
SOURCE_DATE_EPOCH=1700000000 "$ferry" pack -f manifests/example.yaml -o "$work/example-1.0.0.tar.zst" --key "$work/release.key"

step "checking the media with coreutils: sha256sum -c"
(cd "$work" && sha256sum -c example-1.0.0.sha256)

step "ferry verify"
"$ferry" verify "$work/example-1.0.0.tar.zst" --pubkey "$work/release.pub"

step "ferry inspect"
"$ferry" inspect "$work/example-1.0.0.tar.zst" --pubkey "$work/release.pub"

step "ferry extract"
"$ferry" extract "$work/example-1.0.0.tar.zst" -o "$work/layout" --pubkey "$work/release.pub"

step "reading the extracted layout with skopeo (not ferry)"
skopeo inspect "oci:$work/layout:registry.example.com/shop/web:1.0" | grep -E '"(Name|Digest|Architecture)"'
echo
echo "demo finished: bundle, checksum file and extracted layout are in $work"
