#!/usr/bin/env bash
# Benchmark (run by hand, not a test): ferry's registry stages against the pipeline an
# operator would script with the peer tools, on the same images in local registries.
#
#   connected side: ferry pack from a registry
#                   vs skopeo copy of each image into one OCI layout, tar | zstd, sha256sum;
#                   and ferry pack with an empty content cache (cold) vs the same pack again
#                   (warm: no blob downloaded), all three bundles byte-identical
#   isolated side:  ferry push of the bundle into a registry (then the same push again)
#                   vs sha256sum -c, zstd -d | tar -x, skopeo copy of each image into the registry
#
#   bench/registry.sh [GiB of layers, default 2]
#
# The images (IMAGES of them, default 10) share one base layer holding a quarter of the
# bytes; each adds a layer of its own. Layers are incompressible bytes in a valid gzip
# stream (stored deflate blocks) declared as tar+gzip, as registry layers are: skopeo
# would recompress a "gzip" layer without the gzip magic and change its digest.
#
# Two Debian docker-registry servers (source and target) run on 127.0.0.1 over plain
# HTTP, started and stopped here. Needs: a built ferry (BUILD_DIR, default build),
# docker-registry, skopeo, GNU time (/usr/bin/time), zstd, tar, sha256sum, openssl, curl,
# and python3 (else gzip, slower, makes the layers). Works in $BENCH_DIR (default: a new
# directory under build/, removed at exit) and needs about 4.5x the size free there.
# SPDX-License-Identifier: Apache-2.0
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
gib=${1:-2}
images=${IMAGES:-10}
build=${BUILD_DIR:-build}
ferry="$PWD/$build/src/cli/ferry"
[ -x "$ferry" ] || { echo "build ferry first: ninja -C $build src/cli/ferry" >&2; exit 1; }
for tool in docker-registry skopeo zstd tar sha256sum openssl curl /usr/bin/time; do
  command -v "$tool" > /dev/null || { echo "missing tool: $tool" >&2; exit 1; }
done
work=${BENCH_DIR:-$PWD/$build/bench-registry}
total_mib=$(awk -v g="$gib" 'BEGIN { printf "%d", g * 1024 }')
base_mib=$(( total_mib / 4 ))
own_mib=$(( (total_mib - base_mib) / images ))
(( own_mib > 0 )) || { echo "too small: $gib GiB for $images images" >&2; exit 1; }

rm -rf "$work" && mkdir -p "$work"
src_pid="" tgt_pid=""
cleanup() { stop_registry "$src_pid"; stop_registry "$tgt_pid"; rm -rf "$work"; }
trap cleanup EXIT

require_free "$total_mib" 4.5



# gzip_stream: stdin -> a gzip stream of stored blocks (fast; no compression attempted).
gzip_stream() {
  if command -v python3 > /dev/null; then
    python3 -c '
import sys, zlib
c = zlib.compressobj(0, zlib.DEFLATED, 31)
while True:
    b = sys.stdin.buffer.read(1 << 20)
    if not b: break
    sys.stdout.buffer.write(c.compress(b))
sys.stdout.buffer.write(c.flush())'
  else
    gzip -1 -n
  fi
}


