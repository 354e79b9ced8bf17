// SPDX-License-Identifier: Apache-2.0
#include "common/standin_calls.hpp"

#include "common/test_dir.hpp"

#include <nlohmann/json.hpp>

namespace ferry::test {

std::vector<StandinCall> read_standin_calls(const std::filesystem::path& log) {
  std::vector<StandinCall> out;
  if (!std::filesystem::exists(log)) return out;
  const std::string text = read_file(log);
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const nlohmann::json j = nlohmann::json::parse(text.substr(start, end - start));
    StandinCall c{j.at("tool").get<std::string>(), j.at("argv").get<std::vector<std::string>>(),
                  j.at("stdin").get<std::string>(), ""};
    c.line = c.tool;
    for (const auto& a : c.argv) c.line += " " + a;
    out.push_back(std::move(c));
    start = end + 1;
  }
  return out;
}

std::vector<StandinCall> calls_starting(const std::vector<StandinCall>& calls, const std::string& prefix) {
  std::vector<StandinCall> out;
  for (const auto& c : calls) {
    if (c.line.rfind(prefix, 0) == 0) out.push_back(c);
  }
  return out;
}

} // namespace ferry::test
