// File helpers over POSIX calls, so every error keeps its errno and names the file.
// SPDX-License-Identifier: Apache-2.0
#include "core/fs.hpp"

#include "core/error.hpp"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <limits>
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

void FdSink::sync() {
  if (::fsync(m_fd.get()) != 0) {
    const int err = errno;
    throw Error(ExitCode::failure, "cannot flush " + m_display + " to disk: " + errno_text(err));
  }
}

void FdSink::sync_and_close() {
  sync();
  const int fd = m_fd.release();
  if (::close(fd) != 0) {
    const int err = errno;
    throw Error(ExitCode::failure, "cannot close " + m_display + ": " + errno_text(err));
  }
}

namespace {

std::string pid_text() { return std::to_string(static_cast<long>(::getpid())); }

// Best effort: on a file system without locks (some NFS set-ups) the process id in the
// name still protects the temporaries of running processes on this machine.
void lock_owned(int fd) { (void)::flock(fd, LOCK_EX | LOCK_NB); }

// The process id in NAME = STEM-PID-XXXXXX, or 0 when NAME is not such a name.
long owner_of(std::string_view name, std::string_view stem) {
  if (name.size() < stem.size() + 1 || name.substr(0, stem.size()) != stem || name[stem.size()] != '-') return 0;
  name.remove_prefix(stem.size() + 1);
  const auto dash = name.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash > 9) return 0;
  long pid = 0;
  for (const char c : name.substr(0, dash)) {
    if (c < '0' || c > '9') return 0;
    pid = pid * 10 + (c - '0');
  }
  const std::string_view random = name.substr(dash + 1);
  if (random.size() != 6) return 0;
  for (const char c : random) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum) return 0;
  }
  return pid; // 0 for "0": never a process of ours, and kill(0) would mean our group
}

bool process_exists(long pid) {
  // EPERM: it exists but belongs to someone else.
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH;
}

std::uint64_t bytes_in(const fs::path& path, bool directory) {
  std::error_code ec;
  if (!directory) {
    const auto size = fs::file_size(path, ec);
    return ec ? 0 : size;
  }
  std::uint64_t total = 0;
  for (fs::recursive_directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) {
      const auto size = it->file_size(size_ec);
      if (!size_ec) total += size;
    }
  }
  return total;
}

} // namespace

std::string temporary_stem(const fs::path& target, std::string_view prefix) {
  return "." + target.filename().string() + "." + std::string(prefix);
}

OwnedTempFile create_temporary_file(const fs::path& dir, std::string_view stem) {
  std::string name = (dir / (std::string(stem) + "-" + pid_text() + "-XXXXXX")).string();
  std::vector<char> buffer(name.begin(), name.end());
  buffer.push_back('\0');
  UniqueFd fd(::mkostemp(buffer.data(), O_CLOEXEC));
  if (!fd) {
    const int err = errno;
    throw Error(ExitCode::failure, "cannot create a temporary file in " + display(dir) + ": " + errno_text(err),
                "check that the directory exists and is writable");
  }
  lock_owned(fd.get());
  return OwnedTempFile{std::move(fd), fs::path(buffer.data())};
}

std::vector<Leftover> remove_leftovers(const fs::path& dir, std::string_view stem) {
  std::vector<Leftover> removed;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path path = it->path();
    const long pid = owner_of(path.filename().string(), stem);
    if (pid <= 0 || pid > std::numeric_limits<pid_t>::max() || pid == static_cast<long>(::getpid()) ||
        process_exists(pid)) {
      continue;
    }
    std::error_code status_ec;
    const fs::file_status status = fs::symlink_status(path, status_ec);
    const bool directory = fs::is_directory(status);
    if (status_ec || !(directory || fs::is_regular_file(status))) continue;
    // A process of another pid namespace (a container sharing the directory) may still
    // hold it: its lock says so.
    const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | (directory ? O_DIRECTORY : 0)));
    if (!fd) continue;
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK) continue;
    const std::uint64_t bytes = bytes_in(path, directory);
    std::error_code remove_ec;
    if (directory) {
      fs::remove_all(path, remove_ec);
    } else {
      fs::remove(path, remove_ec);
    }
    if (!remove_ec) removed.push_back(Leftover{path, pid, bytes});
  }
  return removed;
}

FileSystemSpace file_system_space(const fs::path& dir) {
  struct statvfs vfs {};
  struct stat st {};
  if (::statvfs(dir.c_str(), &vfs) != 0 || ::stat(dir.c_str(), &st) != 0) {
    const int err = errno;
    throw Error(ExitCode::failure, "cannot read the free space of " + display(dir) + ": " + errno_text(err));
  }
  return FileSystemSpace{static_cast<std::uint64_t>(st.st_dev),
                         static_cast<std::uint64_t>(vfs.f_bavail) * static_cast<std::uint64_t>(vfs.f_frsize)};
}

AtomicFile::AtomicFile(fs::path target, unsigned mode, Overwrite overwrite)
    : m_target(std::move(target)), m_overwrite(overwrite) {
  if (overwrite == Overwrite::no && fs::exists(fs::symlink_status(m_target))) {
    throw UsageError(display(m_target) + " already exists", "remove it or choose another output name");
  }
  const fs::path dir = m_target.has_parent_path() ? m_target.parent_path() : fs::path(".");
  OwnedTempFile temp = create_temporary_file(dir, temporary_stem(m_target, "ferry"));
  m_temp = std::move(temp.path);
  if (::fchmod(temp.fd.get(), mode) != 0) {
    const int err = errno;
    ::unlink(m_temp.c_str());
    throw Error(ExitCode::failure, "cannot set the mode of " + display(m_temp) + ": " + errno_text(err));
  }
  m_sink = std::make_unique<FdSink>(std::move(temp.fd), display(m_target), WriteBehind::yes);
}

AtomicFile::~AtomicFile() {
  if (!m_committed) {
    ::unlink(m_temp.c_str()); // before the descriptor (and the lock) goes
    m_sink.reset();
  }
}

void AtomicFile::commit() {
  // The descriptor (and its lock) stays open until the temporary name is gone, so that
  // no other run takes it for a leftover in between.
  m_sink->sync();
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
  m_sink.reset(); // the data is on disk (fsync above): closing cannot lose it
}

TempDir::TempDir(const fs::path& near, std::string_view prefix) {
  fs::path pattern;
  if (near.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    pattern = fs::path(tmp && *tmp ? tmp : "/tmp") / (std::string(prefix) + "-" + pid_text() + "-XXXXXX");
  } else {
    const fs::path dir = near.has_parent_path() ? near.parent_path() : fs::path(".");
    pattern = dir / (temporary_stem(near, prefix) + "-" + pid_text() + "-XXXXXX");
  }
  std::string name = pattern.string();
  std::vector<char> buffer(name.begin(), name.end());
  buffer.push_back('\0');
  if (!::mkdtemp(buffer.data())) {
    const int err = errno;
    throw Error(ExitCode::failure, "cannot create a temporary directory " + name + ": " + errno_text(err));
  }
  m_path = buffer.data();
  m_lock = UniqueFd(::open(m_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (m_lock) lock_owned(m_lock.get());
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
