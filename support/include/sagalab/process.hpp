// Child processes of ours: start a program with its output in a log file,
// learn the port it listens on from its port file, stop it by its pid. One
// helper for `sagactl up`'s supervisor, `sagactl explore`/`check`'s proxy child
// and the tests, with one start-up limit. POSIX only; no shell, never by name.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace sagalab::process {

// How long a program may take to write its port file: generous, since a
// sanitizer build on a busy machine can take seconds to start.
inline constexpr int kStartTimeoutMs = 30000;

struct Spec {
  std::vector<std::string> argv;  // argv[0]: a path (or a name on PATH with search_path)
  std::string log;                // stdout and stderr go here (appended; empty: inherited)
  bool truncate_log = false;
  bool search_path = false;
  bool die_with_parent = false;  // the child gets SIGKILL if the process that started it dies
  bool reset_signal_mask = false;
  std::optional<std::pair<uid_t, gid_t>> as_user;  // drop to this user first (root only)
};

// Forks and execs; throws std::runtime_error when fork fails. A program that
// cannot be executed exits 127 (126: its user could not be set).
pid_t spawn(const Spec& spec);

// The exit status of a child that has ended (128 + the signal for a signal),
// reaped; nullopt while it runs.
std::optional<int> exited(pid_t pid);

struct PortWait {
  int port = 0;                   // > 0: it listens
  std::optional<int> exit_status;  // it exited first
  long waited_ms = 0;
};
// Polls the port file the program writes once it listens (a number), until
// timeout_ms or the child's exit.
PortWait wait_port_file(pid_t pid, const std::string& file, int timeout_ms = kStartTimeoutMs);

// SIGTERM, up to grace_ms for it to exit, then SIGKILL; reaps it. Returns its
// exit status (as exited()).
int stop(pid_t pid, int grace_ms);

// The last max_bytes of a log file (all of it when shorter), for an error message.
std::string log_tail(const std::string& path, std::size_t max_bytes = 4000);

}  // namespace sagalab::process
