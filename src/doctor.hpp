// ferry doctor: checks a registry before an operator relies on it, with a fix for each
// failure (DESIGN §4).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "core/log.hpp"
#include "image_push.hpp"
#include "registry/client.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ferry {

struct DoctorOptions {
  PushTarget target;
  registry::ClientOptions client;
  std::filesystem::path state_dir;           // free disk is checked here (default: as push)
  std::uint64_t probe_size = 8ull << 20;     // the upload used to probe body-size limits
};

struct DoctorCheck {
  enum class Status { ok, warning, failed, skipped };
  std::string name;   // "dns", "tcp", "api", "push", "body-size", "mount", "disk"
  Status status = Status::skipped;
  std::string detail; // what was found
  std::string fix;    // the next step when not ok
};

// Runs every check in order; a check that cannot run because an earlier one failed is
// skipped. The push, body-size and mount checks write into PREFIX/ferry-doctor (one
// unreferenced probe blob of probe_size bytes, which the registry's garbage collection
// removes; no manifest, no tag).
std::vector<DoctorCheck> run_doctor(const DoctorOptions& options, core::LogSink& log);

} // namespace ferry
