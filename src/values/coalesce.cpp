// Helm's value coalescing (pkg/chartutil/coalesce.go and pkg/cli/values) over our values
// tree: values files, chart defaults, subcharts under their names or aliases, globals.
// SPDX-License-Identifier: Apache-2.0
#include "values/helm_values.hpp"
#include "values/rewrite.hpp"

#include "core/error.hpp"

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <string_view>
#include <utility>

namespace ferry::values {

namespace {

using core::UsageError;

// Helm refuses nothing here, but a chart nesting charts this deep is hostile.
constexpr int k_max_chart_depth = 16;

constexpr std::string_view k_global = "global";

bool starts_with(std::string_view text, std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; }
bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

struct Dependency {
  std::string name;
  std::string alias;
};

// A chart as Helm loads it: its defaults and its subcharts (charts/NAME/ directories
// and charts/*.tgz archives).
struct LoadedChart {
  std::string name;
  std::string what;
  Node values;
  std::vector<Dependency> dependencies; // as Helm reads them (chart::read_chart_metadata)
  std::vector<LoadedChart> subcharts;
};

LoadedChart load_chart_files(std::vector<chart::ArchiveFile> files, const std::string& what, int depth) {
  if (depth > k_max_chart_depth) {
    throw UsageError(what + ": subcharts are nested more than " + std::to_string(k_max_chart_depth) + " deep");
  }
  LoadedChart chart;
  chart.what = what;
  const bool has_chart_yaml =
      std::any_of(files.begin(), files.end(), [](const chart::ArchiveFile& f) { return f.path == "Chart.yaml"; });
  if (!has_chart_yaml) throw UsageError(what + " has no Chart.yaml", "a chart directory holds Chart.yaml, values.yaml and templates/");
  // As Helm loads it: requirements.yaml's dependencies, when it lists some, replace Chart.yaml's.
  const chart::ChartMetadata metadata = chart::read_chart_metadata(files, what);
  chart.name = metadata.name;
  for (const auto& d : metadata.dependencies) chart.dependencies.push_back({d.name, d.alias});
  const chart::ArchiveFile* values_yaml = nullptr;
  // Subcharts in the order their first file comes (archives list files sorted by path).
  std::vector<std::pair<std::string, std::vector<chart::ArchiveFile>>> directories;
  std::vector<const chart::ArchiveFile*> archives;
  std::vector<std::string> order; // "d:NAME" or "a:INDEX"
  for (auto& file : files) {
    if (file.path == "values.yaml") values_yaml = &file;
    if (!starts_with(file.path, "charts/")) continue;
    const std::string rest = file.path.substr(7);
    const std::size_t slash = rest.find('/');
    if (slash == std::string::npos) {
      if (ends_with(rest, ".tgz")) {
        archives.push_back(&file);
        order.push_back("a:" + std::to_string(archives.size() - 1));
      }
      continue;
    }
    const std::string dir = rest.substr(0, slash);
    auto it = std::find_if(directories.begin(), directories.end(), [&](const auto& d) { return d.first == dir; });
    if (it == directories.end()) {
      directories.emplace_back(dir, std::vector<chart::ArchiveFile>{});
      it = std::prev(directories.end());
      order.push_back("d:" + dir);
    }
    it->second.push_back({rest.substr(slash + 1), std::move(file.data), file.executable});
  }
  chart.values = values_yaml ? parse_values(values_yaml->data, what + ": values.yaml") : Node::map();
  for (const std::string& entry : order) {
    if (entry[0] == 'd') {
      const std::string dir = entry.substr(2);
      auto it = std::find_if(directories.begin(), directories.end(), [&](const auto& d) { return d.first == dir; });
      chart.subcharts.push_back(load_chart_files(std::move(it->second), what + ": charts/" + dir, depth + 1));
    } else {
      const chart::ArchiveFile& archive = *archives[std::stoul(entry.substr(2))];
      const std::string sub_what = what + ": " + archive.path;
      chart.subcharts.push_back(load_chart_files(chart::read_chart_files(archive.data, sub_what), sub_what, depth + 1));
    }
  }
  return chart;
}

// Helm's coalesceGlobals: the parent's globals go into the subchart's, the parent's
// winning (maps merged key by key); a global that is a map on one side only and not on
// the other is left alone, as Helm does (it logs a conflict).
void coalesce_globals(Node& sub, const Node& parent) {
  Node* sub_global = sub.find(k_global);
  if (sub_global && !sub_global->is_map() && !sub_global->is_null()) return;
  const Node* parent_global = parent.find(k_global);
  if (parent_global && !parent_global->is_map()) return;
  Node merged = sub_global && sub_global->is_map() ? *sub_global : Node::map();
  if (parent_global) {
    for (const auto& [key, value] : parent_global->entries) {
      Node* existing = merged.find(key);
      if (value.is_map()) {
        if (!existing) {
          merged.set(key, value);
        } else if (existing->is_map()) {
          Node top = value;
          coalesce_defaults(top, *existing);
          *existing = std::move(top);
        }
      } else if (!existing || !existing->is_map()) {
        merged.set(key, value);
      }
    }
  }
  sub.set(std::string(k_global), std::move(merged));
}

// Helm's coalesce(): the chart's defaults under `dest`, then each subchart under its key.
void coalesce_chart(const LoadedChart& chart, Node& dest) {
  coalesce_defaults(dest, chart.values);
  for (const LoadedChart& sub : chart.subcharts) {
    std::vector<std::string> keys;
    for (const Dependency& d : chart.dependencies) {
      if (d.name == sub.name) keys.push_back(d.alias.empty() ? d.name : d.alias);
    }
    if (keys.empty()) keys.push_back(sub.name);
    for (const std::string& key : keys) {
      Node* values = dest.find(key);
      if (!values || values->is_null()) {
        values = &dest.set(key, Node::map());
      } else if (!values->is_map()) {
        throw UsageError(chart.what + ": the value of '" + key + "' must be a map: it holds the values of subchart " +
                             sub.name,
                         "set subchart values as `" + key + ": {KEY: VALUE}`");
      }
      coalesce_globals(*values, dest);
      coalesce_chart(sub, *values);
    }
  }
}

} // namespace

void merge_values_files(Node& base, const Node& over) {
  for (const auto& [key, value] : over.entries) {
    Node* existing = base.find(key);
    if (existing && existing->is_map() && value.is_map()) {
      merge_values_files(*existing, value);
    } else {
      base.set(key, value);
    }
  }
}

void coalesce_defaults(Node& dest, const Node& defaults) {
  Node result = Node::map();
  result.entries.reserve(defaults.entries.size() + dest.entries.size());
  for (const auto& [key, value] : defaults.entries) {
    Node* given = dest.find(key);
    if (!given) {
      result.entries.emplace_back(key, value);
    } else if (given->is_null()) {
      continue; // a null given for a key deletes it (Helm: "remove incompatible keys")
    } else if (given->is_map() && value.is_map()) {
      Node merged = std::move(*given);
      coalesce_defaults(merged, value);
      result.entries.emplace_back(key, std::move(merged));
    } else {
      result.entries.emplace_back(key, std::move(*given));
    }
  }
  for (auto& [key, value] : dest.entries) {
    if (!defaults.find(key) && !value.is_null()) result.entries.emplace_back(key, std::move(value));
  }
  dest = std::move(result);
}

Node effective_values(std::vector<chart::ArchiveFile> files, Node user, const std::string& what) {
  const LoadedChart chart = load_chart_files(std::move(files), what, 0);
  coalesce_chart(chart, user);
  return user;
}

std::string coalesce(const std::string& base, const std::vector<std::string>& overrides,
                     const std::vector<std::string>& names) {
  if (names.size() != overrides.size()) {
    throw core::Error(core::ExitCode::failure, "coalesce: " + std::to_string(overrides.size()) + " documents but " +
                                                   std::to_string(names.size()) + " names");
  }
  Node merged = Node::map();
  for (std::size_t i = 0; i < overrides.size(); ++i) merge_values_files(merged, parse_values(overrides[i], names[i]));
  coalesce_defaults(merged, parse_values(base, "the base values"));
  return emit_values(merged);
}

std::string chart_values(const std::string& chart_tgz, const std::string& what) {
  return emit_values(effective_values(chart::read_chart_files(chart_tgz, what), Node::map(), what));
}

} // namespace ferry::values
