// A content-addressed directory of blobs (blobs/sha256/<hex>), written atomically.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "core/digest.hpp"
#include "core/fs.hpp"
#include "core/io.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

namespace ferry::oci {

struct StoredBlob {
  core::Digest digest;
  std::uint64_t size = 0;
};

// Blobs land under a temporary name while they are hashed and are renamed to their
// digest only once complete and (when an expected digest is given) checked: a file under
// blobs/sha256/ always holds exactly the bytes its name says.
class BlobStore {
public:
  // Creates `root/blobs/sha256` as needed.
  explicit BlobStore(std::filesystem::path root);

  // Streams `source` in while hashing it. With `expected`, a different digest or size
  // throws IntegrityError naming `what`, expected and actual, and stores nothing.
  StoredBlob put(core::Source& source, std::string_view what, const std::optional<core::Digest>& expected = {},
                 std::optional<std::uint64_t> expected_size = {});
  StoredBlob put_bytes(std::string_view bytes);

  // here: the writer hashes what arrives and commit() checks digest and size like put().
  // by_caller: the caller has verified the digest of exactly the bytes it wrote (the
  // registry client does, before get_blob returns); commit() checks the size only.
  enum class Hashing { here, by_caller };

  // A blob arriving as writes (a download): commit() checks it (see Hashing) and moves
  // it in; destroyed without commit() it leaves nothing behind.
  class Writer : public core::Sink {
  public:
    ~Writer() override;
    void write(const char* data, std::size_t size) override;
    using core::Sink::write;
    StoredBlob commit(std::string_view what, const core::Digest& expected, std::uint64_t expected_size);

  private:
    friend class BlobStore;
    struct Impl;
    explicit Writer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
  };
  std::unique_ptr<Writer> begin(Hashing hashing = Hashing::here);

  bool contains(const core::Digest& digest) const;
  // The size of the stored blob, nullopt when the store lacks it.
  std::optional<std::uint64_t> size_of(const core::Digest& digest) const;
  std::filesystem::path path(const core::Digest& digest) const;

  // Removes the temporary files (".blob-PID-XXXXXX" in the root) of processes killed
  // while writing a blob; those of running ones stay (core::remove_leftovers). A store
  // that several processes share (pack's cache) is safe: every blob lands under its
  // name by rename(), and the same name always means the same bytes.
  std::vector<core::Leftover> remove_leftovers();
  const std::filesystem::path& root() const noexcept { return m_root; }

private:
  std::filesystem::path m_root;
};

} // namespace ferry::oci
