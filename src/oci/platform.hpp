// Platforms ("linux/arm64/v8") and matching them the way containerd does.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ferry::oci {

struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;    // empty when none
  std::string os_version; // Windows only; kept, never matched on

  // "os/arch[/variant]"; throws UsageError naming `text` otherwise.
  static Platform parse(std::string_view text);
  // "linux/arm64/v8"; no trailing slash when there is no variant.
  std::string str() const;
  // containerd's normalisation: x86_64 -> amd64, aarch64 -> arm64, arm64 variant
  // "" -> "v8", arm variant "" -> "v7", amd64 variant "v1" -> "".
  Platform normalized() const;

  friend bool operator==(const Platform&, const Platform&) = default;
};

// True when `have` satisfies `want` after normalising both: same os and architecture,
// and the same variant when `want` names one.
bool matches(const Platform& want, const Platform& have);

// A set of wanted platforms; empty means every platform.
class PlatformFilter {
public:
  PlatformFilter() = default;
  explicit PlatformFilter(std::vector<Platform> wanted) : m_wanted(std::move(wanted)) {}
  bool accepts_all() const noexcept { return m_wanted.empty(); }
  bool accepts(const Platform& have) const;
  const std::vector<Platform>& wanted() const noexcept { return m_wanted; }
  std::string str() const; // "linux/amd64, linux/arm64" or "all"

private:
  std::vector<Platform> m_wanted;
};

} // namespace ferry::oci
