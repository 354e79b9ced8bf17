#!/usr/bin/env bash
# The main job end to end, against local servers on 127.0.0.1:
# 1. manifests/example.yaml: keygen -> pack (from an OCI layout, a docker-save archive and
#    a registry) -> sha256sum -> verify -> inspect -> push into a TLS registry with basic
#    auth -> read back with skopeo -> extract.
# 2. manifests/aistor.yaml and manifests/datachain.yaml, with their charts served by a
#    local Helm repository and their images by the source registry (through --mirror):
#    pack -> unpack (verify, push, values, check with helm) -> helm template with the
#    overlays, read without ferry -> the upgrade as a plan (it needs a cluster).
# Image sources are made here with umoci and skopeo (no Docker daemon needed); both
# registries are Debian's docker-registry.
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
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

# start_registry NAME [tls]: a docker-registry on a free 127.0.0.1 port; sets PORT.
start_registry() {
  local name=$1 tls=${2:-}
  local dir="$work/$name" scheme=http
  mkdir -p "$dir/data"
  local tls_config=""
  if [ -n "$tls" ]; then
    scheme=https
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=ferry demo CA" \
      -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
      -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$dir/san.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 1 \
      -extfile "$dir/san.ext" -out "$dir/server.pem" 2>/dev/null
    # The password goes in on standard input: never on a command line (ps shows those).
    printf '%s\n' demo-password | htpasswd -Bin demo > "$dir/htpasswd" 2>/dev/null
    tls_config="  tls: {certificate: $dir/server.pem, key: $dir/server.key}
auth:
  htpasswd: {realm: ferry-demo, path: $dir/htpasswd}"
  fi
  for _ in 1 2 3 4 5; do
    PORT=$(shuf -i 20000-45000 -n 1)
    cat > "$dir/config.yml" <<YAML
version: 0.1
storage: {filesystem: {rootdirectory: $dir/data}}
http:
  addr: 127.0.0.1:$PORT
$tls_config
YAML
    docker-registry serve "$dir/config.yml" > "$dir/log" 2>&1 &
    pids+=($!)
    for _ in $(seq 50); do
      code=$(curl -s -o /dev/null -w '%{http_code}' ${tls:+--cacert "$dir/ca.pem"} "$scheme://127.0.0.1:$PORT/v2/" || true)
      if [ "$code" = 200 ] || [ "$code" = 401 ]; then echo "$name registry: $scheme://127.0.0.1:$PORT"; return; fi
      sleep 0.1
    done
  done
  echo "cannot start the $name registry; its log:" >&2; cat "$dir/log" >&2; exit 1
}

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
umoci new --image "$src/layout:api"
umoci insert --image "$src/layout:api" "$src/rootfs/app.bin" /opt/app.bin
umoci insert --image "$src/layout:api" "$src/rootfs/hello.txt" /srv/api.txt
echo "$src/layout (web, worker, api sharing a 3 MB layer) and $src/worker.tar (docker save format)"

step "starting a source registry (plain HTTP) and the internal registry (TLS + basic auth)"
start_registry source; source_host=127.0.0.1:$PORT
start_registry internal tls; internal_host=127.0.0.1:$PORT
skopeo copy --quiet --dest-tls-verify=false "oci:$src/layout:api" "docker://$source_host/shop/api:1.0"
echo "pushed shop/api:1.0 into the source registry with skopeo"
sed "s|registry.example.com/shop/api:1.0|$source_host/shop/api:1.0|" manifests/example.yaml > "$work/example.yaml"
cp -r manifests/example "$work/example"

step "ferry keygen"
"$ferry" keygen --out "$work/release"

step "ferry pack"
SOURCE_DATE_EPOCH=1700000000 "$ferry" pack -f "$work/example.yaml" -o "$work/example-1.0.0.tar.zst" \
  --key "$work/release.key" --plain-http --cache "$work/cache"

step "checking the media with coreutils: sha256sum -c"
(cd "$work" && sha256sum -c example-1.0.0.sha256)

