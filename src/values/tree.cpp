// Helm values as a plain tree: reading YAML with yaml-cpp, writing it back so that Helm
// types every scalar as before.
// SPDX-License-Identifier: Apache-2.0
#include "values/tree.hpp"

#include "core/error.hpp"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cstddef>

namespace ferry::values {

namespace {

using core::UsageError;

// Aliases are copied into the tree, so a hostile document ("billion laughs") could grow
// without bound: cap the nodes and the nesting. Real values files (bitnami's largest)
// have a few thousand nodes. A node costs some 220 bytes here, so the cap bounds a
// bomb at about 55 MiB (2 million took 430 MiB and two seconds).
constexpr std::size_t k_max_nodes = 250'000;
constexpr int k_max_depth = 200;

const std::string k_empty;

// yaml-cpp tags an untagged plain scalar "?" and an untagged quoted one "!".
constexpr std::string_view k_plain_tag = "?";
constexpr std::string_view k_quoted_tag = "!";
constexpr std::string_view k_str_tag = "tag:yaml.org,2002:str";
constexpr std::string_view k_merge_key = "<<";

struct Reader {
  const std::string& what;
  std::size_t budget = k_max_nodes;

  [[noreturn]] void too_large() const {
    throw UsageError(what + " is nested too deeply or too large (a recursive YAML alias?)",
                     "values files hold at most " + std::to_string(k_max_nodes) + " values, nested at most " +
                         std::to_string(k_max_depth) + " deep");
  }

  std::string at(const YAML::Node& node) const {
    const YAML::Mark mark = node.Mark();
    return mark.is_null() ? what : what + ":" + std::to_string(mark.line + 1);
  }

