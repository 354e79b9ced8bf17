#!/usr/bin/env bash
# Benchmark (run by hand, not a test): what a bundle weighs against its content, and what
# a differential bundle saves.
#
#   1. overhead: a full bundle's size against the sum of its unique blobs (tar headers,
#      zstd frames, ferry.json, the layout); the issue's target is < 0.5 %;
#   2. a one-layer change: release 2 replaces the top layer of one image; its full bundle
#      against the differential one packed with --base RECEIPT.json, the inventory of a
#      registry that received release 1 (and --base of the old bundle, for comparison);
#      the differential bundle pushed into that registry, and every image read back.
#
#   bench/differential.sh [GiB of layers, default 1]
#
# The images (IMAGES of them, default 8) share one base layer holding a quarter of the
# bytes; each adds a layer of its own. Layers are incompressible bytes declared as
# tar+gzip, as registry layers are (zstd stores them raw). A docker-registry (the target)
# runs on 127.0.0.1 over plain HTTP, started and stopped here. Needs: a built ferry
# (BUILD_DIR, default build), docker-registry, skopeo, jq, curl, sha256sum, openssl. Works
# in $BENCH_DIR (default: a new directory under build/, removed at exit) and needs about
# 4.5x the size free there.
# SPDX-License-Identifier: Apache-2.0
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
gib=${1:-1}
images=${IMAGES:-8}
build=${BUILD_DIR:-build}
ferry="$PWD/$build/src/cli/ferry"
[ -x "$ferry" ] || { echo "build ferry first: ninja -C $build src/cli/ferry" >&2; exit 1; }
for tool in docker-registry skopeo jq curl sha256sum openssl; do
  command -v "$tool" > /dev/null || { echo "missing tool: $tool" >&2; exit 1; }
done
work=${BENCH_DIR:-$PWD/$build/bench-differential}
total_mib=$(awk -v g="$gib" 'BEGIN { printf "%d", g * 1024 }')
base_mib=$(( total_mib / 4 ))
own_mib=$(( (total_mib - base_mib) / images ))
(( own_mib > 0 )) || { echo "too small: $gib GiB for $images images" >&2; exit 1; }

rm -rf "$work" && mkdir -p "$work"
tgt_pid=""
cleanup() { stop_registry "$tgt_pid"; rm -rf "$work"; }
trap cleanup EXIT
export XDG_CACHE_HOME="$work/cache" XDG_STATE_HOME="$work/state"

require_free "$total_mib" 4.5



gz=application/vnd.oci.image.layer.v1.tar+gzip
# layer DIR MIB: a new incompressible layer; sets LAYER_JSON.
layer() {
  openssl rand -out "$1/layer" $(( $2 * 1048576 )) 2>/dev/null
  add_blob "$1" "$1/layer"
  LAYER_JSON="{\"mediaType\":\"$gz\",\"digest\":\"sha256:$DIGEST\",\"size\":$SIZE}"
}
# image DIR NAME LAYERS_JSON: config and manifest of image NAME; appends to INDEX_JSON.
image() {
  printf '{"architecture":"amd64","os":"linux","config":{"Labels":{"bench":"%s"}},"rootfs":{"type":"layers","diff_ids":[]}}' \
    "$2" > "$1/config"
  add_blob "$1" "$1/config"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' \
    "$DIGEST" "$SIZE" "$3" > "$1/manifest"
  add_blob "$1" "$1/manifest"
  INDEX_JSON+="${INDEX_JSON:+,}{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$DIGEST\",\"size\":$SIZE,\"annotations\":{\"org.opencontainers.image.ref.name\":\"$2\"}}"
}

step "making $images images ($base_mib MiB shared base + $own_mib MiB each) and img0's release 2 (a new top layer)"
layout="$work/layout"
mkdir -p "$layout/blobs/sha256"
echo '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
INDEX_JSON=""
layer "$layout" "$base_mib"; base_json=$LAYER_JSON
for (( i = 0; i < images; i++ )); do
  layer "$layout" "$own_mib"
  image "$layout" "img$i" "$base_json,$LAYER_JSON"
done
layer "$layout" "$own_mib"; new_layer=$SIZE
image "$layout" "img0-2" "$base_json,$LAYER_JSON"
printf '{"schemaVersion":2,"manifests":[%s]}' "$INDEX_JSON" > "$layout/index.json"
manifest() { # VERSION IMG0_REF
  printf 'apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: bench-differential, version: "%s"}\nimages:\n' "$1"
  printf '  - {ref: "oci:./layout:%s", name: "bench.example/bench/img0:%s"}\n' "$2" "$1"
  for (( i = 1; i < images; i++ )); do printf '  - {ref: "oci:./layout:img%s", name: "bench.example/bench/img%s:1"}\n' "$i" "$i"; done
}
manifest 1 img0 > "$work/v1.yaml"
manifest 2 img0-2 > "$work/v2.yaml"
"$ferry" keygen --out "$work/key" > /dev/null

