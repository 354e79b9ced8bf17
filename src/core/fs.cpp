// File helpers over POSIX calls, so every error keeps its errno and names the file.
// SPDX-License-Identifier: Apache-2.0
#include "core/fs.hpp"

#include "core/error.hpp"

#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

namespace ferry::core {

namespace fs = std::filesystem;

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (m_fd >= 0) ::close(m_fd);
    m_fd = other.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (m_fd >= 0) ::close(m_fd);
}

FileSource::FileSource(fs::path path) : m_path(std::move(path)) {
  m_fd = UniqueFd(::open(m_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!m_fd) {
    const int err = errno;
    throw UsageError("cannot open " + display(m_path) + ": " + errno_text(err));
  }
  struct stat st {};
  if (::fstat(m_fd.get(), &st) == 0 && S_ISDIR(st.st_mode)) {
    throw UsageError(display(m_path) + " is a directory, expected a file");
  }
}

std::size_t FileSource::read(char* data, std::size_t size) {
  for (;;) {
    const ssize_t n = ::read(m_fd.get(), data, size);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EINTR) continue;
    const int err = errno;
    throw Error(ExitCode::failure, "cannot read " + display(m_path) + ": " + errno_text(err));
  }
}

void FileSource::seek(std::uint64_t offset) {
  if (::lseek(m_fd.get(), static_cast<off_t>(offset), SEEK_SET) < 0) {
    const int err = errno;
    throw Error(ExitCode::failure, "cannot seek in " + display(m_path) + ": " + errno_text(err));
  }
}

std::uint64_t FileSource::size() const {
  struct stat st {};
  if (::fstat(m_fd.get(), &st) != 0) {
    const int err = errno;
    throw Error(ExitCode::failure, "cannot stat " + display(m_path) + ": " + errno_text(err));
  }
  return static_cast<std::uint64_t>(st.st_size);
}

void FdSink::write(const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(m_fd.get(), data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      throw Error(ExitCode::failure, "cannot write " + m_display + ": " + errno_text(err),
                  err == ENOSPC ? "free space on that file system or write elsewhere" : "");
    }
    data += n;
    size -= static_cast<std::size_t>(n);
    m_written += static_cast<std::uint64_t>(n);
  }
  if (m_write_behind) start_writeback();
}

void FdSink::start_writeback() {
  constexpr std::uint64_t window = 8u << 20;
  constexpr std::uint64_t in_flight = 4; // windows the disk may still be writing
  while (m_written - m_started >= window) {
    // Advisory: a file system without sync_file_range still gets the final fsync.
    ::sync_file_range(m_fd.get(), static_cast<off_t>(m_started), static_cast<off_t>(window), SYNC_FILE_RANGE_WRITE);
    if (m_started >= in_flight * window) {
      const std::uint64_t old = m_started - in_flight * window;
      ::sync_file_range(m_fd.get(), static_cast<off_t>(old), static_cast<off_t>(window),
                        SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
    }
    m_started += window;
  }
}

void FdSink::sync_and_close() {
  if (::fsync(m_fd.get()) != 0) {
    const int err = errno;
    throw Error(ExitCode::failure, "cannot flush " + m_display + " to disk: " + errno_text(err));
  }
  const int fd = m_fd.release();
  if (::close(fd) != 0) {
    const int err = errno;
    throw Error(ExitCode::failure, "cannot close " + m_display + ": " + errno_text(err));
  }
}

namespace {

fs::path sibling_template(const fs::path& target, std::string_view prefix) {
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  return dir / ("." + target.filename().string() + "." + std::string(prefix) + "-XXXXXX");
}

} // namespace

AtomicFile::AtomicFile(fs::path target, unsigned mode, Overwrite overwrite)
    : m_target(std::move(target)), m_overwrite(overwrite) {
  if (overwrite == Overwrite::no && fs::exists(fs::symlink_status(m_target))) {
    throw UsageError(display(m_target) + " already exists", "remove it or choose another output name");
  }
  std::string name = sibling_template(m_target, "ferry").string();
  std::vector<char> buffer(name.begin(), name.end());
  buffer.push_back('\0');
  UniqueFd fd(::mkostemp(buffer.data(), O_CLOEXEC));
  if (!fd) {
    const int err = errno;
    throw Error(ExitCode::failure, "cannot create a temporary file beside " + display(m_target) + ": " + errno_text(err),
                "check that the directory exists and is writable");
  }
  m_temp = buffer.data();
  if (::fchmod(fd.get(), mode) != 0) {
    const int err = errno;
    ::unlink(m_temp.c_str());
    throw Error(ExitCode::failure, "cannot set the mode of " + display(m_temp) + ": " + errno_text(err));
  }
  m_sink = std::make_unique<FdSink>(std::move(fd), display(m_target), WriteBehind::yes);
}

AtomicFile::~AtomicFile() {
  if (!m_committed) {
    m_sink.reset();
    ::unlink(m_temp.c_str());
  }
}

void AtomicFile::commit() {
  m_sink->sync_and_close();
  if (m_overwrite == Overwrite::no) {
    // link() fails with EEXIST instead of replacing: no race with another writer.
    if (::link(m_temp.c_str(), m_target.c_str()) != 0) {
      const int err = errno;
      throw Error(ExitCode::failure, "cannot create " + display(m_target) + ": " + errno_text(err),
                  err == EEXIST ? "remove it or choose another output name" : "");
    }
    ::unlink(m_temp.c_str());
  } else if (::rename(m_temp.c_str(), m_target.c_str()) != 0) {
    const int err = errno;
    throw Error(ExitCode::failure, "cannot rename " + display(m_temp) + " to " + display(m_target) + ": " + errno_text(err));
  }
  m_committed = true;
}

TempDir::TempDir(const fs::path& near, std::string_view prefix) {
  fs::path pattern;
  if (near.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    pattern = fs::path(tmp && *tmp ? tmp : "/tmp") / (std::string(prefix) + "-XXXXXX");
  } else {
    pattern = sibling_template(near, prefix);
  }
  std::string name = pattern.string();
  std::vector<char> buffer(name.begin(), name.end());
  buffer.push_back('\0');
  if (!::mkdtemp(buffer.data())) {
    const int err = errno;
    throw Error(ExitCode::failure, "cannot create a temporary directory " + name + ": " + errno_text(err));
  }
  m_path = buffer.data();
}

TempDir::~TempDir() {
  if (m_keep) return;
  std::error_code ignored;
  fs::remove_all(m_path, ignored);
}

void write_file_atomic(const fs::path& target, std::string_view bytes, unsigned mode) {
  AtomicFile file(target, mode);
  file.sink().write(bytes);
  file.commit();
}

std::string read_file(const fs::path& path, std::size_t limit) {
  FileSource source(path);
  return read_all(source, limit, display(path));
}

} // namespace ferry::core
