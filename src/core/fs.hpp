// Files: owned descriptors, file streams, atomic outputs and temporary directories.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "core/io.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::core {

// Owns a POSIX file descriptor; closes it on destruction.
class UniqueFd {
public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) noexcept : m_fd(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : m_fd(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();

  int get() const noexcept { return m_fd; }
  explicit operator bool() const noexcept { return m_fd >= 0; }
  int release() noexcept {
    int fd = m_fd;
    m_fd = -1;
    return fd;
  }

private:
  int m_fd = -1;
};

// Reads a regular file. Opening a missing or unreadable file throws UsageError naming it
// (the operator passed a wrong path); a read error later throws Error.
class FileSource final : public Source {
public:
  explicit FileSource(std::filesystem::path path);
  std::size_t read(char* data, std::size_t size) override;
  // Positions the next read at `offset` bytes from the start.
  void seek(std::uint64_t offset);
  std::uint64_t size() const;
  const std::filesystem::path& path() const noexcept { return m_path; }
  int fd() const noexcept { return m_fd.get(); }

private:
  std::filesystem::path m_path;
  UniqueFd m_fd;
};

// Writes to an open descriptor it owns; write errors (ENOSPC…) throw naming `display`.
// With WriteBehind::yes (for files that will be fsynced anyway) the kernel is asked to
// start writing each 8 MiB to disk as soon as it is written, and the writer waits for
// the window a few back: the disk works while the data is still being produced, dirty
// memory stays bounded, and the final fsync has little left to do.
enum class WriteBehind { no, yes };

class FdSink final : public Sink {
public:
  FdSink(UniqueFd fd, std::string display, WriteBehind write_behind = WriteBehind::no)
      : m_fd(std::move(fd)), m_display(std::move(display)), m_write_behind(write_behind == WriteBehind::yes) {}
  void write(const char* data, std::size_t size) override;
  using Sink::write;
  int fd() const noexcept { return m_fd.get(); }
  // fsync; throws on failure. The descriptor stays open (and a lock on it held).
  void sync();
  // fsync, then close; throws on failure.
  void sync_and_close();

private:
  void start_writeback();

  UniqueFd m_fd;
  std::string m_display;
  bool m_write_behind;
  std::uint64_t m_written = 0; // bytes written through this sink
  std::uint64_t m_started = 0; // bytes handed to the kernel's writeback
};

enum class Overwrite { no, yes };

// An output file written under a temporary name beside `target` (".NAME.ferry-PID-XXXXXX",
// see create_temporary_file) and renamed onto it by commit(), after an fsync. Until
// commit() nothing exists under the final name; destroying an uncommitted AtomicFile
// removes the temporary file (a killed process leaves it: remove_leftovers).
// With Overwrite::no, commit() fails if `target` appeared meanwhile (and the constructor
// fails at once if it exists).
class AtomicFile {
public:
  AtomicFile(std::filesystem::path target, unsigned mode = 0644, Overwrite overwrite = Overwrite::yes);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  Sink& sink() { return *m_sink; }
  void commit();
  const std::filesystem::path& target() const noexcept { return m_target; }

private:
  std::filesystem::path m_target;
  std::filesystem::path m_temp;
  std::unique_ptr<FdSink> m_sink;
  Overwrite m_overwrite;
  bool m_committed = false;
};

// A directory removed with everything in it on destruction, unless keep() was called.
// Created with mkdtemp beside `near` (".NAME.PREFIX-PID-XXXXXX", a sibling of that path)
// or, if `near` is empty, under $TMPDIR ("PREFIX-PID-XXXXXX"); locked like the files of
// create_temporary_file for its whole life.
class TempDir {
public:
  explicit TempDir(const std::filesystem::path& near = {}, std::string_view prefix = "ferry");
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const std::filesystem::path& path() const noexcept { return m_path; }
  void keep() noexcept { m_keep = true; }

private:
  std::filesystem::path m_path;
  UniqueFd m_lock; // the directory itself, flock()ed
  bool m_keep = false;
};

// Temporaries ferry makes beside its outputs (AtomicFile, TempDir beside a path, blob
// stores) are named STEM-PID-XXXXXX and locked (flock) by the process that made them for
// as long as it writes them, so that a later run can tell what a killed process left
// behind from what a running one is still writing: see remove_leftovers.

// The stem of the temporaries made beside `target` with `prefix` (".NAME.PREFIX"):
// AtomicFile uses "ferry", TempDir its own prefix.
std::string temporary_stem(const std::filesystem::path& target, std::string_view prefix);

// A new empty file `dir`/STEM-PID-XXXXXX (mkostemp, mode 0600, close-on-exec), locked by
// this process through the returned descriptor. Throws Error naming `dir`.
struct OwnedTempFile {
  UniqueFd fd;
  std::filesystem::path path;
};
OwnedTempFile create_temporary_file(const std::filesystem::path& dir, std::string_view stem);

// What a killed process left behind.
struct Leftover {
  std::filesystem::path path;
  long pid = 0;            // the process that made it
  std::uint64_t bytes = 0; // its size (a directory: the files in it)
};

// Removes every entry of `dir` named STEM-PID-XXXXXX whose maker is gone: no process PID
// exists (on this machine, in this pid namespace) and nobody holds the entry's lock.
// Entries of running processes, of this one, symbolic links and anything it cannot open
// are left alone, as is every other name. Returns what it removed.
std::vector<Leftover> remove_leftovers(const std::filesystem::path& dir, std::string_view stem);

// The file system holding `dir`: its device (two paths on the same one have the same) and
// the bytes an unprivileged process may still write there (statvfs f_bavail * f_frsize).
// Throws Error naming `dir` when it cannot be read.
struct FileSystemSpace {
  std::uint64_t device = 0;
  std::uint64_t available = 0;
};
FileSystemSpace file_system_space(const std::filesystem::path& dir);

// Writes `bytes` to `target` atomically (see AtomicFile).
void write_file_atomic(const std::filesystem::path& target, std::string_view bytes, unsigned mode = 0644);

// Reads a whole file of at most `limit` bytes; a missing file is a UsageError naming it.
std::string read_file(const std::filesystem::path& path, std::size_t limit = 64u << 20);

// The path as an operator should see it in messages (as given, not made absolute).
inline std::string display(const std::filesystem::path& path) { return path.string(); }

} // namespace ferry::core
