#!/usr/bin/env bash
# Benchmark (run by hand, not a test): packs and verifies generated layers and prints
# throughput next to the peer tools on the same data (sha256sum over the layers, zstd -d
# of the bundle, tar --zstd -x), then peak memory of pack and verify for two input sizes
# (it must stay flat).
#
#   bench/pack_verify.sh [GiB for the throughput run, default 2] [small GiB, default 1] [large GiB, default 4]
#
# Needs: a built ferry (BUILD_DIR, default build), GNU time (/usr/bin/time), zstd,
# sha256sum, openssl. Works in $BENCH_DIR (default: a new directory under build/) and
# needs about 2.5x the largest size free there.
# SPDX-License-Identifier: Apache-2.0
set -euo pipefail
cd "$(dirname "$0")/.."
main_gib=${1:-2}
small_gib=${2:-1}
large_gib=${3:-4}
build=${BUILD_DIR:-build}
ferry="$PWD/$build/src/cli/ferry"
[ -x "$ferry" ] || { echo "build ferry first: ninja -C $build" >&2; exit 1; }
work=${BENCH_DIR:-$PWD/$build/bench-work}
rm -rf "$work" && mkdir -p "$work"
trap 'rm -rf "$work"' EXIT

# An OCI layout with one image whose layers total GIB: half incompressible bytes
# declared as tar+gzip (as registry layers are), half compressible text declared as
# an uncompressed tar (as docker-save layers are). 256 MiB per layer.
make_layout() {
  local dir=$1 gib=$2 layers=$(( $2 * 4 )) i digest size
  mkdir -p "$dir/blobs/sha256"
  echo '{"imageLayoutVersion":"1.0.0"}' > "$dir/oci-layout"
  local layer_json=""
  for (( i = 0; i < layers; i++ )); do
    local f="$dir/layer.$i" type
    if (( i % 2 == 0 )); then
      openssl rand -out "$f" $(( 256 * 1024 * 1024 )) 2>/dev/null
      type="application/vnd.oci.image.layer.v1.tar+gzip"
    else
      # compressible: base64 text of random bytes (compresses to about 75%)
      openssl rand -base64 -out "$f" $(( 192 * 1024 * 1024 )) 2>/dev/null
      type="application/vnd.oci.image.layer.v1.tar"
    fi
    digest=$(sha256sum "$f" | cut -c1-64); size=$(stat -c %s "$f")
    mv "$f" "$dir/blobs/sha256/$digest"
    layer_json+="${layer_json:+,}{\"mediaType\":\"$type\",\"digest\":\"sha256:$digest\",\"size\":$size}"
  done
  printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' > "$dir/config"
  local cd cs; cd=$(sha256sum "$dir/config" | cut -c1-64); cs=$(stat -c %s "$dir/config")
  mv "$dir/config" "$dir/blobs/sha256/$cd"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' \
    "$cd" "$cs" "$layer_json" > "$dir/manifest"
  local md ms; md=$(sha256sum "$dir/manifest" | cut -c1-64); ms=$(stat -c %s "$dir/manifest")
  mv "$dir/manifest" "$dir/blobs/sha256/$md"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"bench"}}]}' \
    "$md" "$ms" > "$dir/index.json"
  cat > "$dir/../bundle-$gib.yaml" <<YAML
apiVersion: ferry/v1
kind: Bundle
metadata: {name: bench, version: "$gib"}
images:
  - {ref: "oci:./layout-$gib:bench", name: bench.example/bench:$gib}
YAML
}

seconds() { awk -v s="$1" -v e="$2" 'BEGIN { printf "%.2f", (e - s) / 1e9 }'; }
rate() { awk -v b="$1" -v t="$2" 'BEGIN { printf "%.0f", b / 1048576 / t }'; }
now() { date +%s%N; }
# Runs a command under GNU time; sets ELAPSED (s) and RSS_KB.
measure() {
  local t0 t1
  t0=$(now)
  /usr/bin/time -f "%M" -o "$work/time.out" "$@" > /dev/null
  t1=$(now)
  ELAPSED=$(seconds "$t0" "$t1"); RSS_KB=$(tail -1 "$work/time.out")
}

"$ferry" keygen --out "$work/key" > /dev/null

