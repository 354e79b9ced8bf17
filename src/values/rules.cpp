// Explicit rules: paths with `*` over a values tree, and their `set` templates.
// SPDX-License-Identifier: Apache-2.0
#include "values/rules.hpp"

#include "core/error.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <string_view>

namespace ferry::values {

namespace {

using core::UsageError;

const char* const k_path_hint =
    "a rule path names keys of the release's values separated by '.', `*` for any one key or list item, "
    "[N] for list item N and `\\.` for a dot inside a key, e.g. repositories.*.hostname";
const char* const k_placeholder_hint =
    "`set` may use {registry}, {prefix}, {prefix/}, {registry/prefix} and {value}";

struct Segment {
  enum class Kind { key, index, any };
  Kind kind = Kind::key;
  std::string key;
  std::size_t index = 0;
};

bool all_digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::size_t to_index(std::string_view digits, const Rule& rule) {
  if (digits.size() > 9) throw UsageError("rule path '" + rule.path + "': list index " + std::string(digits) + " is too large", k_path_hint);
  return static_cast<std::size_t>(std::stoul(std::string(digits)));
}

// "repositories.*.hostname", "sidecars[0].image", "annotations.app\.kubernetes\.io/name".
std::vector<Segment> parse_path(const Rule& rule) {
  const std::string& text = rule.path;
  if (text.empty()) throw UsageError("a rule has an empty path", k_path_hint);
  std::vector<Segment> out;
  std::string key;
  bool have_key = false; // a key (possibly empty) is being collected
  auto finish_key = [&] {
    if (!have_key) return;
    if (key.empty()) throw UsageError("rule path '" + text + "' has an empty key", k_path_hint);
    if (key == "*") {
      out.push_back({Segment::Kind::any, {}, 0});
    } else {
      out.push_back({Segment::Kind::key, key, 0});
    }
    key.clear();
    have_key = false;
  };
  std::size_t i = 0;
  bool expect_key = true; // at the start and after a '.'
  while (i < text.size()) {
    const char c = text[i];
    if (c == '\\' && i + 1 < text.size() && (text[i + 1] == '.' || text[i + 1] == '[' || text[i + 1] == '\\')) {
      key += text[i + 1];
      have_key = true;
      i += 2;
      continue;
    }
    if (c == '.') {
      if (!have_key && expect_key) throw UsageError("rule path '" + text + "' has an empty key", k_path_hint);
      finish_key();
      expect_key = true;
      ++i;
      if (i == text.size()) throw UsageError("rule path '" + text + "' ends with '.'", k_path_hint);
      continue;
    }
    if (c == '[') {
      finish_key();
      const std::size_t close = text.find(']', i);
      if (close == std::string::npos) throw UsageError("rule path '" + text + "' has an unclosed '['", k_path_hint);
      const std::string_view inside = std::string_view(text).substr(i + 1, close - i - 1);
      if (inside == "*") {
        out.push_back({Segment::Kind::any, {}, 0});
      } else if (all_digits(inside)) {
        out.push_back({Segment::Kind::index, {}, to_index(inside, rule)});
      } else {
        throw UsageError("rule path '" + text + "': [" + std::string(inside) + "] is not a list index", k_path_hint);
      }
      i = close + 1;
      expect_key = false;
      if (i < text.size() && text[i] != '.' && text[i] != '[') {
        throw UsageError("rule path '" + text + "': expected '.' or '[' after ']'", k_path_hint);
      }
      continue;
    }
    key += c;
    have_key = true;
    expect_key = false;
    ++i;
  }
  finish_key();
  return out;
}

// Why a path matched nothing: the deepest place it got to.
struct Miss {
  std::size_t depth = 0;
  bool recorded = false;
  std::string where;                  // the path matched so far
  std::string wanted;                 // the segment that failed
  std::vector<std::string> candidates; // keys present there
};

void record_miss(Miss& miss, std::size_t depth, const Path& path, const Segment& segment, const Node& node) {
  if (miss.recorded && depth <= miss.depth) return;
  miss.recorded = true;
  miss.depth = depth;
  miss.where = path.empty() ? "the top level" : "'" + path_string(path) + "'";
  miss.candidates.clear();
  if (segment.kind == Segment::Kind::index) {
    miss.wanted = "[" + std::to_string(segment.index) + "]";
  } else {
    miss.wanted = "'" + segment.key + "'";
  }
  if (node.is_map()) {
    for (const auto& entry : node.entries) miss.candidates.push_back(entry.first);
  }
}

void match(Node& node, const std::vector<Segment>& segments, std::size_t i, Path& path, std::vector<RuleMatch>& out,
           Miss& miss) {
  if (i == segments.size()) {
    out.push_back({&node, path});
    return;
  }
  const Segment& segment = segments[i];
  auto descend_item = [&](std::size_t index) {
    path.push_back({{}, index, true});
    match(node.items[index], segments, i + 1, path, out, miss);
    path.pop_back();
  };
  auto descend_key = [&](std::pair<std::string, Node>& entry) {
    path.push_back({entry.first, 0, false});
    match(entry.second, segments, i + 1, path, out, miss);
    path.pop_back();
  };
  switch (segment.kind) {
  case Segment::Kind::any:
    if (node.is_map()) {
      for (auto& entry : node.entries) descend_key(entry);
    } else if (node.kind == Node::Kind::sequence) {
      for (std::size_t k = 0; k < node.items.size(); ++k) descend_item(k);
    }
    if ((node.is_map() && node.entries.empty()) || (node.kind == Node::Kind::sequence && node.items.empty()) ||
        (!node.is_map() && node.kind != Node::Kind::sequence)) {
      record_miss(miss, i, path, {Segment::Kind::key, "*", 0}, node);
    }
    return;
  case Segment::Kind::index:
    if (node.kind == Node::Kind::sequence && segment.index < node.items.size()) {
      descend_item(segment.index);
    } else {
      record_miss(miss, i, path, segment, node);
    }
    return;
  case Segment::Kind::key:
    if (node.is_map()) {
      for (auto& entry : node.entries) {
        if (entry.first == segment.key) {
          descend_key(entry);
          return;
        }
      }
    } else if (node.kind == Node::Kind::sequence && all_digits(segment.key) && segment.key.size() < 10) {
      const std::size_t index = static_cast<std::size_t>(std::stoul(segment.key));
      if (index < node.items.size()) {
        descend_item(index);
        return;
      }
    }
    record_miss(miss, i, path, segment, node);
    return;
  }
}

} // namespace

std::vector<RuleMatch> match_rule(Node& root, const Rule& rule, const std::string& what) {
  const std::vector<Segment> segments = parse_path(rule);
  std::vector<RuleMatch> out;
  Path path;
  Miss miss;
  match(root, segments, 0, path, out, miss);
  if (out.empty()) {
    std::string message = "rule path '" + rule.path + "' matches nothing in " + what;
    std::string hint = "check the rule against the chart's values (`helm show values CHART`)";
    if (miss.recorded) {
      message += ": no " + miss.wanted + " under " + miss.where;
      if (const std::string near = core::suggest(miss.wanted.substr(1, miss.wanted.size() - 2), miss.candidates);
          !near.empty()) {
        hint = "did you mean '" + near + "'? " + hint;
      }
    }
    throw UsageError(message, hint);
  }
  return out;
}

namespace {

constexpr std::array<std::string_view, 5> k_placeholders = {"registry", "prefix", "prefix/", "registry/prefix", "value"};

// Calls `literal(text)` and `placeholder(name)` for the parts of `rule.set`.
template <typename Literal, typename Placeholder>
void scan_template(const Rule& rule, Literal&& literal, Placeholder&& placeholder) {
  const std::string& set = rule.set;
  std::size_t i = 0;
  while (i < set.size()) {
    const std::size_t open = set.find('{', i);
    if (open == std::string::npos) {
      literal(std::string_view(set).substr(i));
      return;
    }
    literal(std::string_view(set).substr(i, open - i));
    const std::size_t close = set.find('}', open);
    if (close == std::string::npos) {
      throw UsageError("rule '" + rule.path + "': unclosed '{' in set '" + set + "'", k_placeholder_hint);
    }
    const std::string_view name = std::string_view(set).substr(open + 1, close - open - 1);
    if (std::find(k_placeholders.begin(), k_placeholders.end(), name) == k_placeholders.end()) {
      throw UsageError("rule '" + rule.path + "': unknown placeholder {" + std::string(name) + "} in set '" + set + "'",
                       k_placeholder_hint);
    }
    placeholder(name);
    i = close + 1;
  }
}

} // namespace

void check_rule_template(const Rule& rule) {
  scan_template(rule, [](std::string_view) {}, [](std::string_view) {});
}

std::string expand_rule(const Rule& rule, const Target& target, const std::string& value) {
  std::string out;
  scan_template(
      rule, [&](std::string_view text) { out += text; },
      [&](std::string_view name) {
        if (name == "registry") {
          out += target.host;
        } else if (name == "prefix") {
          out += target.prefix;
        } else if (name == "prefix/") {
          if (!target.prefix.empty()) out += target.prefix + "/";
        } else if (name == "registry/prefix") {
          out += target.str();
        } else {
          out += value;
        }
      });
  return out;
}

} // namespace ferry::values
