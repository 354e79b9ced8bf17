#!/usr/bin/env bash
# The main job end to end on manifests/example.yaml, against local registries:
# keygen -> pack (from an OCI layout, a docker-save archive and a registry) -> sha256sum
# -> verify -> inspect -> push into a TLS registry with basic auth -> read back with
# skopeo -> extract. Image sources are made here with umoci and skopeo (no Docker
# daemon needed); both registries are Debian's docker-registry on 127.0.0.1.
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
    htpasswd -Bbn demo demo-password > "$dir/htpasswd" 2>/dev/null
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
  --key "$work/release.key" --plain-http

step "checking the media with coreutils: sha256sum -c"
(cd "$work" && sha256sum -c example-1.0.0.sha256)

step "ferry verify"
"$ferry" verify "$work/example-1.0.0.tar.zst" --pubkey "$work/release.pub"

step "ferry inspect"
"$ferry" inspect "$work/example-1.0.0.tar.zst" --pubkey "$work/release.pub"

step "ferry push into the internal registry (TLS, basic auth), then again: nothing left to move"
echo demo-password | "$ferry" push "$work/example-1.0.0.tar.zst" --registry "$internal_host/mirror" \
  --pubkey "$work/release.pub" --ca-file "$work/internal/ca.pem" --username demo --password-stdin --state-dir "$work/state"
echo demo-password | "$ferry" push "$work/example-1.0.0.tar.zst" --registry "$internal_host/mirror" \
  --pubkey "$work/release.pub" --ca-file "$work/internal/ca.pem" --username demo --password-stdin --state-dir "$work/state" -q

step "reading the pushed images back with skopeo (not ferry)"
mkdir -p "$work/certs" && cp "$work/internal/ca.pem" "$work/certs/ca.crt"
for ref in mirror/shop/web:1.0 mirror/shop/api:1.0 mirror/charts/hello:0.1.0; do
  digest=$(skopeo inspect --raw --cert-dir "$work/certs" --creds demo:demo-password "docker://$internal_host/$ref" | sha256sum | cut -c1-64)
  echo "$internal_host/$ref  sha256:$digest"
done

step "ferry extract"
"$ferry" extract "$work/example-1.0.0.tar.zst" -o "$work/layout" --pubkey "$work/release.pub"

step "reading the extracted layout with skopeo (not ferry)"
skopeo inspect "oci:$work/layout:registry.example.com/shop/web:1.0" | grep -E '"(Name|Digest|Architecture)"'
echo
echo "demo finished: bundle, checksum file and extracted layout are in $work"
