// Fuzz target: the bundle stream reader (bundle::BundleReader) over the input as a
// bundle file: tar + zstd, the head (ferry.json, ferry.json.sig, volume.json), the blob
// table and every entry checked against it. The signature is not checked here (a fuzzer
// cannot sign; ferry_json covers verification), so the reader goes on to the entries.
// Each input is read front to back (read_entries); a zstd stream also from a file with
// the frame-parallel reader (read_entries_parallel), which must never accept what the
// sequential reader refuses, nor deliver other entries. The input may also be an
// uncompressed tar, which the reader accepts too: mutations then reach the tar headers
// and ferry.json instead of breaking zstd's checksums.
// SPDX-License-Identifier: Apache-2.0
#include "bundle/bundle_reader.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/io.hpp"
#include "core/log.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

using namespace ferry;

namespace {

const std::string k_display = "fuzz.tar.zst";

// Takes an entry's bytes and forgets them; records the entries committed.
class DiscardSink final : public bundle::EntrySink {
public:
  DiscardSink(std::set<std::string>& committed, std::mutex& mutex, std::string path)
      : m_committed(committed), m_mutex(mutex), m_path(std::move(path)) {}
  void write(const char*, std::size_t) override {}
  using EntrySink::write;
  void commit() override {
    const std::lock_guard lock(m_mutex);
    m_committed.insert(m_path);
  }

private:
  std::set<std::string>& m_committed;
  std::mutex& m_mutex;
  std::string m_path;
};

struct Outcome {
  bool ok = false;
  std::set<std::string> committed;
};

Outcome read(core::Source& in, const std::string* file) {
  Outcome out;
  std::mutex mutex;
  const bundle::EntryTarget target = [&](const bundle::StreamEntry& entry) -> std::unique_ptr<bundle::EntrySink> {
    return std::make_unique<DiscardSink>(out.committed, mutex, entry.path);
  };
  core::NullProgress progress;
  bundle::TrustedKeys none;
  try {
    bundle::BundleReader reader(in, k_display);
    reader.open(none, bundle::SignaturePolicy::skip);
    if (file != nullptr) {
      (void)reader.read_entries_parallel(*file, 2, target, progress);
    } else {
      (void)reader.read_entries(target, progress);
    }
    out.ok = true;
  } catch (const core::Error&) {
  }
  return out;
}

// The input as a regular file, for the parallel reader, which opens it by name.
class InputFile {
public:
  InputFile() : m_fd(::memfd_create("fuzz-bundle", 0)) {
    if (m_fd < 0) std::abort();
    m_path = "/proc/self/fd/" + std::to_string(m_fd);
  }
  void set(std::string_view bytes) {
    if (::ftruncate(m_fd, 0) != 0) std::abort();
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::pwrite(m_fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
      if (n <= 0) std::abort();
      done += static_cast<std::size_t>(n);
    }
  }
  const std::string& path() const { return m_path; }

private:
  int m_fd;
  std::string m_path;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  core::StringSource sequential_in(input);
  const Outcome sequential = read(sequential_in, nullptr);

  // Only a zstd stream can take the parallel path: for anything else the parallel
  // reader reads front to back too, which the sequential read above already did.
  if (size < 4 || input.substr(0, 4) != "\x28\xb5\x2f\xfd") return 0;
  static InputFile file;
  file.set(input);
  Outcome parallel;
  try {
    core::FileSource parallel_in(file.path());
    parallel = read(parallel_in, &file.path());
  } catch (const core::Error&) {
    std::abort(); // the file was just written
  }
  if (parallel.ok && (!sequential.ok || parallel.committed != sequential.committed)) std::abort();
  return 0;
}