# make_layout DIR: the OCI layout of the images img0..img(N-1); records each image's
# manifest digest in $work/digests.
make_layout() {
  local dir=$1 i base_json own_json index_json=""
  mkdir -p "$dir/blobs/sha256"
  echo '{"imageLayoutVersion":"1.0.0"}' > "$dir/oci-layout"
  local gz=application/vnd.oci.image.layer.v1.tar+gzip
  openssl rand $(( base_mib * 1048576 )) 2>/dev/null | gzip_stream > "$dir/layer"
  add_blob "$dir" "$dir/layer"
  base_json="{\"mediaType\":\"$gz\",\"digest\":\"sha256:$DIGEST\",\"size\":$SIZE}"
  : > "$work/digests"
  for (( i = 0; i < images; i++ )); do
    openssl rand $(( own_mib * 1048576 )) 2>/dev/null | gzip_stream > "$dir/layer"
    add_blob "$dir" "$dir/layer"
    own_json="{\"mediaType\":\"$gz\",\"digest\":\"sha256:$DIGEST\",\"size\":$SIZE}"
    printf '{"architecture":"amd64","os":"linux","config":{"Labels":{"bench":"img%s"}},"rootfs":{"type":"layers","diff_ids":[]}}' \
      "$i" > "$dir/config"
    add_blob "$dir" "$dir/config"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s,%s]}' \
      "$DIGEST" "$SIZE" "$base_json" "$own_json" > "$dir/manifest"
    add_blob "$dir" "$dir/manifest"
    echo "img$i sha256:$DIGEST" >> "$work/digests"
    index_json+="${index_json:+,}{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$DIGEST\",\"size\":$SIZE,\"annotations\":{\"org.opencontainers.image.ref.name\":\"img$i\"}}"
  done
  printf '{"schemaVersion":2,"manifests":[%s]}' "$index_json" > "$dir/index.json"
}