step "ferry verify"
"$ferry" verify "$work/example-1.0.0.tar.zst" --pubkey "$work/release.pub"

step "ferry inspect"
"$ferry" inspect "$work/example-1.0.0.tar.zst" --pubkey "$work/release.pub"

step "ferry push into the internal registry (TLS, basic auth), then again: nothing left to move"
echo demo-password | "$ferry" push "$work/example-1.0.0.tar.zst" --registry "$internal_host/mirror" \
  --pubkey "$work/release.pub" --ca-file "$work/internal/ca.pem" --username demo --password-stdin --state-dir "$work/state"
(umask 077 && echo demo-password > "$work/registry-password")  # or a file only its owner may read
"$ferry" push "$work/example-1.0.0.tar.zst" --registry "$internal_host/mirror" --pubkey "$work/release.pub" \
  --ca-file "$work/internal/ca.pem" --username demo --password-file "$work/registry-password" --state-dir "$work/state" -q

step "reading the pushed images back with skopeo (not ferry)"
mkdir -p "$work/certs" && cp "$work/internal/ca.pem" "$work/certs/ca.crt"
# skopeo's credentials in an auth file (0600), not in --creds on its command line.
(umask 077 && printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$internal_host" \
  "$(printf %s demo:demo-password | base64 -w0)" > "$work/auth.json")
for ref in mirror/shop/web:1.0 mirror/shop/api:1.0 mirror/charts/hello:0.1.0; do
  digest=$(skopeo inspect --raw --cert-dir "$work/certs" --authfile "$work/auth.json" "docker://$internal_host/$ref" | sha256sum | cut -c1-64)
  echo "$internal_host/$ref  sha256:$digest"
done

step "ferry extract"
"$ferry" extract "$work/example-1.0.0.tar.zst" -o "$work/layout" --pubkey "$work/release.pub"

step "reading the extracted layout with skopeo (not ferry)"
skopeo inspect "oci:$work/layout:registry.example.com/shop/web:1.0" | grep -E '"(Name|Digest|Architecture)"'

# ---- 2. charts, values, check, upgrade plan -------------------------------------------
export PATH="$PWD/.tools/helm/bin:$PATH"

step "a Helm chart repository: helm package + helm repo index, served on 127.0.0.1"
repo="$work/chart-repo"
mkdir -p "$repo/aistor" "$repo/datachain"
helm package manifests/charts/aistor-operator manifests/charts/aistor-objectstore -d "$repo/aistor" >/dev/null
helm package manifests/charts/studio -d "$repo/datachain" >/dev/null
helm repo index "$repo/aistor" && helm repo index "$repo/datachain"
for _ in 1 2 3 4 5; do
  chart_port=$(shuf -i 20000-45000 -n 1)
  python3 -m http.server --bind 127.0.0.1 --directory "$repo" "$chart_port" >"$work/chart-repo.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do
    curl -sf -o /dev/null "http://127.0.0.1:$chart_port/aistor/index.yaml" && break 2
    sleep 0.1
  done
done
chart_url="http://127.0.0.1:$chart_port"
echo "chart repository: $chart_url (aistor/, datachain/)"

step "the examples' images, under their quay.io and docker.io paths, in the source registry"
# Each image carries a file naming it, so every reference has its own digest.
images=$(sed -n 's/^  - \(\(quay\.io\|docker\.io\)\/[^ ]*\).*/\1/p' manifests/aistor.yaml manifests/datachain.yaml | sort -u)
n=0
for ref in $images; do
  n=$((n + 1))
  mkdir -p "$src/names/$n" && echo "$ref" > "$src/names/$n/image-name"
  umoci new --image "$src/layout:n$n"
  umoci insert --image "$src/layout:n$n" "$src/names/$n/image-name" /etc/image-name
  case $ref in quay.io/*) mirror=quay ;; *) mirror=docker ;; esac
  skopeo copy --quiet --dest-tls-verify=false "oci:$src/layout:n$n" "docker://$source_host/$mirror/${ref#*/}"
  echo "$source_host/$mirror/${ref#*/}"
