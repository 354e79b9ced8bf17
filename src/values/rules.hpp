// Private to values/: explicit rules (Options::rules) — matching their paths in a values
// tree and expanding their `set` templates.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "values/rewrite.hpp"
#include "values/tree.hpp"

#include <string>
#include <vector>

namespace ferry::values {

struct RuleMatch {
  Node* node; // points into the tree given to match_rule(); valid while it is not restructured
  Path path;
};

// Every value `rule.path` names in `root`, in document order (maps and lists included;
// the caller decides what it accepts). UsageError naming the rule and `what` when the
// path is malformed or matches nothing, with the nearest key as a hint.
std::vector<RuleMatch> match_rule(Node& root, const Rule& rule, const std::string& what);

// Checks `rule.set` for unknown or unclosed placeholders: UsageError naming the rule.
void check_rule_template(const Rule& rule);

// `rule.set` with its placeholders filled in (see Rule): {registry}, {prefix},
// {prefix/}, {registry/prefix}, {value}.
std::string expand_rule(const Rule& rule, const Target& target, const std::string& value);

} // namespace ferry::values
