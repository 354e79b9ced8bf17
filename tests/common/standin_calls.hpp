// The call log of the helm and kubectl stand-ins (tests/data/standin/standin.sh): one JSON
// object per line, {"tool", "argv", "stdin"}, appended to $FERRY_STANDIN_LOG.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace ferry::test {

struct StandinCall {
  std::string tool;
  std::vector<std::string> argv;
  std::string stdin_text;
  std::string line; // "tool arg1 arg2 …"
};

// Every call recorded in `log`, oldest first; none when it does not exist.
std::vector<StandinCall> read_standin_calls(const std::filesystem::path& log);

// The calls whose line starts with `prefix` ("helm upgrade").
std::vector<StandinCall> calls_starting(const std::vector<StandinCall>& calls, const std::string& prefix);

} // namespace ferry::test
