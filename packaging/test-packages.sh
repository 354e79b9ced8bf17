#!/usr/bin/env bash
# Builds and checks ferry's packages from this checkout (tracked and new files), as
# scripts/test.sh does in CI:
#   Debian  dpkg-buildpackage -b; lintian with no error or warning; dpkg -i; the
#           installed ferry runs, its man page renders, its bash completion loads and
#           completes; dpkg -r.
#   RPM     rpmbuild -bb --with static (Debian's rpm); the package requires no shared
#           library; rpm -i into an empty root; ferry --version runs there (chroot).
# Needs root (dpkg -i, chroot) and the static libraries of packaging/static/build-deps.sh
# (STATIC_DEPS, default .tools/static-deps). Prints one "packages: ..." line at the end.
# SPDX-License-Identifier: Apache-2.0
set -euo pipefail
cd "$(dirname "$0")/.."
source_dir=$PWD
static_deps=${STATIC_DEPS:-$PWD/.tools/static-deps}
version=$(sed -n "s/^  version : '\(.*\)',$/\1/p" meson.build)
[ -n "$version" ] || { echo "test-packages.sh: no version in meson.build" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "test-packages.sh: needs root (dpkg -i, chroot)" >&2; exit 1; }

work=$(mktemp -d /tmp/ferry-packages.XXXXXX)
installed=0
cleanup() {
  [ "$installed" -eq 0 ] || dpkg -r ferry >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "test-packages.sh: FAILED: $*" >&2
  exit 1
}

# The source tree as a release tarball would hold it: tracked and new files, not ignored ones.
tree="$work/ferry-$version"
mkdir -p "$tree"
git -C "$source_dir" ls-files -z --cached --others --exclude-standard |
  (cd "$source_dir" && xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh) |
  tar -C "$source_dir" --null -T - -cf - | tar -C "$tree" -xf -

# ---- Debian ----
echo "== dpkg-buildpackage -b"
(cd "$tree" && dpkg-buildpackage -b -us -uc >"$work/deb-build.log" 2>&1) || {
  tail -n 40 "$work/deb-build.log" >&2
  fail "dpkg-buildpackage -b"
}
deb=$(ls "$work"/ferry_"$version"_*.deb)
changes=$(ls "$work"/ferry_"$version"_*.changes)
echo "== lintian $(basename "$changes")"
lintian --fail-on error,warning --display-info "$changes" | tee "$work/lintian.log" ||
  fail "lintian reports errors or warnings (above)"
contents=$(dpkg-deb -c "$deb")
grep -q ' ./usr/bin/ferry$' <<<"$contents" || fail "the .deb has no /usr/bin/ferry"
echo "== dpkg -i $(basename "$deb")"
dpkg -i "$deb" >/dev/null
installed=1
[ "$(/usr/bin/ferry --version)" = "ferry $version" ] || fail "the installed ferry does not say its version"
# The page from the package itself (some images tell dpkg to skip /usr/share/man).
dpkg-deb --fsys-tarfile "$deb" | tar -xOf - ./usr/share/man/man1/ferry.1.gz | gunzip >"$work/ferry.1"
page=$(MANPAGER=cat man -l "$work/ferry.1" 2>/dev/null)
grep -q 'ferry pack' <<<"$page" || fail "man -l ferry.1 shows no 'ferry pack'"
completed=$(bash -c 'source /usr/share/bash-completion/completions/ferry
  COMP_WORDS=(ferry pa); COMP_CWORD=1; _ferry; echo "${COMPREPLY[*]}"')
[ "$completed" = "pack" ] || fail "bash completion of 'ferry pa' gave '$completed', not 'pack'"
dpkg -r ferry >/dev/null
installed=0
[ ! -e /usr/bin/ferry ] || fail "dpkg -r left /usr/bin/ferry"
deb_size=$(stat -c %s "$deb")

# ---- RPM (static) ----
echo "== rpmbuild -bb --with static"
mkdir -p "$work/rpm/SOURCES"
tar -C "$work" -czf "$work/rpm/SOURCES/ferry-$version.tar.gz" "ferry-$version"
rpmbuild -bb --nodeps --with static --define "_topdir $work/rpm" --define "static_deps $static_deps" \
  "$tree/packaging/rpm/ferry.spec" >"$work/rpm-build.log" 2>&1 || {
  tail -n 40 "$work/rpm-build.log" >&2
  fail "rpmbuild -bb"
}
rpm_file=$(ls "$work"/rpm/RPMS/x86_64/ferry-"$version"-1*.x86_64.rpm)
grep -qx /usr/bin/ferry <<<"$(rpm -qpl "$rpm_file")" || fail "the RPM has no /usr/bin/ferry"
requires=$(rpm -qpR "$rpm_file")
if grep -E '\.so|^lib' <<<"$requires"; then
  fail "the static RPM requires shared libraries (above)"
fi
root="$work/rpm-root"
mkdir -p "$root"
rpm --root "$root" --initdb
rpm --root "$root" -i --nodeps "$rpm_file"
[ "$(chroot "$root" /usr/bin/ferry --version)" = "ferry $version" ] || fail "ferry from the RPM does not run in an empty root"
rpm_size=$(stat -c %s "$rpm_file")

echo "packages: .deb $((deb_size / 1024)) KiB (lintian clean, installs, runs, man page, bash completion); static .rpm $((rpm_size / 1024)) KiB (no library requirements, runs in an empty root)"