# run CMD...: ferry CMD, quiet; sets ELAPSED (s); on failure prints its output and stops.
run() {
  local t0 t1 rc=0
  t0=$(now)
  "$ferry" "$@" > "$work/ferry.log" 2>&1 || rc=$?
  t1=$(now)
  if (( rc != 0 )); then echo "ferry failed (exit $rc): ferry $*" >&2; cat "$work/ferry.log" >&2; exit 1; fi
  ELAPSED=$(seconds "$t0" "$t1")
}
blob_bytes() { "$ferry" inspect --output json "$1" | jq '.blobBytes'; }

step "packing release 1 and release 2 in full"
run pack -f "$work/v1.yaml" -o "$work/v1.tar.zst" --key "$work/key.key" --no-lock
pack_full_t=$ELAPSED
run pack -f "$work/v2.yaml" -o "$work/v2-full.tar.zst" --key "$work/key.key" --no-lock
v1_bytes=$(stat -c %s "$work/v1.tar.zst"); v1_blobs=$(blob_bytes "$work/v1.tar.zst")
v2_bytes=$(stat -c %s "$work/v2-full.tar.zst")
rm -f "$work/v2-full.tar.zst"

step "starting the target registry, pushing release 1, taking its inventory"
start_registry target; tgt=127.0.0.1:$PORT; tgt_pid=$REGISTRY_PID
run push "$work/v1.tar.zst" --registry "$tgt/mirror" --pubkey "$work/key.pub" --plain-http
push_full_t=$ELAPSED
run inventory --registry "$tgt/mirror" --plain-http -o "$work/receipt.json" --key "$work/key.key"
inventory_t=$ELAPSED
receipt_blobs=$(jq '.blobs | length' "$work/receipt.json")

step "packing release 2 against the receipt, and against the old bundle"
run pack -f "$work/v2.yaml" -o "$work/v2-diff.tar.zst" --key "$work/key.key" --no-lock \
  --base "$work/receipt.json" --base-pubkey "$work/key.pub"
pack_diff_t=$ELAPSED
diff_bytes=$(stat -c %s "$work/v2-diff.tar.zst"); diff_blobs=$(blob_bytes "$work/v2-diff.tar.zst")
omitted=$("$ferry" inspect --output json "$work/v2-diff.tar.zst" | jq '.differential.omittedBlobs')
run pack -f "$work/v2.yaml" -o "$work/v2-diff-bundle.tar.zst" --key "$work/key.key" --no-lock \
  --base "$work/v1.tar.zst" --base-pubkey "$work/key.pub"
diff_bundle_bytes=$(stat -c %s "$work/v2-diff-bundle.tar.zst")

step "pushing the differential bundle; reading every image back"
run push "$work/v2-diff.tar.zst" --registry "$tgt/mirror" --pubkey "$work/key.pub" --plain-http
push_diff_t=$ELAPSED
for ref in img0:2 $(for (( i = 1; i < images; i++ )); do echo "img$i:1"; done); do
  skopeo copy --quiet --src-tls-verify=false "docker://$tgt/mirror/bench/$ref" "oci:$work/readback:check" > /dev/null
  rm -rf "$work/readback"
done

pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", 100 * a / b }'; }
overhead=$(( v1_bytes - v1_blobs ))
overhead_pct=$(pct "$overhead" "$v1_blobs")
verdict=$(awk -v v="$overhead_pct" 'BEGIN { print (v < 0.5 ? "met" : "NOT met") }')
row() { printf '%-58s %14s  %s\n' "$@"; }
echo "== $images images, $(( base_mib + images * own_mib )) MiB of layers ($base_mib MiB base shared by all + $images x $own_mib MiB); $(nproc) cores"
echo "overhead of the format"
row "  sum of the unique blobs of release 1 (bytes)" "$v1_blobs" ""
row "  full bundle of release 1 (bytes)" "$v1_bytes" ""
row "  overhead (bytes)" "$overhead" "$overhead_pct % (target < 0.5 %: $verdict)"
echo "a one-layer change (img0's top layer, $new_layer bytes)"
row "  full bundle of release 2 (bytes)" "$v2_bytes" "100 %"
row "  differential, --base RECEIPT.json (bytes)" "$diff_bytes" "$(pct "$diff_bytes" "$v2_bytes") % of the full one; $omitted blobs left out"
row "  differential, --base OLD.tar.zst (bytes)" "$diff_bundle_bytes" "$(pct "$diff_bundle_bytes" "$v2_bytes") %"
row "  what the differential bundle carries beyond its blobs" "$(( diff_bytes - diff_blobs ))" "bytes (blobs: $diff_blobs, the new layer, config and manifests)"
echo "times (seconds)"
row "  pack release 1 in full" "$pack_full_t" ""
row "  push release 1" "$push_full_t" ""
row "  inventory of the target ($receipt_blobs blobs, each HEAD-checked)" "$inventory_t" ""
row "  pack release 2 against the receipt" "$pack_diff_t" ""
row "  push the differential bundle (omitted blobs HEAD-checked)" "$push_diff_t" ""
echo "every image of release 2 read back from the target with skopeo"
