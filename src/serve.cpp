// `ferry serve`: verify first, then serve each blob from where it lies (its zstd frame in
// the bundle, or its file in the directory).
// SPDX-License-Identifier: Apache-2.0
#include "serve.hpp"

#include "bundle/frame_reader.hpp"
#include "bundle/zstd_frames.hpp"
#include "core/encoding.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "image_push.hpp"
#include "oci/media_types.hpp"
#include "oci/reference.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

namespace ferry {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view k_blob_prefix = "blobs/sha256/";

bool is_manifest_type(const std::string& media_type) {
  return oci::media_type::is_index(media_type) || oci::media_type::is_manifest(media_type);
}

void skip(core::Source& in, std::uint64_t count, const std::string& what) {
  std::string buffer(static_cast<std::size_t>(std::min<std::uint64_t>(count, core::k_copy_buffer_size)), '\0');
  while (count > 0) {
    const std::size_t n = in.read(buffer.data(), static_cast<std::size_t>(std::min<std::uint64_t>(count, buffer.size())));
    if (n == 0) throw core::IntegrityError(what + " ended before the requested range");
    count -= n;
  }
}

// Bytes [offset, offset + length) of the one entry in a zstd frame of the bundle.
class FrameBlobSource final : public core::Source {
public:
  FrameBlobSource(const fs::path& file, const bundle::FrameExtent& frame, const std::string& display,
                  const std::string& path, std::uint64_t offset, std::uint64_t length)
      : m_reader(file, frame, display), m_left(length) {
    const auto entry = m_reader.tar().next();
    if (!entry || entry->path != path) {
      throw core::IntegrityError("bundle " + display + " changed since it was verified: the frame of " + path +
                                 " now holds " + (entry ? entry->path : std::string("nothing")));
    }
    skip(m_reader.tar().body(), offset, path + " in " + display);
  }
  std::size_t read(char* data, std::size_t size) override {
    const std::size_t n = m_reader.tar().read(data, static_cast<std::size_t>(std::min<std::uint64_t>(size, m_left)));
    m_left -= n;
    return n;
  }

private:
  bundle::FrameReader m_reader;
  std::uint64_t m_left;
};

// Bytes [offset, offset + length) of a file.
class FileRangeSource final : public core::Source {
public:
  FileRangeSource(const fs::path& file, std::uint64_t offset, std::uint64_t length) : m_file(file), m_left(length) {
    m_file.seek(offset);
  }
  std::size_t read(char* data, std::size_t size) override {
    const std::size_t n = m_file.read(data, static_cast<std::size_t>(std::min<std::uint64_t>(size, m_left)));
    m_left -= n;
    return n;
  }

private:
  core::FileSource m_file;
  std::uint64_t m_left;
};

std::string checked_prefix(const std::string& prefix) {
  std::string p = prefix;
  while (!p.empty() && p.front() == '/') p.erase(0, 1);
  while (!p.empty() && p.back() == '/') p.pop_back();
  if (p.empty()) return p;
  try {
    (void)oci::Reference::parse("localhost/" + p + "/x");
  } catch (const core::Error&) {
    throw core::UsageError("--prefix '" + prefix + "' is not a repository path",
                           "give lower-case path components such as mirror or team/mirror");
  }
  return p;
}

// Repositories and tags as push would create them, every blob, every manifest's bytes.
serve::Catalog catalog_of(const bundle::BundleDescriptor& d, const std::string& prefix,
                          std::map<core::Digest, std::string> manifests, core::LogSink& log) {
  serve::Catalog catalog;
  const PushTarget target{"localhost", prefix};
  auto add = [&](const std::string& repository, const std::optional<std::string>& tag, const core::Digest& digest,
                 const std::string& what) {
    auto& tags = catalog.repositories[repository];
    if (!tag) return;
    const auto [it, added] = tags.emplace(*tag, digest);
    if (!added && it->second != digest) {
      log.warning("serve: " + what + " is " + repository + ":" + *tag + ", as is another artifact of the bundle with digest " +
                  it->second.str() + "; that one is served under the tag (" + what + " by digest only)");
    }
  };
  for (const auto& image : d.images) {
    const oci::Reference ref = oci::Reference::parse(image.ref);
    add(target.image_repository(ref), ref.tag(), image.digest, "image " + image.ref);
  }
  for (const auto& chart : d.charts) {
    add(target.chart_repository(chart.name), chart_tag(chart.version), chart.digest, "chart " + chart.ref);
  }
  for (const auto& blob : d.blobs) {
    if (!blob.omitted) catalog.blobs[blob.digest] = serve::BlobInfo{blob.size, blob.media_type};
  }
  catalog.manifests = std::move(manifests);
  return catalog;
}

void refuse_differential(const bundle::BundleDescriptor& d, const std::string& display) {
  if (d.differential()) {
    throw core::UsageError(display + " is a differential bundle: the blobs its base has are not in it, so its images "
                                     "cannot be served whole",
                           "push it into the internal registry with `ferry push`, or serve the full bundle");
  }
}

ServedContent from_bundle(const ServeOptions& options, const bundle::TrustedKeys& keys, bundle::SignaturePolicy policy,
                          core::LogSink& log, core::ProgressSink& progress) {
  const fs::path file = options.source;
  const std::string display = core::display(file);
  ServedContent content;
  content.kind = "bundle";
  core::FileSource in(file);
  bundle::BundleReader reader(in, display);
  reader.open(keys, policy);
  const bundle::BundleDescriptor& d = reader.descriptor();
  if (d.volumes) {
    throw core::UsageError(display + " is one volume of a split bundle (" + std::to_string(d.volumes->count) +
                               " volumes); ferry serve reads a one-file bundle or an extracted directory",
                           "extract every volume into a directory, `ferry extract --pubkey KEY -o DIR NAME.*.tar.zst`, "
                           "then run `ferry serve DIR`");
  }
  refuse_differential(d, "bundle " + display);

  core::FileSource probe(file);
  const std::uint64_t file_size = probe.size();
  if (!bundle::framed_per_entry(file, bundle::FrameWalker(probe.fd(), file_size, display), display)) {
    throw core::UsageError("bundle " + display + " is not written one zstd frame per entry (it was recompressed), so "
                           "its blobs cannot be read one at a time",
                           "extract it, `ferry extract --pubkey KEY -o DIR " + display + "`, then run `ferry serve DIR`");
  }

  std::map<core::Digest, std::string> manifests;
  const bundle::StreamStats stats = reader.read_entries_parallel(
      file, std::max(2, options.jobs),
      [&](const bundle::StreamEntry& entry) -> std::unique_ptr<bundle::EntrySink> {
        if (!is_manifest_type(entry.media_type)) return nullptr;
        return std::make_unique<bundle::CollectSink>(manifests, entry.digest);
      },
      progress);
  content.verified_bytes = stats.bytes;

  // Where each blob's frame is: the frames were all verified above, one entry each.
  auto frames = std::make_shared<std::map<core::Digest, bundle::FrameExtent>>();
  bundle::FrameWalker walker(probe.fd(), file_size, display);
  while (const auto frame = walker.next()) {
    bundle::FrameReader frame_reader(file, *frame, display);
    const auto entry = frame_reader.tar().next();
    if (!entry || entry->path.rfind(k_blob_prefix, 0) != 0) continue;
    const auto digest = core::Digest::try_parse("sha256:" + entry->path.substr(k_blob_prefix.size()));
    if (digest) frames->emplace(*digest, *frame);
  }
  for (const auto& blob : d.blobs) {
    if (!frames->count(blob.digest)) {
      throw core::IntegrityError("bundle " + display + ": no zstd frame holds blob " + blob.digest.str() +
                                 " although the bundle verified; it changed while it was read");
    }
  }
  content.verified_blobs = frames->size();
  content.descriptor = d;
  content.signature = reader.signature();
  content.catalog = catalog_of(d, options.prefix, std::move(manifests), log);
  content.opener = [file, display, frames](const core::Digest& digest, std::uint64_t offset, std::uint64_t length) {
    return std::make_unique<FrameBlobSource>(file, frames->at(digest), display,
                                             std::string(k_blob_prefix) + std::string(digest.hex()), offset, length);
  };
  return content;
}

// Checks one file of the directory against its digest and size; returns its bytes when
// `keep` (manifests).
std::optional<std::string> check_file(const fs::path& path, const core::Digest& digest, std::uint64_t size, bool keep,
                                      const std::string& display, const std::function<void(std::size_t)>& counted) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    throw core::IntegrityError(display + " lacks " + core::display(path) + ": " + core::errno_text(errno),
                               "extract the bundle again with `ferry extract`");
  }
  if (!S_ISREG(st.st_mode)) {
    throw core::IntegrityError(core::display(path) + " in " + display + " is not a regular file",
                               "extract the bundle again with `ferry extract`");
  }
  if (static_cast<std::uint64_t>(st.st_size) != size) {
    throw core::IntegrityError(core::display(path) + " in " + display + " is " + std::to_string(st.st_size) +
                                   " bytes, but the signed table says " + std::to_string(size),
                               "extract the bundle again with `ferry extract`");
  }
  core::FileSource in(path);
  core::Sha256 hash;
  std::string bytes;
  std::string buffer(core::k_copy_buffer_size, '\0');
  for (;;) {
    const std::size_t n = in.read(buffer.data(), buffer.size());
    if (n == 0) break;
    hash.update(buffer.data(), n);
    if (keep) bytes.append(buffer.data(), n);
    counted(n);
  }
  const core::Digest actual = hash.finish();
  if (actual != digest) {
    throw core::IntegrityError(core::display(path) + " in " + display + " hashes to " + actual.str() +
                                   ", but the signed table says " + digest.str(),
                               "extract the bundle again with `ferry extract`");
  }
  if (!keep) return std::nullopt;
  return bytes;
}