echo "== throughput: ${main_gib} GiB of layers (half incompressible +gzip, half text), $(nproc) cores"
make_layout "$work/layout-$main_gib" "$main_gib"
bytes=$(du -sb "$work/layout-$main_gib/blobs" | cut -f1)
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
cat "$work/layout-$main_gib"/blobs/sha256/* > /dev/null  # warm cache: measure CPU, not disk

measure sha256sum "$work/layout-$main_gib"/blobs/sha256/*
sha_t=$ELAPSED
measure "$ferry" pack -q -f "$work/bundle-$main_gib.yaml" -o "$work/b-$main_gib.tar.zst" --key "$work/key.key"
pack_t=$ELAPSED; pack_rss=$RSS_KB
measure "$ferry" verify -q "$work/b-$main_gib.tar.zst" --pubkey "$work/key.pub"
verify_t=$ELAPSED; verify_rss=$RSS_KB
measure zstd -d -c -q "$work/b-$main_gib.tar.zst"
zstd_t=$ELAPSED
# The packing peer writes its output to disk and syncs it, as ferry pack does.
measure sh -c 'zstd -q -3 -T1 -c "$@" > "$0" && sync "$0"' "$work/peer.zst" "$work/layout-$main_gib/blobs/sha256/"*
zstdc_t=$ELAPSED
rm -f "$work/peer.zst"
bundle=$(stat -c %s "$work/b-$main_gib.tar.zst")

printf '%-40s %8s %10s %8s\n' "" "seconds" "MiB/s" "ratio"
printf '%-40s %8s %10s %8s\n' "sha256sum (peer: hashing only)" "$sha_t" "$(rate "$bytes" "$sha_t")" "1.00"
printf '%-40s %8s %10s %8s\n' "zstd -d of the bundle (peer: unpacking)" "$zstd_t" "$(rate "$bytes" "$zstd_t")" \
  "$(awk -v a="$sha_t" -v b="$zstd_t" 'BEGIN{printf "%.2f", a/b}')"
printf '%-40s %8s %10s %8s\n' "zstd -3 -T1 to disk + sync (peer: packing)" "$zstdc_t" "$(rate "$bytes" "$zstdc_t")" \
  "$(awk -v a="$sha_t" -v b="$zstdc_t" 'BEGIN{printf "%.2f", a/b}')"
printf '%-40s %8s %10s %8s\n' "ferry pack (read+hash+compress+sign)" "$pack_t" "$(rate "$bytes" "$pack_t")" \
  "$(awk -v a="$sha_t" -v b="$pack_t" 'BEGIN{printf "%.2f", a/b}')"
printf '%-40s %8s %10s %8s\n' "ferry verify (decompress+hash)" "$verify_t" "$(rate "$bytes" "$verify_t")" \
  "$(awk -v a="$sha_t" -v b="$verify_t" 'BEGIN{printf "%.2f", a/b}')"
echo "(ratio = sha256sum time / this time; MiB/s of uncompressed content)"
echo "bundle: $(( bundle / 1048576 )) MiB for $(( bytes / 1048576 )) MiB of content"
echo "verify vs zstd -d: $(awk -v a="$zstd_t" -v b="$verify_t" 'BEGIN{printf "%.2f", a/b}') of zstd's speed"
rm -rf "$work/layout-$main_gib" "$work/b-$main_gib.tar.zst"

echo
echo "== peak memory (RSS) for ${small_gib} GiB and ${large_gib} GiB inputs"
printf '%-10s %14s %16s\n' "input" "pack RSS MiB" "verify RSS MiB"
for gib in "$small_gib" "$large_gib"; do
  make_layout "$work/layout-$gib" "$gib"
  measure "$ferry" pack -q -f "$work/bundle-$gib.yaml" -o "$work/b-$gib.tar.zst" --key "$work/key.key"
  p=$RSS_KB
  measure "$ferry" verify -q "$work/b-$gib.tar.zst" --pubkey "$work/key.pub"
  v=$RSS_KB
  printf '%-10s %14s %16s\n' "${gib} GiB" "$(( p / 1024 ))" "$(( v / 1024 ))"
  rm -rf "$work/layout-$gib" "$work/b-$gib.tar.zst"
done
