// Private to values/: how Helm computes a release's values — values files merged, then
// coalesced over the chart's defaults and its subcharts', globals copied down.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "chart/chart_archive.hpp"
#include "values/tree.hpp"

#include <string>
#include <vector>

namespace ferry::values {

// Helm's merge of values files (`-f a -f b`): maps merge key by key, anything else in
// `over` replaces, a null included (it deletes later, in coalesce_defaults()).
void merge_values_files(Node& base, const Node& over);

// Helm's coalescing of given values over defaults: `dest` wins; maps merge; a null in
// `dest` deletes the key. Keys keep the defaults' order, then `dest`'s own.
void coalesce_defaults(Node& dest, const Node& defaults);

// The values of a chart given as its files (chart::read_chart_files), with `user` (the
// merged values files; an empty map for the chart's defaults) coalesced over them, each
// subchart's values under its name or alias and the parent's `global` merged into each
// subchart's `global`, as Helm does before rendering. `what` names the chart in
// messages. UsageError for a chart Helm could not load (no Chart.yaml, bad YAML, a
// subchart key that holds no map).
Node effective_values(std::vector<chart::ArchiveFile> files, Node user, const std::string& what);

} // namespace ferry::values
