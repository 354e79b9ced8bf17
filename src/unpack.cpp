// Verify, inspect and extract: compose the bundle reader with files on disk.
// SPDX-License-Identifier: Apache-2.0
#include "unpack.hpp"

#include "bundle/signing.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"

#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

namespace ferry {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view k_skip_warning =
    "--insecure-skip-signature: the signature of this bundle is NOT checked. Its contents are checked only against "
    "its own ferry.json, which anyone who could change the bundle could also have rewritten";

bundle::SignaturePolicy load_trust(const TrustOptions& trust, bundle::TrustedKeys& keys, core::LogSink& log,
                                   bool keys_required) {
  for (const auto& path : trust.pubkeys) keys.add(bundle::PublicKey::load(path));
  if (trust.insecure_skip_signature) {
    log.warning(k_skip_warning);
    return bundle::SignaturePolicy::skip;
  }
  if (keys.empty()) {
    if (!keys_required) return bundle::SignaturePolicy::skip;
    throw core::UsageError("no trusted public key given",
                           "pass the release engineer's key with --pubkey KEY.pub (repeatable); only to accept an "
                           "unverified bundle, pass --insecure-skip-signature");
  }
  return bundle::SignaturePolicy::require;
}

std::uint64_t size_or_zero(const fs::path& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  return ec ? 0 : size;
}

// Writes one verified entry below the extraction directory.
class FileEntrySink final : public bundle::EntrySink {
public:
  FileEntrySink(const fs::path& path) : m_path(path) {
    fs::create_directories(path.parent_path());
    core::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd) {
      const int err = errno;
      throw core::Error(core::ExitCode::failure, "cannot create " + core::display(path) + ": " + core::errno_text(err));
    }
    m_sink.emplace(std::move(fd), core::display(path));
  }
  void write(const char* data, std::size_t size) override { m_sink->write(data, size); }
  // The whole directory is synced once before it is renamed into place.
  void commit() override { m_sink.reset(); }

private:
  fs::path m_path;
  std::optional<core::FdSink> m_sink;
};

void sync_directory_tree(const fs::path& dir) {
  core::UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd || ::syncfs(fd.get()) != 0) {
    const int err = errno;
    throw core::Error(core::ExitCode::failure, "cannot flush " + core::display(dir) + " to disk: " + core::errno_text(err));
  }
}

} // namespace

VerifyResult verify_bundle(const fs::path& path, const TrustOptions& trust, core::LogSink& log,
                           core::ProgressSink& progress) {
  bundle::TrustedKeys keys;
  const bundle::SignaturePolicy policy = load_trust(trust, keys, log, true);
  return core::with_context("verifying " + core::display(path), [&] {
    core::FileSource in(path);
    bundle::BundleReader reader(in, core::display(path));
    reader.open(keys, policy);
    VerifyResult result;
    result.stats = reader.read_entries(nullptr, progress);
    result.descriptor = reader.descriptor();
    result.signature = reader.signature();
    result.bundle_size = size_or_zero(path);
    return result;
  });
}

InspectResult inspect_bundle(const fs::path& path, const TrustOptions& trust, core::LogSink& log) {
  bundle::TrustedKeys keys;
  const bundle::SignaturePolicy policy = load_trust(trust, keys, log, false);
  return core::with_context("inspecting " + core::display(path), [&] {
    core::FileSource in(path);
    bundle::BundleReader reader(in, core::display(path));
    reader.open(keys, policy);
    return InspectResult{reader.descriptor(), reader.signature(), size_or_zero(path)};
  });
}

ExtractResult extract_bundle(const fs::path& path, const fs::path& directory, const TrustOptions& trust,
                             core::LogSink& log, core::ProgressSink& progress) {
  bundle::TrustedKeys keys;
  const bundle::SignaturePolicy policy = load_trust(trust, keys, log, true);
  std::error_code ec;
  if (fs::exists(fs::symlink_status(directory))) {
    if (!fs::is_directory(fs::symlink_status(directory)) || !fs::is_empty(directory, ec)) {
      throw core::UsageError(core::display(directory) + " already exists and is not an empty directory",
                             "choose a new output directory with -o");
    }
  }
  const fs::path parent = directory.has_parent_path() ? directory.parent_path() : fs::path(".");
  if (!fs::is_directory(parent)) {
    throw core::UsageError("output directory " + core::display(parent) + " does not exist", "create it first");
  }
  return core::with_context("extracting " + core::display(path) + " to " + core::display(directory), [&] {
    core::TempDir staging(directory, "extract");
    core::FileSource in(path);
    bundle::BundleReader reader(in, core::display(path));
    reader.open(keys, policy);
    ExtractResult result;
    result.verify.stats = reader.read_entries(
        [&](const bundle::StreamEntry& entry) { return std::make_unique<FileEntrySink>(staging.path() / entry.path); },
        progress);
    result.verify.descriptor = reader.descriptor();
    result.verify.signature = reader.signature();
    result.verify.bundle_size = size_or_zero(path);
    // The signed descriptor travels with the layout so the directory can be re-checked
    // with openssl and sha256sum later (docs/bundle-format.md).
    core::write_file_atomic(staging.path() / bundle::k_descriptor_path, reader.descriptor_bytes());
    if (!reader.signature_text().empty()) {
      core::write_file_atomic(staging.path() / bundle::k_signature_path, reader.signature_text());
    }
    sync_directory_tree(staging.path());
    if (::rename(staging.path().c_str(), directory.c_str()) != 0) {
      const int err = errno;
      throw core::Error(core::ExitCode::failure, "cannot rename " + core::display(staging.path()) + " to " +
                                                     core::display(directory) + ": " + core::errno_text(err));
    }
    staging.keep();
    result.directory = directory;
    return result;
  });
}

} // namespace ferry