  Node convert(const YAML::Node& in, int depth) {
    if (depth > k_max_depth || budget == 0) too_large();
    --budget;
    Node out;
    switch (in.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return out;
    case YAML::NodeType::Scalar: {
      out.kind = Node::Kind::scalar;
      out.text = in.Scalar();
      const std::string& tag = in.Tag();
      if (tag == k_quoted_tag || tag == k_str_tag) {
        out.style = Node::Style::string;
      } else if (!tag.empty() && tag != k_plain_tag) {
        out.tag = tag;
      }
      return out;
    }
    case YAML::NodeType::Sequence:
      out.kind = Node::Kind::sequence;
      for (const auto& item : in) out.items.push_back(convert(item, depth + 1));
      return out;
    case YAML::NodeType::Map:
      break;
    }
    out.kind = Node::Kind::map;
    std::vector<Node> merged; // values of `<<` keys, applied after the map's own keys
    for (const auto& entry : in) {
      const YAML::Node& key = entry.first;
      if (!key.IsScalar() && !key.IsNull()) {
        throw UsageError(at(key) + ": a map key is itself a list or map, which Helm values cannot hold");
      }
      const std::string key_text = key.IsNull() ? "null" : key.Scalar();
      if (key.IsScalar() && key.Tag() == k_plain_tag && key_text == k_merge_key) {
        merged.push_back(convert(entry.second, depth + 1));
        continue;
      }
      out.set(key_text, convert(entry.second, depth + 1));
    }
    // YAML 1.1 merge keys (go-yaml applies them): keys of the map win, then the merged
    // maps in the order listed.
    for (const Node& m : merged) {
      const std::vector<Node> sources = m.kind == Node::Kind::sequence ? m.items : std::vector<Node>{m};
      for (const Node& source : sources) {
        if (!source.is_map()) throw UsageError(at(in) + ": a '<<' merge key must name a map or a list of maps");
        for (const auto& [k, v] : source.entries) {
          if (!out.find(k)) out.entries.emplace_back(k, v);
        }
      }
    }
    return out;
  }
};

bool is_one_of(std::string_view text, std::initializer_list<std::string_view> words) {
  return std::find(words.begin(), words.end(), text) != words.end();
}

// YAML allows an implicit key ("KEY: value") of at most 1024 characters, and yaml-cpp
// writes keys implicit whatever their length: a long key, or one whose escapes make it
// long (a control character becomes the four characters "\x0e"), would not read back.
// Keys that could reach the limit once escaped are written explicit ("? KEY").
void emit_key(YAML::Emitter& out, const std::string& key) {
  if (key.size() > 255) out << YAML::LongKey;
  out << YAML::Key << key << YAML::Value;
}

void emit_node(YAML::Emitter& out, const Node& node) {
  switch (node.kind) {
  case Node::Kind::null:
    out << YAML::Null;
    return;
  case Node::Kind::scalar:
    if (!node.tag.empty()) out << YAML::VerbatimTag(node.tag);
    // A plain scalar is written as it was spelled, so Helm types it as before (yaml-cpp
    // quotes it only where plain text would not parse, and then it was a string anyway).
    // A string whose spelling would read as a number, boolean or null is quoted.
    if (node.style == Node::Style::string && plain_is_non_string(node.text)) out << YAML::DoubleQuoted;
    out << node.text;
    return;
  case Node::Kind::sequence:
    if (node.items.empty()) out << YAML::Flow;
    out << YAML::BeginSeq;
    for (const Node& item : node.items) emit_node(out, item);
    out << YAML::EndSeq;
    return;
  case Node::Kind::map:
    if (node.entries.empty()) out << YAML::Flow;
    out << YAML::BeginMap;
    for (const auto& [key, value] : node.entries) {
      emit_key(out, key);
      emit_node(out, value);
    }
    out << YAML::EndMap;
    return;
  }
}

// Whether `node` or anything below it is in `changed`; collects such nodes in `dirty`.
bool collect_dirty(const Node& node, const std::unordered_set<const Node*>& changed,
                   std::unordered_set<const Node*>& dirty) {
  bool any = changed.count(&node) != 0;
  for (const Node& item : node.items) any = collect_dirty(item, changed, dirty) || any;
  for (const auto& entry : node.entries) any = collect_dirty(entry.second, changed, dirty) || any;
  if (any) dirty.insert(&node);
  return any;
}

void emit_overlay_map(YAML::Emitter& out, const Node& map, const std::unordered_set<const Node*>& dirty) {
  out << YAML::BeginMap;
  for (const auto& [key, value] : map.entries) {
    if (!dirty.count(&value)) continue;
    emit_key(out, key);
    if (value.is_map()) {
      emit_overlay_map(out, value, dirty);
    } else {
      emit_node(out, value);
    }
  }
  out << YAML::EndMap;
}

std::string finish(YAML::Emitter& out) {
  if (!out.good()) throw core::Error(core::ExitCode::failure, "cannot write values as YAML: " + out.GetLastError());
  std::string text = out.c_str();
  text += '\n';
  return text;
}

void configure(YAML::Emitter& out) {
  out.SetOutputCharset(YAML::EmitNonAscii);
  out.SetNullFormat(YAML::LowerNull);
  out.SetIndent(2);
}

} // namespace

Node::Node() = default;
Node::Node(const Node&) = default;
Node::Node(Node&&) noexcept = default;
Node& Node::operator=(const Node&) = default;
Node& Node::operator=(Node&&) noexcept = default;
Node::~Node() = default;

Node Node::string(std::string text) {
  Node n;
  n.kind = Kind::scalar;
  n.style = Style::string;
  n.text = std::move(text);
  return n;
}

Node Node::map() {
  Node n;
  n.kind = Kind::map;
  return n;
}

bool Node::is_string() const {
  return kind == Kind::scalar && (style == Style::string || (tag.empty() && !plain_is_non_string(text)));
}

const std::string& Node::scalar() const { return kind == Kind::scalar ? text : k_empty; }

Node* Node::find(std::string_view key) {
  for (auto& [k, v] : entries) {
    if (k == key) return &v;
  }
  return nullptr;
}

const Node* Node::find(std::string_view key) const {
  for (const auto& [k, v] : entries) {
    if (k == key) return &v;
  }
  return nullptr;
}

Node& Node::set(const std::string& key, Node value) {
  if (Node* existing = find(key)) {
    *existing = std::move(value);
    return *existing;
  }
  entries.emplace_back(key, std::move(value));
  return entries.back().second;
}

void Node::erase(std::string_view key) {
  entries.erase(std::remove_if(entries.begin(), entries.end(), [&](const auto& e) { return e.first == key; }),
                entries.end());
}

std::string path_string(const Path& path) {
  std::string out;
  for (const PathSegment& segment : path) {
    if (segment.is_index) {
      out += "[" + std::to_string(segment.index) + "]";
    } else {
      if (!out.empty()) out += '.';
      out += segment.key;
    }
  }
  return out;
}

bool plain_is_non_string(std::string_view text) {
  if (text.empty()) return true;
  // go-yaml (which Helm uses) resolves plain scalars with YAML 1.1's rules.
  if (is_one_of(text, {"~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true",
                       "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", ".inf", ".Inf",
                       ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN"})) {
    return true;
  }
  // Numbers in every base YAML 1.1 knows (0x1F, 0o17, 0b101, 1_000, 1e3, 1:30), dates
  // (2025-05-30): a superset is enough here, since quoting a string is always safe.
  const char first = text.front();
  const bool numeric_start = (first >= '0' && first <= '9') || first == '-' || first == '+' || first == '.';
  constexpr std::string_view k_number_chars = "0123456789abcdefABCDEFxXoO_.:+-";
  return numeric_start && std::all_of(text.begin(), text.end(), [&](char c) {
           return k_number_chars.find(c) != std::string_view::npos;
         });
}

Node parse_values(const std::string& text, const std::string& what) {
  YAML::Node doc;
  try {
    doc = YAML::Load(text);
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp's parser recurses per level and stops itself at 500; its message
    // ("bad file") would not say why.
    throw UsageError(what + ":" + std::to_string(e.mark.line + 1) +
                         ": the YAML is nested too deeply (the parser stops at depth " + std::to_string(e.depth()) + ")",
                     "values files hold values nested at most " + std::to_string(k_max_depth) + " deep");
  } catch (const YAML::Exception& e) {
    const std::string where = e.mark.is_null() ? what
                                               : what + ":" + std::to_string(e.mark.line + 1) + ":" +
                                                     std::to_string(e.mark.column + 1);
    throw UsageError(where + ": YAML syntax error: " + e.msg, "fix the YAML at that line (indentation, quotes, tabs)");
  }
  if (!doc.IsDefined() || doc.IsNull()) return Node::map();
  if (!doc.IsMap()) {
    throw UsageError(what + " is not a YAML map of values",
                     "a values file maps names to values, like `image: {repository: nginx}`");
  }
  Reader reader{what};
  try {
    return reader.convert(doc, 0);
  } catch (const YAML::Exception& e) {
    throw UsageError(what + ": cannot read the YAML: " + e.msg);
  }
}

std::string emit_values(const Node& map) {
  if (!map.is_map() || map.entries.empty()) return "{}\n";
  YAML::Emitter out;
  configure(out);
  emit_node(out, map);
  return finish(out);
}

std::string emit_overlay(const Node& root, const std::unordered_set<const Node*>& changed) {
  std::unordered_set<const Node*> dirty;
  if (!root.is_map() || !collect_dirty(root, changed, dirty)) return "{}\n";
  YAML::Emitter out;
  configure(out);
  emit_overlay_map(out, root, dirty);
  return finish(out);
}

} // namespace ferry::values