caches="not dropped (needs root)"
drop_caches() {
  sync
  if { echo 3 > /proc/sys/vm/drop_caches; } 2>/dev/null; then caches="dropped before each measured step"; fi
}
sum() { awk 'BEGIN { s = 0; for (i = 1; i < ARGC; i++) s += ARGV[i]; printf "%.2f", s }' "$@"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# verdict VALUE ge|lt LIMIT: "met" or "NOT met".
verdict() {
  if awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN { exit !(op == "ge" ? v + 0 >= l + 0 : v + 0 < l + 0) }'; then
    echo met
  else
    echo "NOT met"
  fi
}

# timed CMD...: runs CMD (a command or shell function); sets ELAPSED (s).
timed() {
  local t0 t1
  t0=$(now); "$@"; t1=$(now)
  ELAPSED=$(seconds "$t0" "$t1")
}

# run_ferry CMD...: runs ferry under GNU time; sets ELAPSED (s) and RSS_KB. On failure
# prints ferry's output verbatim and stops.
run_ferry() {
  local t0 t1 rc=0
  t0=$(now)
  /usr/bin/time -f "%M" -o "$work/time.out" "$ferry" "$@" > "$work/ferry.log" 2>&1 || rc=$?
  t1=$(now)
  if (( rc != 0 )); then
    echo "ferry failed (exit $rc): ferry $*" >&2
    cat "$work/ferry.log" >&2
    exit 1
  fi
  ELAPSED=$(seconds "$t0" "$t1"); RSS_KB=$(tail -1 "$work/time.out")
}

# check_pushed PREFIX: every image under HOST/PREFIX has its source manifest digest.
check_pushed() {
  local name want got
  while read -r name want; do
    got=sha256:$(skopeo inspect --tls-verify=false --raw "docker://$tgt/$1/bench/$name:1" | sha256sum | cut -c1-64)
    [ "$got" = "$want" ] || { echo "$tgt/$1/bench/$name:1 is $got, expected $want" >&2; exit 1; }
  done < "$work/digests"
}

step "making $images images ($base_mib MiB shared base + $own_mib MiB each) as an OCI layout"
make_layout "$work/layout"
layer_mib=$(( base_mib + images * own_mib ))
step "starting the source and target registries (plain HTTP, 127.0.0.1)"
start_registry source; src=127.0.0.1:$PORT; src_pid=$REGISTRY_PID
start_registry target; tgt=127.0.0.1:$PORT; tgt_pid=$REGISTRY_PID
step "seeding the source registry with skopeo"
for (( i = 0; i < images; i++ )); do
  skopeo copy --quiet --dest-tls-verify=false "oci:$work/layout:img$i" "docker://$src/bench/img$i:1"
done
rm -rf "$work/layout"
"$ferry" keygen --out "$work/key" > /dev/null
{
  printf 'apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: bench-registry, version: "1"}\nimages:\n'
  for (( i = 0; i < images; i++ )); do printf '  - docker://%s/bench/img%s:1\n' "$src" "$i"; done
} > "$work/bundle.yaml"
load=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- connected side
step "connected side: ferry pack --no-cache"
drop_caches
run_ferry pack -f "$work/bundle.yaml" -o "$work/bundle.tar.zst" --key "$work/key.key" --plain-http -j 4 --no-cache
pack_t=$ELAPSED; pack_rss=$RSS_KB

step "connected side: ferry pack with an empty cache (cold), then again (warm)"
# same_bundle NAME: NAME.tar.zst has the bytes of the --no-cache bundle; then removed (disk).
same_bundle() {
  cmp -s "$work/bundle.tar.zst" "$work/$1.tar.zst" || { echo "the $1-cache bundle differs from --no-cache" >&2; exit 1; }
  rm -f "$work/$1.tar.zst" "$work/$1.sha256"
}
drop_caches
run_ferry pack -f "$work/bundle.yaml" -o "$work/cold.tar.zst" --key "$work/key.key" --plain-http -j 4 \
  --cache "$work/cache"
cold_t=$ELAPSED
same_bundle cold
drop_caches
run_ferry pack -f "$work/bundle.yaml" -o "$work/warm.tar.zst" --key "$work/key.key" --plain-http -j 4 \
  --cache "$work/cache"
warm_t=$ELAPSED
grep -q "downloading 0 blobs from registries" "$work/ferry.log" || {
  echo "the warm pack downloaded blobs:" >&2; cat "$work/ferry.log" >&2; exit 1; }
same_bundle warm
rm -rf "$work/cache"

step "connected side: peer (skopeo copy to an OCI layout, tar | zstd, sha256sum)"
peer_pull() {
  local i
  for (( i = 0; i < images; i++ )); do
    skopeo copy --quiet --src-tls-verify=false "docker://$src/bench/img$i:1" "oci:$work/peer-layout:img$i"
  done
}
# The peer writes its output to disk and syncs it, as ferry pack does.
peer_tar() {
  tar -cf - -C "$work/peer-layout" . | zstd -3 -T1 -q -o "$work/peer.tar.zst"
  sync "$work/peer.tar.zst"
}
peer_sum() { (cd "$work" && sha256sum peer.tar.zst > peer.sha256); }
drop_caches
timed peer_pull; peer_pull_t=$ELAPSED
timed peer_tar; peer_tar_t=$ELAPSED
timed peer_sum; peer_sum_t=$ELAPSED
peer_conn_t=$(sum "$peer_pull_t" "$peer_tar_t" "$peer_sum_t")
bundle_mib=$(( $(stat -c %s "$work/bundle.tar.zst") / 1048576 ))
peer_mib=$(( $(stat -c %s "$work/peer.tar.zst") / 1048576 ))
# The source side is done: free its disk before the isolated side.
stop_registry "$src_pid"; src_pid=""
rm -rf "$work/source" "$work/peer-layout"

# ---- isolated side
step "isolated side: ferry push, then the same push again"
drop_caches
run_ferry push "$work/bundle.tar.zst" --registry "$tgt/ferry" --pubkey "$work/key.pub" --plain-http -j 4
push_t=$ELAPSED; push_rss=$RSS_KB
drop_caches
run_ferry push "$work/bundle.tar.zst" --registry "$tgt/ferry" --pubkey "$work/key.pub" --plain-http -j 4
rerun_t=$ELAPSED; rerun_rss=$RSS_KB
check_pushed ferry

step "isolated side: peer (sha256sum -c, zstd -d | tar -x, skopeo copy to the registry)"
peer_check() { (cd "$work" && sha256sum -c --quiet peer.sha256); }
peer_untar() {
  mkdir -p "$work/peer-in"
  zstd -d -c -q "$work/peer.tar.zst" | tar -xf - -C "$work/peer-in"
}
peer_push() {
  local i
  for (( i = 0; i < images; i++ )); do
    skopeo copy --quiet --dest-tls-verify=false "oci:$work/peer-in:img$i" "docker://$tgt/peer/bench/img$i:1"
  done
}
drop_caches
timed peer_check; peer_check_t=$ELAPSED
timed peer_untar; peer_untar_t=$ELAPSED
timed peer_push; peer_push_t=$ELAPSED
peer_iso_t=$(sum "$peer_check_t" "$peer_untar_t" "$peer_push_t")
check_pushed peer

# ---- report
conn_ratio=$(ratio "$peer_conn_t" "$pack_t")
iso_ratio=$(ratio "$peer_iso_t" "$push_t")
rerun_pct=$(awk -v a="$rerun_t" -v b="$push_t" 'BEGIN { printf "%.1f", 100 * a / b }')
pack_mib=$(( pack_rss / 1024 )); push_mib=$(( push_rss / 1024 )); rerun_mib=$(( rerun_rss / 1024 ))
row() { printf '%-50s %8s %8s  %s\n' "$@"; }

echo "== registry stages: $images images, $layer_mib MiB of layers ($base_mib MiB base shared by all + $images x $own_mib MiB)"
echo "   source and target: docker-registry $(docker-registry --version 2>/dev/null | awk '{ print $3 }') on 127.0.0.1, plain HTTP (no TLS on either side)"
echo "   $(nproc) cores, load average at start $load; page cache $caches"
echo
row "" "seconds" "ratio" ""
echo "connected side"
row "  ferry pack -j 4 --no-cache (pull, verify, sign)" "$pack_t" "" ""
row "  peer: skopeo copy x$images -> one OCI layout" "$peer_pull_t" "" ""
row "  peer: tar | zstd -3 -T1 + sync" "$peer_tar_t" "" ""
row "  peer: sha256sum" "$peer_sum_t" "" ""
row "  peer total" "$peer_conn_t" "$conn_ratio" "peer/ferry (target >= 2.00: $(verdict "$conn_ratio" ge 2))"
echo "isolated side"
row "  ferry push -j 4 (verify + upload), empty prefix" "$push_t" "" ""
row "  peer: sha256sum -c" "$peer_check_t" "" ""
row "  peer: zstd -d | tar -x" "$peer_untar_t" "" ""
row "  peer: skopeo copy x$images -> registry" "$peer_push_t" "" ""
row "  peer total" "$peer_iso_t" "$iso_ratio" "peer/ferry (target >= 2.00: $(verdict "$iso_ratio" ge 2))"
row "  ferry push again (up to date)" "$rerun_t" "" "$rerun_pct% of the first push (target < 5%: $(verdict "$rerun_pct" lt 5))"
echo "(ratio = peer time / ferry time: above 1 ferry is faster)"
echo "pack and the content cache (same bytes each time)"
row "  ferry pack -j 4, empty cache (cold)" "$cold_t" "" ""
row "  ferry pack again, warm cache (no download)" "$warm_t" "$(ratio "$cold_t" "$warm_t")" "cold/warm"
echo
printf '%-50s %8s  %s\n' "ferry peak RSS" "MiB" ""
printf '%-50s %8s  %s\n' "  pack" "$pack_mib" "(target < 150: $(verdict "$pack_mib" lt 150))"
printf '%-50s %8s  %s\n' "  push" "$push_mib" "(target < 150: $(verdict "$push_mib" lt 150))"
printf '%-50s %8s  %s\n' "  push again" "$rerun_mib" ""
echo
verdicts="$(verdict "$conn_ratio" ge 2)|$(verdict "$iso_ratio" ge 2)|$(verdict "$rerun_pct" lt 5)|$(verdict "$pack_mib" lt 150)|$(verdict "$push_mib" lt 150)"
met=$(tr '|' '\n' <<< "$verdicts" | grep -cx met || true)
echo "targets (from the issue): ferry >= 2x faster than the peer on both sides, peak RSS < 150 MiB, re-run < 5% of the first push"
echo "met: $met of 5"
echo "bundle $bundle_mib MiB (ferry) vs $peer_mib MiB (peer tar.zst); every pushed manifest digest checked with skopeo"
