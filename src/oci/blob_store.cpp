// A content-addressed blob directory: blobs are hashed while written and renamed to their digest.
// SPDX-License-Identifier: Apache-2.0
#include "oci/blob_store.hpp"

#include "core/error.hpp"
#include "core/fs.hpp"

#include <cerrno>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

namespace ferry::oci {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view k_temp_stem = ".blob";

// A temporary file in the store's root ("<root>/.blob-PID-XXXXXX", locked while this
// process writes it: core::create_temporary_file): on the same file system as
// blobs/sha256/, so rename() moves it in atomically, and outside blobs/sha256/, so a
// listing of that directory never shows a half-written blob. Removed unless adopted.
class TempBlob {
public:
  explicit TempBlob(const fs::path& root) {
    core::OwnedTempFile temp = [&] {
      try {
        return core::create_temporary_file(root, k_temp_stem);
      } catch (core::Error& e) {
        e.set_hint("check that the work directory exists and is writable");
        throw;
      }
    }();
    m_path = std::move(temp.path);
    // mkstemp creates 0600; blobs are ordinary readable files like any other output.
    if (::fchmod(temp.fd.get(), 0644) != 0) {
      const int err = errno;
      ::unlink(m_path.c_str());
      throw core::Error(core::ExitCode::failure,
                        "cannot set the mode of " + core::display(m_path) + ": " + core::errno_text(err));
    }
    m_sink = std::make_unique<core::FdSink>(std::move(temp.fd), core::display(m_path));
  }
  TempBlob(const TempBlob&) = delete;
  TempBlob& operator=(const TempBlob&) = delete;
  ~TempBlob() {
    if (!m_adopted) ::unlink(m_path.c_str());
    m_sink.reset();
  }

  core::Sink& sink() { return *m_sink; }

  // fsync before the rename: after a crash a name under blobs/sha256/ must never hold
  // fewer bytes than its digest says, since a later run trusts contains(). The
  // descriptor (and its lock) stays open until the temporary name is gone.
  void move_to(const fs::path& target) {
    m_sink->sync();
    if (::rename(m_path.c_str(), target.c_str()) != 0) {
      const int err = errno;
      throw core::Error(core::ExitCode::failure, "cannot rename " + core::display(m_path) + " to " +
                                                     core::display(target) + ": " + core::errno_text(err));
    }
    m_adopted = true;
    m_sink.reset();
  }

private:
  fs::path m_path;
  std::unique_ptr<core::FdSink> m_sink;
  bool m_adopted = false;
};

} // namespace

BlobStore::BlobStore(fs::path root) : m_root(std::move(root)) {
  const fs::path blobs = m_root / "blobs" / "sha256";
  std::error_code ec;
  fs::create_directories(blobs, ec);
  if (ec) {
    throw core::Error(core::ExitCode::failure,
                      "cannot create the blob store " + core::display(blobs) + ": " + ec.message(),
                      "check that the work directory is writable");
  }
}

StoredBlob BlobStore::put(core::Source& source, std::string_view what, const std::optional<core::Digest>& expected,
                          std::optional<std::uint64_t> expected_size) {
  TempBlob temp(m_root);
  core::HashingSink hashing(temp.sink());
  core::copy(source, hashing);
  const StoredBlob blob{hashing.finish(), hashing.count()};
  if (expected_size && blob.size != *expected_size) {
    throw core::IntegrityError(std::string(what) + " is " + std::to_string(blob.size) + " bytes, expected " +
                               std::to_string(*expected_size));
  }
  if (expected && blob.digest != *expected) {
    throw core::IntegrityError(std::string(what) + " has digest " + blob.digest.str() + ", expected " +
                               expected->str());
  }
  // Same digest, same bytes: an existing copy is as good as ours (the temp is dropped).
  if (!contains(blob.digest)) temp.move_to(path(blob.digest));
  return blob;
}

StoredBlob BlobStore::put_bytes(std::string_view bytes) {
  const StoredBlob blob{core::sha256_of(bytes), bytes.size()};
  if (contains(blob.digest)) return blob;
  core::StringSource source(bytes);
  return put(source, "blob " + blob.digest.str(), blob.digest, blob.size);
}

struct BlobStore::Writer::Impl {
  BlobStore& store;
  Hashing mode;
  TempBlob temp;
  core::HashingSink hashing{temp.sink()};
  std::uint64_t written = 0; // Hashing::by_caller
  Impl(BlobStore& s, Hashing m) : store(s), mode(m), temp(s.root()) {}
};

BlobStore::Writer::Writer(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
BlobStore::Writer::~Writer() = default;

void BlobStore::Writer::write(const char* data, std::size_t size) {
  if (m_impl->mode == Hashing::by_caller) {
    m_impl->temp.sink().write(data, size);
    m_impl->written += size;
  } else {
    m_impl->hashing.write(data, size);
  }
}

StoredBlob BlobStore::Writer::commit(std::string_view what, const core::Digest& expected, std::uint64_t expected_size) {
  const StoredBlob blob = m_impl->mode == Hashing::by_caller ? StoredBlob{expected, m_impl->written}
                                                             : StoredBlob{m_impl->hashing.finish(), m_impl->hashing.count()};
  if (blob.size != expected_size) {
    throw core::IntegrityError(std::string(what) + " is " + std::to_string(blob.size) + " bytes, expected " +
                               std::to_string(expected_size));
  }
  if (blob.digest != expected) {
    throw core::IntegrityError(std::string(what) + " has digest " + blob.digest.str() + ", expected " + expected.str());
  }
  if (!m_impl->store.contains(blob.digest)) m_impl->temp.move_to(m_impl->store.path(blob.digest));
  return blob;
}

std::unique_ptr<BlobStore::Writer> BlobStore::begin(Hashing hashing) {
  return std::unique_ptr<Writer>(new Writer(std::make_unique<Writer::Impl>(*this, hashing)));
}

std::vector<core::Leftover> BlobStore::remove_leftovers() { return core::remove_leftovers(m_root, k_temp_stem); }

std::optional<std::uint64_t> BlobStore::size_of(const core::Digest& digest) const {
  struct stat st {};
  if (::stat(path(digest).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  return static_cast<std::uint64_t>(st.st_size);
}

bool BlobStore::contains(const core::Digest& digest) const {
  struct stat st {};
  return ::stat(path(digest).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

fs::path BlobStore::path(const core::Digest& digest) const {
  return m_root / "blobs" / "sha256" / std::string(digest.hex());
}

} // namespace ferry::oci