done
mkdir -p "$work/manifests"
for m in aistor datachain; do
  sed "s|https://charts.example.com|$chart_url|" "manifests/$m.yaml" > "$work/manifests/$m.yaml"
done
cp -r manifests/values "$work/manifests/values"
mirrors=(--plain-http --mirror "quay.io=$source_host/quay" --mirror "docker.io=$source_host/docker")

step "ferry pack --dry-run of datachain.yaml: chart versions and images found in the chart (images: auto)"
"$ferry" pack -f "$work/manifests/datachain.yaml" --dry-run "${mirrors[@]}"

step "ferry pack of aistor.yaml and datachain.yaml"
for m in aistor datachain; do
  SOURCE_DATE_EPOCH=1700000000 "$ferry" pack -f "$work/manifests/$m.yaml" -o "$work/$m.tar.zst" \
    --key "$work/release.key" --cache "$work/cache" "${mirrors[@]}"
done
(cd "$work" && sha256sum -c aistor.sha256 datachain.sha256)

step "ferry pack --locked: the lock file pack wrote gives the same bundle, byte for byte"
SOURCE_DATE_EPOCH=1700000000 "$ferry" pack -f "$work/manifests/aistor.yaml" -o "$work/aistor-again.tar.zst" \
  --key "$work/release.key" --cache "$work/cache" --locked "${mirrors[@]}" -q
sha256sum "$work/aistor.tar.zst" "$work/aistor-again.tar.zst"
cmp "$work/aistor.tar.zst" "$work/aistor-again.tar.zst" && echo "identical"

step "ferry unpack aistor: verify, push, values, check (helm template); the licence is a site value"
printf 'LICENCE-FOR-THE-DEMO' > "$work/licence.txt" && chmod 600 "$work/licence.txt"
internal=(--registry "$internal_host/mirror" --pubkey "$work/release.pub" --ca-file "$work/internal/ca.pem"
          --username demo --password-stdin --state-dir "$work/state")
echo demo-password | "$ferry" unpack "$work/aistor.tar.zst" "${internal[@]}" --skip-upgrade \
  --set-file "aistor:license=$work/licence.txt"

step "ferry unpack datachain (global.imageRegistry reaches the postgresql and redis subcharts)"
echo demo-password | "$ferry" unpack "$work/datachain.tar.zst" "${internal[@]}" --skip-upgrade

step "checking without ferry: helm template with the overlays names only images skopeo finds internally"
for m in aistor datachain; do
  "$ferry" values "$work/$m.tar.zst" --registry "$internal_host/mirror" -o "$work/overlays" --pubkey "$work/release.pub" >/dev/null
done
{
  helm template aistor-operator "$repo/aistor/aistor-operator-5.2.1.tgz" -f "$work/overlays/aistor-operator.yaml"
  helm template aistor "$repo/aistor/aistor-objectstore-5.2.1.tgz" -f "$work/overlays/aistor.yaml" \
    --set-file "license=$work/licence.txt"
  helm template studio "$repo/datachain/studio-2.150.0.tgz" -f manifests/values/studio.yaml -f "$work/overlays/studio.yaml"
} | sed -n 's/^ *\(- \)\{0,1\}image: *"\{0,1\}\([^"]*\)"\{0,1\}$/\2/p' | sort -u > "$work/rendered-images.txt"
while read -r image; do
  case $image in "$internal_host/mirror/"*) ;; *) echo "NOT internal: $image" >&2; exit 1 ;; esac
  skopeo inspect --raw --cert-dir "$work/certs" --authfile "$work/auth.json" "docker://$image" >/dev/null
  echo "internal and present: $image"
done < "$work/rendered-images.txt"

step "ferry upgrade --plan: what unpack runs next against a cluster (none here)"
"$ferry" upgrade "$work/aistor.tar.zst" --registry "$internal_host/mirror" --pubkey "$work/release.pub" --plan \
  --set-file "aistor:license=$work/licence.txt"

echo
echo "demo finished: bundles, checksum files, the extracted layout and the overlays are in $work"