ServedContent from_directory(const ServeOptions& options, const bundle::TrustedKeys& keys,
                             bundle::SignaturePolicy policy, core::ProgressSink& progress, core::LogSink& log) {
  const fs::path dir = options.source;
  const std::string display = "directory " + core::display(dir);
  ServedContent content;
  content.kind = "directory";
  const fs::path descriptor_file = dir / bundle::k_descriptor_path;
  if (!fs::is_regular_file(descriptor_file)) {
    throw core::UsageError(display + " has no ferry.json: ferry serve serves a directory written by `ferry extract`",
                           "extract the bundle first: `ferry extract --pubkey KEY -o DIR BUNDLE.tar.zst`");
  }
  const std::string descriptor_bytes = core::read_file(descriptor_file, bundle::k_max_descriptor_size);
  std::optional<std::string> signature;
  const fs::path signature_file = dir / bundle::k_signature_path;
  if (fs::exists(fs::symlink_status(signature_file))) {
    const std::string text = core::read_file(signature_file, bundle::k_max_signature_size);
    signature = core::base64_decode(text);
    if (!signature) throw core::IntegrityError("ferry.json.sig in " + display + " is not base64 text");
  }
  content.descriptor =
      bundle::check_descriptor(descriptor_bytes, signature, keys, policy, display, content.signature);
  const bundle::BundleDescriptor& d = content.descriptor;
  refuse_differential(d, display);

  auto noop = [](std::size_t) {};
  for (const auto& entry : d.layout) check_file(dir / entry.path, entry.digest, entry.size, false, display, noop);

  // Every blob, `jobs` files at a time.
  std::mutex mutex;
  std::map<core::Digest, std::string> manifests;
  std::atomic<std::size_t> next{0};
  std::atomic<std::uint64_t> done_bytes{0};
  std::exception_ptr error;
  const std::uint64_t total = d.blob_bytes();
  auto work = [&] {
    for (;;) {
      const std::size_t i = next++;
      if (i >= d.blobs.size()) return;
      const bundle::BlobRecord& blob = d.blobs[i];
      try {
        const fs::path path = dir / (std::string(k_blob_prefix) + std::string(blob.digest.hex()));
        auto bytes = check_file(path, blob.digest, blob.size, is_manifest_type(blob.media_type), display,
                                [&](std::size_t n) {
                                  const std::uint64_t now = done_bytes += n;
                                  std::lock_guard lock(mutex);
                                  progress.progress({"verify", blob.digest.str(), now, total});
                                });
        std::lock_guard lock(mutex);
        if (bytes) manifests.emplace(blob.digest, std::move(*bytes));
      } catch (...) {
        std::lock_guard lock(mutex);
        if (!error) error = std::current_exception();
        next = d.blobs.size();
        return;
      }
    }
  };
  std::vector<std::thread> threads;
  const int jobs = std::clamp(options.jobs, 1, 64);
  for (int j = 1; j < jobs; ++j) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);

  content.verified_blobs = d.blobs.size();
  content.verified_bytes = done_bytes;
  content.catalog = catalog_of(d, options.prefix, std::move(manifests), log);
  content.opener = [dir](const core::Digest& digest, std::uint64_t offset, std::uint64_t length) {
    return std::make_unique<FileRangeSource>(dir / (std::string(k_blob_prefix) + std::string(digest.hex())), offset,
                                             length);
  };
  return content;
}

} // namespace

ServedContent prepare_served_content(const ServeOptions& options, core::LogSink& log, core::ProgressSink& progress) {
  bundle::TrustedKeys keys;
  const bundle::SignaturePolicy policy = load_trust(options.trust, keys, log, true);
  ServeOptions checked = options;
  checked.prefix = checked_prefix(options.prefix);
  std::error_code ec;
  const auto status = fs::status(options.source, ec);
  if (ec || !fs::exists(status)) {
    throw core::UsageError("cannot serve " + core::display(options.source) + ": it does not exist",
                           "give a bundle file (.tar.zst) or a directory written by `ferry extract`");
  }
  return core::with_context("preparing to serve " + core::display(options.source), [&] {
    return fs::is_directory(status) ? from_directory(checked, keys, policy, progress, log)
                                    : from_bundle(checked, keys, policy, log, progress);
  });
}

} // namespace ferry
