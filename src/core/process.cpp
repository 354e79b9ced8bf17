// posix_spawn with pipes for the three standard streams, a poll loop, and a deadline.
// SPDX-License-Identifier: Apache-2.0
#include "core/process.hpp"

#include "core/error.hpp"
#include "core/fs.hpp"

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace ferry::core {

namespace {

std::vector<std::string> child_environment(const ProcessOptions& options) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const std::string name(entry.substr(0, entry.find('=')));
    bool dropped = options.env_set.count(name) != 0;
    for (const auto& u : options.env_unset) dropped |= u == name;
    if (!dropped) env.emplace_back(entry);
  }
  for (const auto& [name, value] : options.env_set) env.push_back(name + "=" + value);
  return env;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

struct Actions {
  posix_spawn_file_actions_t value;
  Actions() { posix_spawn_file_actions_init(&value); }
  ~Actions() { posix_spawn_file_actions_destroy(&value); }
  Actions(const Actions&) = delete;
  Actions& operator=(const Actions&) = delete;
};

} // namespace

std::optional<std::filesystem::path> find_program(const std::string& name, const std::string& path) {
  auto usable = [](const std::filesystem::path& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
  };
  if (name.empty()) return std::nullopt;
  if (name.find('/') != std::string::npos) {
    if (usable(name)) return std::filesystem::path(name);
    return std::nullopt;
  }
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    const std::string dir = path.substr(start, end - start);
    const std::filesystem::path candidate = std::filesystem::path(dir.empty() ? "." : dir) / name;
    if (usable(candidate)) return candidate;
    start = end + 1;
  }
  return std::nullopt;
}

std::optional<std::filesystem::path> find_program(const std::string& name) {
  const char* path_env = std::getenv("PATH");
  return find_program(name, path_env != nullptr ? path_env : "/usr/local/bin:/usr/bin:/bin");
}

ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options) {
  if (argv.empty()) throw Error(ExitCode::failure, "run_process: no program given");
  const std::string shown = std::filesystem::path(argv[0]).filename().string();
  const auto program = find_program(argv[0]);
  if (!program) {
    throw Error(ExitCode::failure, "cannot run " + argv[0] + ": " +
                                       (argv[0].find('/') != std::string::npos ? "no executable file there"
                                                                               : "not found in $PATH"));
  }
  auto fail = [&](const char* step, int err) {
    return Error(ExitCode::failure, "cannot run " + shown + ": " + step + ": " + errno_text(err));
  };

  // Standard input through a socket: send() with MSG_NOSIGNAL cannot raise SIGPIPE.
  int in_pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in_pair) != 0) throw fail("socketpair", errno);
  UniqueFd in_parent(in_pair[0]), in_child(in_pair[1]);
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) throw fail("pipe", errno);
  UniqueFd out_read(out_pipe[0]), out_write(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) throw fail("pipe", errno);
  UniqueFd err_read(err_pipe[0]), err_write(err_pipe[1]);

  Actions actions;
  if (options.input.empty()) {
    posix_spawn_file_actions_addopen(&actions.value, 0, "/dev/null", O_RDONLY, 0);
  } else {
    posix_spawn_file_actions_adddup2(&actions.value, in_child.get(), 0);
  }
  posix_spawn_file_actions_adddup2(&actions.value, out_write.get(), 1);
  posix_spawn_file_actions_adddup2(&actions.value, err_write.get(), 2);
  if (!options.cwd.empty()) {
    if (const int rc = posix_spawn_file_actions_addchdir_np(&actions.value, options.cwd.c_str()); rc != 0) {
      throw fail("setting the working directory", rc);
    }
  }
  std::vector<std::string> args = argv;
  std::vector<char*> c_args = pointers(args);
  std::vector<std::string> env = child_environment(options);
  std::vector<char*> c_env = pointers(env);
  pid_t pid = -1;
  if (const int rc = ::posix_spawn(&pid, program->c_str(), &actions.value, nullptr, c_args.data(), c_env.data());
      rc != 0) {
    throw fail("posix_spawn", rc);
  }
  in_child = UniqueFd();
  out_write = UniqueFd();
  err_write = UniqueFd();
  if (options.input.empty()) in_parent = UniqueFd();
  if (in_parent) ::fcntl(in_parent.get(), F_SETFL, ::fcntl(in_parent.get(), F_GETFL) | O_NONBLOCK);

  ProcessResult result;
  std::string err_line;
  const auto started = std::chrono::steady_clock::now();
  bool terminated = false;
  bool killed = false;
  std::size_t sent = 0;
  auto take = [&](std::string& into, bool& truncated, const char* data, std::size_t n) {
    const std::size_t room = options.output_limit - std::min(options.output_limit, into.size());
    into.append(data, std::min(room, n));
    if (n > room) truncated = true;
  };
  for (;;) {
    std::array<pollfd, 3> fds{pollfd{out_read ? out_read.get() : -1, POLLIN, 0},
                              pollfd{err_read ? err_read.get() : -1, POLLIN, 0},
                              pollfd{in_parent ? in_parent.get() : -1, POLLOUT, 0}};
    if (!out_read && !err_read) break;
    int wait_ms = -1;
    if (options.timeout) {
      const auto elapsed = std::chrono::steady_clock::now() - started;
      // SIGTERM at the timeout, SIGKILL 5 s later, and 2 s after that stop reading
      // (a grandchild may hold the pipes open).
      const auto deadline = *options.timeout + std::chrono::milliseconds(killed ? 7000 : terminated ? 5000 : 0);
      if (elapsed >= deadline) {
        if (!terminated) {
          ::kill(pid, SIGTERM);
          terminated = true;
          result.timed_out = true;
        } else if (!killed) {
          ::kill(pid, SIGKILL);
          killed = true;
        } else {
          break;
        }
        continue;
      } else {
        wait_ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - elapsed).count()) + 1;
      }
    }
    const int ready = ::poll(fds.data(), fds.size(), wait_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      throw fail("poll", errno);
    }
    if (fds[2].fd >= 0 && fds[2].revents != 0) {
      const ssize_t n = ::send(in_parent.get(), options.input.data() + sent, options.input.size() - sent, MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<std::size_t>(n);
      if ((n < 0 && errno != EAGAIN && errno != EINTR) || sent == options.input.size()) in_parent = UniqueFd();
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[static_cast<std::size_t>(i)].fd < 0 || fds[static_cast<std::size_t>(i)].revents == 0) continue;
      char buffer[65536];
      UniqueFd& fd = i == 0 ? out_read : err_read;
      const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        fd = UniqueFd();
        continue;
      }
      const auto size = static_cast<std::size_t>(n);
      if (i == 0) {
        take(result.out, result.out_truncated, buffer, size);
      } else {
        take(result.err, result.err_truncated, buffer, size);
        if (options.on_stderr_line) {
          err_line.append(buffer, size);
          std::size_t newline;
          while ((newline = err_line.find('\n')) != std::string::npos) {
            options.on_stderr_line(std::string_view(err_line).substr(0, newline));
            err_line.erase(0, newline + 1);
          }
        }
      }
    }
  }
  if (options.on_stderr_line && !err_line.empty()) options.on_stderr_line(err_line);
  in_parent = UniqueFd();
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw fail("waitpid", errno);
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

} // namespace ferry::core
