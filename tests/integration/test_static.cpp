// The static build (-Dstatic_build=true; registered only then): the ferry binary depends
// on no shared library, travels inside the bundle it installs (files:), is taken out of
// that bundle with tar, zstd, base64, openssl and sha256sum alone, and then, in an empty
// root holding only itself, /etc/passwd, a CA file where RHEL keeps it and the media,
// verifies the bundle and pushes it into a TLS registry with basic auth.
// SPDX-License-Identifier: Apache-2.0
#include "common/registry_fixture.hpp"
#include "support/harness.hpp"

#include <nlohmann/json.hpp>

#include <elf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

namespace fs = std::filesystem;
using namespace ferry::itest;
using ferry::test::RegistryServer;
using nlohmann::json;

namespace {

const std::vector<std::string> k_tools = {"docker-registry", "umoci", "skopeo", "openssl", "htpasswd", "helm",
                                          "chroot", "tar", "zstd", "base64", "sha256sum", "strip"};
constexpr int k_registry_failure = 4;

fs::path ferry_bin() {
  const char* bin = std::getenv("FERRY_BIN");
  REQUIRE_MESSAGE(bin, "FERRY_BIN is not set (run the tests with `meson test`)");
  return fs::path(bin);
}

// The program headers of an ELF64 file: whether it asks for a program interpreter
// (ld.so) or carries a dynamic section. A fully static program has neither.
struct ElfLinking {
  bool interpreter = false;
  bool dynamic = false;
};

ElfLinking elf_linking(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  REQUIRE_MESSAGE(in, "cannot read " << file.string());
  Elf64_Ehdr header{};
  in.read(reinterpret_cast<char*>(&header), sizeof header);
  REQUIRE(in.gcount() == sizeof header);
  REQUIRE(std::string_view(reinterpret_cast<const char*>(header.e_ident), 4) == "\x7f" "ELF");
  REQUIRE(header.e_ident[EI_CLASS] == ELFCLASS64);
  REQUIRE(header.e_machine == EM_X86_64);
  ElfLinking out;
  for (unsigned i = 0; i < header.e_phnum; ++i) {
    Elf64_Phdr program{};
    in.seekg(static_cast<std::streamoff>(header.e_phoff + i * header.e_phentsize));
    in.read(reinterpret_cast<char*>(&program), sizeof program);
    REQUIRE(in.gcount() == sizeof program);
    if (program.p_type == PT_INTERP) out.interpreter = true;
    if (program.p_type == PT_DYNAMIC) out.dynamic = true;
  }
  return out;
}

// The manifest digest the OCI layout's index.json gives `ref`: what ferry must push,
// read without ferry.
std::string layout_digest(const fs::path& layout, const std::string& ref) {
  const json index = json::parse(read_file(layout / "index.json"));
  for (const json& m : index.at("manifests")) {
    if (m.contains("annotations") && m["annotations"].value("org.opencontainers.image.ref.name", "") == ref) {
      return m.at("digest").get<std::string>();
    }
  }
  FAIL("no ref " << ref << " in " << layout.string());
  return {};
}

// Where PATH finds `tool`.
fs::path which(const std::string& tool) {
  std::string path = ferry::test::must_run({"sh", "-c", "command -v " + tool});
  while (!path.empty() && (path.back() == '\n' || path.back() == ' ')) path.pop_back();
  return path;
}

} // namespace

