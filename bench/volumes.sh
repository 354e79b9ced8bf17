#!/usr/bin/env bash
# Benchmark (run by hand, not a test): what a split bundle costs and saves. The same
# generated layers packed as one file and with --split; then the time to verify one
# volume (what an operator does as each medium arrives) against the whole bundle, and
# the size the volumes add (repeated head and manifests, zstd's worst-case margin).
#
#   bench/volumes.sh [GiB of layers, default 2] [--split size, default 512M]
#
# The image has one layer of 600 MiB (it spans volumes at 512M, so pieces are timed too)
# and layers of 256 MiB for the rest, incompressible bytes declared as tar+gzip, as
# registry layers are. Needs: a built ferry (BUILD_DIR, default build), sha256sum,
# openssl. Works in $BENCH_DIR (default: a new directory under build/, removed at exit)
# and needs about 3.5x the size free there.
# SPDX-License-Identifier: Apache-2.0
set -euo pipefail
cd "$(dirname "$0")/.."
gib=${1:-2}
split=${2:-512M}
build=${BUILD_DIR:-build}
ferry="$PWD/$build/src/cli/ferry"
[ -x "$ferry" ] || { echo "build ferry first: ninja -C $build src/cli/ferry" >&2; exit 1; }
for tool in sha256sum openssl; do
  command -v "$tool" > /dev/null || { echo "missing tool: $tool" >&2; exit 1; }
done
work=${BENCH_DIR:-$PWD/$build/bench-volumes}
rm -rf "$work" && mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
export XDG_CACHE_HOME="$work/cache" # pack's cache stays in the work directory

total_mib=$(( gib * 1024 ))
(( total_mib > 600 )) || { echo "too small: give at least 1 GiB" >&2; exit 1; }

# One image, layers as said above.
layout="$work/layout"
mkdir -p "$layout/blobs/sha256"
echo '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
layer_json="" left=$total_mib i=0
while (( left > 0 )); do
  mib=$(( i == 0 ? 600 : 256 )); (( mib > left )) && mib=$left
  f="$work/layer.$i"
  openssl rand -out "$f" $(( mib * 1024 * 1024 )) 2>/dev/null
  digest=$(sha256sum "$f" | cut -c1-64); size=$(stat -c %s "$f")
  mv "$f" "$layout/blobs/sha256/$digest"
  layer_json+="${layer_json:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$digest\",\"size\":$size}"
  left=$(( left - mib )); i=$(( i + 1 ))
done
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' > "$work/config"
cd_=$(sha256sum "$work/config" | cut -c1-64); cs=$(stat -c %s "$work/config")
mv "$work/config" "$layout/blobs/sha256/$cd_"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' \
  "$cd_" "$cs" "$layer_json" > "$work/manifest"
md=$(sha256sum "$work/manifest" | cut -c1-64); ms=$(stat -c %s "$work/manifest")
mv "$work/manifest" "$layout/blobs/sha256/$md"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"bench"}}]}' \
  "$md" "$ms" > "$layout/index.json"
cat > "$work/bundle.yaml" <<YAML
apiVersion: ferry/v1
kind: Bundle
metadata: {name: bench, version: "1"}
images:
  - {ref: "oci:./layout:bench", name: bench.example/volumes:1}
YAML

seconds() { awk -v s="$1" -v e="$2" 'BEGIN { printf "%.2f", (e - s) / 1e9 }'; }
now() { date +%s%N; }
# Runs a command; sets ELAPSED (s).
measure() {
  local t0 t1
  t0=$(now)
  "$@" > /dev/null
  t1=$(now)
  ELAPSED=$(seconds "$t0" "$t1")
}

"$ferry" keygen --out "$work/key" > /dev/null
mkdir -p "$work/one" "$work/split"
measure "$ferry" pack -q -f "$work/bundle.yaml" -o "$work/one/bench.tar.zst" --key "$work/key.key"
pack_one_t=$ELAPSED
measure "$ferry" pack -q -f "$work/bundle.yaml" -o "$work/split/bench.tar.zst" --key "$work/key.key" --split "$split"
pack_split_t=$ELAPSED
rm -rf "$layout" "$XDG_CACHE_HOME"

volumes=("$work"/split/bench.[0-9][0-9][0-9].tar.zst)
count=${#volumes[@]}
one_bytes=$(stat -c %s "$work/one/bench.tar.zst")
split_bytes=$(cat "${volumes[@]}" | wc -c)
# The largest volume: the one an operator waits longest for.
vol=$(stat -c '%s %n' "${volumes[@]}" | sort -n | tail -1 | cut -d' ' -f2-)
largest=$(stat -c %s "$vol")

# Warm page cache for every read: CPU cost, not disk (each file is read right before).
warm() { cat "$@" > /dev/null; }
warm "$work/one/bench.tar.zst"
measure "$ferry" verify -q "$work/one/bench.tar.zst" --pubkey "$work/key.pub"
whole_t=$ELAPSED
warm "${volumes[@]}"
measure "$ferry" verify -q "${volumes[@]}" --pubkey "$work/key.pub"
all_t=$ELAPSED
warm "$vol"
measure "$ferry" verify -q "$vol" --pubkey "$work/key.pub"
vol_t=$ELAPSED
warm "$vol"
measure sha256sum "$vol"
sha_t=$ELAPSED

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
echo "== ${gib} GiB of layers (one of 600 MiB), --split $split: $count volumes, $(nproc) cores"
printf '%-46s %10s %8s\n' "" "seconds" "ratio"
printf '%-46s %10s %8s\n' "ferry verify, one-file bundle" "$whole_t" "1.00"
printf '%-46s %10s %8s\n' "ferry verify, all $count volumes in one command" "$all_t" "$(ratio "$all_t" "$whole_t")"
printf '%-46s %10s %8s\n' "ferry verify, one volume ($(basename "$vol"))" "$vol_t" "$(ratio "$vol_t" "$whole_t")"
printf '%-46s %10s %8s\n' "sha256sum of that volume (peer)" "$sha_t" "$(ratio "$sha_t" "$whole_t")"
echo "(ratio = this time / verify of the one-file bundle; warm page cache)"
echo
printf '%-46s %12s\n' "one-file bundle (bytes)" "$one_bytes"
printf '%-46s %12s\n' "all volumes together (bytes)" "$split_bytes"
printf '%-46s %12s\n' "volumes' overhead" "$(( split_bytes - one_bytes )) ($(awk -v a="$split_bytes" -v b="$one_bytes" 'BEGIN { printf "%.3f %%", (a - b) * 100 / b }'))"
printf '%-46s %12s\n' "largest volume ($(basename "$vol"), bytes)" "$largest"
echo "pack: one file ${pack_one_t} s, split ${pack_split_t} s (pieces are hashed once more before writing)"
