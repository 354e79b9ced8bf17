// Private to values/: Helm values as a plain tree (no aliases, no yaml-cpp types), read
// from and written to YAML so that every scalar keeps the type Helm gives it.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

namespace ferry::values {

// One value: null, a scalar, a list or a map (entries in document order).
struct Node {
  enum class Kind { null, scalar, sequence, map };
  // How a scalar is typed. A plain scalar is typed by its spelling (`15` is a number,
  // `true` a boolean, `nginx` a string); a quoted or `!!str` one is always a string.
  enum class Style { plain, string };

  Kind kind = Kind::null;
  Style style = Style::plain;
  std::string text; // a scalar's text
  std::string tag;  // an explicit tag other than !!str (kept verbatim), else empty
  std::vector<Node> items;
  std::vector<std::pair<std::string, Node>> entries;

  // Declared here, defaulted in tree.cpp: implicit ones make clang with libstdc++ ask
  // whether std::pair<std::string, Node> is default-constructible while Node is incomplete.
  Node();
  Node(const Node&);
  Node(Node&&) noexcept;
  Node& operator=(const Node&);
  Node& operator=(Node&&) noexcept;
  ~Node();

  static Node string(std::string text);
  static Node map();

  bool is_map() const noexcept { return kind == Kind::map; }
  bool is_scalar() const noexcept { return kind == Kind::scalar; }
  bool is_null() const noexcept { return kind == Kind::null; }
  // A scalar Helm reads as a string (not a number, boolean or null).
  bool is_string() const;
  // The scalar's text; "" for null and for lists and maps.
  const std::string& scalar() const;

  Node* find(std::string_view key);
  const Node* find(std::string_view key) const;
  // Replaces the value of `key`, or appends the entry; returns the stored value.
  Node& set(const std::string& key, Node value);
  void erase(std::string_view key);
};

// Where a value sits: map keys and list indices from the root.
struct PathSegment {
  std::string key;       // a map key
  std::size_t index = 0; // a list index, when is_index
  bool is_index = false;
};
using Path = std::vector<PathSegment>;

// "postgresql.image.registry", "sidecars[0].image".
std::string path_string(const Path& path);

// Whether a plain scalar spelled `text` is read by Helm (go-yaml, YAML 1.1 rules) as
// something other than a string: null, a boolean, a number (or a date). Errs towards
// true: such text is quoted when written, which never changes a string's meaning.
bool plain_is_non_string(std::string_view text);

// Parses a values document (the first one of the stream). An empty document is an
// empty map. YAML merge keys (`<<: *anchor`) are applied as go-yaml does; aliases are
// copied. UsageError "WHAT:LINE:COLUMN: YAML syntax error: …" for bad YAML, and naming
// `what` when the document is not a map, has a complex key, or is too large or deep.
Node parse_values(const std::string& text, const std::string& what);

// YAML for a map (block style, entries in order, strings quoted where Helm would read
// them as something else). "{}\n" for an empty map.
std::string emit_values(const Node& map);

// YAML holding only the parts of `root` (a map) that lead to a node in `changed`: maps
// nested as in `root`, keys in its order; a list on the way is written whole (Helm
// replaces lists, it does not merge them). "{}\n" when nothing leads to a change.
std::string emit_overlay(const Node& root, const std::unordered_set<const Node*>& changed);

} // namespace ferry::values