TEST_CASE("the static ferry travels in its bundle and verifies and pushes it from an empty root") {
  require_tools(k_tools);
  REQUIRE_MESSAGE(::geteuid() == 0, "this test runs ferry under chroot(8) and needs root (CI runs as root)");

  const ElfLinking linking = elf_linking(ferry_bin());
  CHECK_MESSAGE(!linking.interpreter, "the static build asks for a program interpreter (ld.so)");
  CHECK_MESSAGE(!linking.dynamic, "the static build has a dynamic section");

  TestDir dir;
  const Fixtures f = make_fixtures(dir.path());
  // The release binary as it is shipped: stripped of its debug information.
  const fs::path tools = dir / "release-tools";
  fs::create_directories(tools);
  must({"strip", "-o", (tools / "ferry").string(), ferry_bin().string()});
  const fs::path helm = which("helm");

  const fs::path manifest = dir / "jump.yaml";
  write_file(manifest, "apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: jump, version: \"1.0\"}\n"
                       "images:\n"
                       "  - {ref: \"oci:./layout:app1\", name: example.com/team/app1:1.0}\n"
                       "  - {ref: \"oci:./layout:multi\", name: example.com/team/multi:2.0}\n"
                       "files:\n"
                       "  - {path: tools/ferry, source: " + (tools / "ferry").string() + ", mode: \"0755\"}\n"
                       "  - {path: tools/helm, source: " + helm.string() + ", mode: \"0755\"}\n");
  const fs::path bundle = dir / "jump-1.0.tar.zst";
  const RunResult pack = run_ferry({"pack", "-f", manifest.string(), "-o", bundle.string(), "--key", f.key.string()},
                                   {.cwd = dir.path(), .env = isolated_env(dir), .input = {}});
  INFO(pack.err);
  REQUIRE(pack.exit_code == 0);

  // On the jump host, before any ferry runs there: the signature and the binary's digest,
  // checked by hand exactly as packaging/README.md tells operators to.
  const fs::path media = dir / "by-hand";
  fs::create_directories(media);
  must({"tar", "--zstd", "-xf", bundle.string(), "-C", media.string(), "ferry.json", "ferry.json.sig"});
  must({"sh", "-c", "base64 -d '" + (media / "ferry.json.sig").string() + "' > '" +
                        (media / "ferry.json.sig.bin").string() + "'"});
  must({"openssl", "pkeyutl", "-verify", "-pubin", "-inkey", f.pub.string(), "-rawin", "-in",
        (media / "ferry.json").string(), "-sigfile", (media / "ferry.json.sig.bin").string()});
  std::string content_digest;
  std::string helm_digest;
  const json signed_table = json::parse(read_file(media / "ferry.json"));
  for (const json& file : signed_table.at("files")) {
    if (file.at("path") == "tools/ferry") content_digest = file.at("contentDigest").get<std::string>();
    if (file.at("path") == "tools/helm") helm_digest = file.at("contentDigest").get<std::string>();
  }
  // helm travels the same way: the signed table names the sha256 of the file packed.
  CHECK(helm_digest == "sha256:" + ferry::test::must_run({"sha256sum", helm.string()}).substr(0, 64));
  REQUIRE(content_digest.rfind("sha256:", 0) == 0);
  const std::string hex = content_digest.substr(7);
  must({"tar", "--zstd", "-xf", bundle.string(), "-C", media.string(), "blobs/sha256/" + hex});
  must({"sh", "-c",
        "cd '" + media.string() + "' && echo '" + hex + "  blobs/sha256/" + hex + "' | sha256sum -c --quiet"});

  // The empty root: the binary from the bundle, /etc/passwd, the registry's CA where RHEL
  // keeps the system bundle, a /tmp, a home, and the media. No ld.so, no libraries.
  RegistryServer target({.tls = true, .htpasswd = true});
  const fs::path root = dir / "root";
  for (const char* sub : {"etc/pki/tls/certs", "tmp", "root", "media"}) fs::create_directories(root / sub);
  fs::copy_file(media / "blobs/sha256" / hex, root / "ferry");
  fs::permissions(root / "ferry", fs::perms(0755));
  fs::permissions(root / "tmp", fs::perms(01777));
  write_file(root / "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
  fs::copy_file(target.ca_file(), root / "etc/pki/tls/certs/ca-bundle.crt");
  fs::copy_file(bundle, root / "media/jump-1.0.tar.zst");
  fs::copy_file(f.pub, root / "media/release.pub");
  CHECK(elf_linking(root / "ferry").interpreter == false);

  // `env -i`: nothing of this machine's environment reaches the chrooted ferry.
  const std::string chroot_bin = which("chroot").string();
  const auto chrooted = [&](const std::vector<std::string>& args, const std::string& input = {}) {
    std::vector<std::string> argv = {"env", "-i", "HOME=/root", "PATH=/", "NO_PROXY=127.0.0.1", "no_proxy=127.0.0.1",
                                     chroot_bin, root.string(), "/ferry"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, {.cwd = {}, .env = {}, .input = input});
  };

  const RunResult version = chrooted({"--version"});
  INFO(version.err);
  REQUIRE(version.exit_code == 0);
  CHECK(version.out.rfind("ferry ", 0) == 0);

  const RunResult verify = chrooted({"verify", "/media/jump-1.0.tar.zst", "--pubkey", "/media/release.pub"});
  INFO(verify.out << verify.err);
  REQUIRE(verify.exit_code == 0);

  const std::vector<std::string> push_args = {"push",       "/media/jump-1.0.tar.zst", "--registry",
                                              target.host() + "/jump", "--pubkey", "/media/release.pub",
                                              "--username", "ferry",     "--password-stdin"};
  const RunResult push = chrooted(push_args, "ferry-test-secret\n");
  INFO(push.out << push.err);
  REQUIRE(push.exit_code == 0);
  CHECK(ferry::test::registry_digest(target, "jump/team/app1:1.0") == layout_digest(f.layout, "app1"));
  CHECK(ferry::test::registry_digest(target, "jump/team/multi:2.0") == layout_digest(f.layout, "multi"));

  SUBCASE("without a CA file in the root, the push is refused as a TLS failure") {
    fs::remove(root / "etc/pki/tls/certs/ca-bundle.crt");
    std::vector<std::string> again = push_args;
    again[3] = target.host() + "/other";
    const RunResult refused = chrooted(again, "ferry-test-secret\n");
    CHECK(refused.exit_code == k_registry_failure);
    CHECK(contains(refused.err, "certificate"));
    // The hint names where ferry looked and the way out.
    CHECK(contains(refused.err, "/etc/pki/tls/certs/ca-bundle.crt"));
    CHECK(contains(refused.err, "SSL_CERT_FILE"));
  }
  SUBCASE("SSL_CERT_FILE names a CA file anywhere in the root") {
    fs::rename(root / "etc/pki/tls/certs/ca-bundle.crt", root / "media/site-ca.pem");
    std::vector<std::string> argv = {"env", "-i", "HOME=/root", "SSL_CERT_FILE=/media/site-ca.pem",
                                     chroot_bin, root.string(), "/ferry"};
    std::vector<std::string> again = push_args;
    again[3] = target.host() + "/other";
    argv.insert(argv.end(), again.begin(), again.end());
    const RunResult pushed = run(argv, {.cwd = {}, .env = {}, .input = "ferry-test-secret\n"});
    INFO(pushed.err);
    CHECK(pushed.exit_code == 0);
    CHECK(ferry::test::registry_digest(target, "other/team/app1:1.0") == layout_digest(f.layout, "app1"));
  }
}
