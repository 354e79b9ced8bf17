#!/usr/bin/env bash
# Builds the three libraries Debian does not ship in a form a fully static ferry can link:
#   libcurl     Debian's libcurl.a needs static GSSAPI, LDAP, libpsl, nghttp2 and libssh2,
#               which Debian ships only as shared libraries; ferry speaks HTTP(S) only.
#   libarchive  Debian's libarchive.a pulls in its XAR writer, so libxml2 and with it ICU
#               (30 MB), plus nettle, libacl and liblz4; ferry reads and writes tar only.
#   fmt         Debian's libfmt-dev has no libfmt.a.
# All three come from Debian bookworm's own source packages (apt-get source: checksums checked
# against the signed Sources index, Debian's security patches applied), so the static
# binary carries the same fixes as the shared libraries. Everything else (OpenSSL,
# zstd, yaml-cpp, xz, bzip2, zlib) is Debian's own static archive from the -dev packages.
#
# Usage: packaging/static/build-deps.sh PREFIX
# Installs into PREFIX/{include,lib,lib/pkgconfig}; a second run with the same sources
# does nothing. Needs dpkg-dev, cmake and network access to the Debian archive.
# SPDX-License-Identifier: Apache-2.0
set -euo pipefail

prefix=${1:?usage: build-deps.sh PREFIX}
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
work="$prefix/src"
stamp="$prefix/.ferry-static-deps"
recipe_hash=$(sha256sum "$0" | cut -d' ' -f1)

if [ -f "$stamp" ] && grep -qx "recipe $recipe_hash" "$stamp"; then
  echo "static dependencies already built in $prefix ($(grep -v '^recipe' "$stamp" | tr '\n' ' '))"
  exit 0
fi
rm -rf "$work" "$prefix/include" "$prefix/lib" "$stamp"
mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/apt/sources"

# A private apt configuration with deb-src lines: the machine's own sources stay as they are.
for suite in "debian bookworm bookworm-updates" "debian-security bookworm-security"; do
  set -- $suite
  archive=$1
  shift
  cat >> "$work/apt/sources/ferry-src.sources" <<EOF
Types: deb-src
URIs: http://deb.debian.org/$archive
Suites: $*
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

EOF
done
apt_options=(
  -o "Dir::Etc::SourceList=/dev/null"
  -o "Dir::Etc::SourceParts=$work/apt/sources"
  -o "Dir::State::Lists=$work/apt/lists"
  -o "Dir::Cache=$work/apt/cache"
  -o "APT::Sandbox::User=root"
)
apt-get "${apt_options[@]}" -qq update
(cd "$work" && apt-get "${apt_options[@]}" -qq source curl libarchive fmtlib >/dev/null 2>&1) || {
  echo "build-deps.sh: apt-get source curl libarchive fmtlib failed; is deb.debian.org reachable and dpkg-dev installed?" >&2
  exit 1
}
curl_dir=$(find "$work" -maxdepth 1 -type d -name 'curl-*' | head -n1)
fmt_dir=$(find "$work" -maxdepth 1 -type d -name 'fmtlib-*' | head -n1)
archive_dir=$(find "$work" -maxdepth 1 -type d -name 'libarchive-*' | head -n1)
archive_version=$(cd "$work" && ls libarchive_*.dsc | sed 's/^libarchive_\(.*\)\.dsc$/\1/')
curl_version=$(cd "$work" && ls curl_*.dsc | sed 's/^curl_\(.*\)\.dsc$/\1/')
fmt_version=$(cd "$work" && ls fmtlib_*.dsc | sed 's/^fmtlib_\(.*\)\.dsc$/\1/')
jobs=$(nproc)

echo "building fmt $fmt_version (static)"
cmake -S "$fmt_dir" -B "$work/fmt-build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" \
  -DCMAKE_INSTALL_LIBDIR=lib -DBUILD_SHARED_LIBS=OFF -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
  -DFMT_TEST=OFF -DFMT_DOC=OFF >/dev/null
cmake --build "$work/fmt-build" -j "$jobs" >/dev/null
cmake --install "$work/fmt-build" >/dev/null

echo "building libcurl $curl_version (static, HTTP and HTTPS over OpenSSL only)"
(
  cd "$curl_dir"
  # No built-in CA path: ferry finds the host's bundle itself (Debian, RHEL, SUSE and
  # Alpine locations, or SSL_CERT_FILE), so the one binary verifies TLS on each of them.
  ./configure --prefix="$prefix" --libdir="$prefix/lib" --disable-shared --enable-static --with-pic \
    --with-openssl --without-ca-bundle --without-ca-path --without-ca-fallback \
    --enable-http --disable-ftp --disable-file --disable-ldap --disable-ldaps --disable-rtsp \
    --disable-dict --disable-telnet --disable-tftp --disable-pop3 --disable-imap --disable-smb \
    --disable-smtp --disable-gopher --disable-mqtt --disable-manual --disable-docs --disable-ntlm \
    --without-libpsl --without-libidn2 --without-nghttp2 --without-ngtcp2 --without-nghttp3 \
    --without-brotli --without-zstd --without-zlib --without-libssh2 --without-librtmp \
    --without-gssapi --enable-threaded-resolver --enable-ipv6 >"$work/curl-configure.log" 2>&1 || {
    tail -n 30 "$work/curl-configure.log" >&2
    exit 1
  }
  make -C lib -j "$jobs" >/dev/null
  make -C lib install >/dev/null
  make -C include install >/dev/null
  make install-pkgconfigDATA >/dev/null
)

echo "building libarchive $archive_version (static, tar with gzip, bzip2, xz and zstd)"
# CMake, not configure: Debian's patches touch the autotools inputs, and configure would
# then want automake to regenerate itself.
cmake -S "$archive_dir" -B "$work/archive-build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" \
  -DCMAKE_INSTALL_LIBDIR=lib -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DENABLE_TEST=OFF \
  -DENABLE_TAR=OFF -DENABLE_CPIO=OFF -DENABLE_CAT=OFF -DENABLE_ACL=OFF -DENABLE_XATTR=OFF \
  -DENABLE_ZLIB=ON -DENABLE_BZip2=ON -DENABLE_LZMA=ON -DENABLE_ZSTD=ON -DENABLE_LZ4=OFF -DENABLE_LZO=OFF \
  -DENABLE_LIBB2=OFF -DENABLE_LIBXML2=OFF -DENABLE_EXPAT=OFF -DENABLE_NETTLE=OFF -DENABLE_OPENSSL=OFF \
  -DENABLE_CNG=OFF -DENABLE_ICONV=ON -DENABLE_WERROR=OFF >"$work/libarchive-configure.log" 2>&1 || {
  tail -n 30 "$work/libarchive-configure.log" >&2
  exit 1
}
cmake --build "$work/archive-build" -j "$jobs" --target archive_static >/dev/null
install -D -m 0644 "$work/archive-build/libarchive/libarchive.a" "$prefix/lib/libarchive.a"
install -m 0644 "$archive_dir/libarchive/archive.h" "$archive_dir/libarchive/archive_entry.h" "$prefix/include/"
# The .pc file CMake writes names the codecs this build links (Libs.private).
install -D -m 0644 "$work/archive-build/build/pkgconfig/libarchive.pc" "$prefix/lib/pkgconfig/libarchive.pc"

printf 'recipe %s\ncurl %s\nlibarchive %s\nfmt %s\n' "$recipe_hash" "$curl_version" "$archive_version" "$fmt_version" \
  > "$stamp"
rm -rf "$work"
echo "static dependencies built in $prefix: curl $curl_version, libarchive $archive_version, fmt $fmt_version"
