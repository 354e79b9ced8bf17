// The digest that ties a Helm lock file (Chart.lock, requirements.lock) to the
// dependencies it was made for, as `helm dependency update` writes it and `helm
// dependency build` checks it.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "chart/chart_archive.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace ferry::chart {

// `text` as Go's encoding/json writes a string, quotes included: '"' and '\' escaped,
// \n \r \t as such, other control characters and '<', '>', '&', U+2028, U+2029 as
// \u00XX / \u2028 escapes (Go escapes the HTML ones by default), a byte that is not
// UTF-8 as \ufffd, everything else as it is.
std::string go_json_string(std::string_view text);

// The digest `helm dependency update` writes into a lock (Helm's resolver.HashReq):
// "sha256:" + the hex SHA-256 of Go's json.Marshal of [req, lock], two lists of Helm's
// chart.Dependency (fields name, version, repository, condition, tags, enabled,
// import-values, export-values, alias; all but name and repository left out when empty).
// `req` are the chart's dependencies as Helm loads them (ChartMetadata::dependencies),
// `lock` the lock's; an empty list is Go's nil slice (null).
std::string lock_digest(const std::vector<ChartDependency>& req, const std::vector<ChartDependency>& lock);

// The digest Helm 2 wrote into requirements.lock, which Helm 3 still accepts for
// apiVersion v1 charts (resolver.HashV2Req): the same, of {"dependencies": req}.
std::string helm2_lock_digest(const std::vector<ChartDependency>& req);

// Whether `helm dependency build` takes `lock` as in sync with `meta`'s dependencies: its
// digest is lock_digest(), or for an apiVersion v1 chart helm2_lock_digest(). Helm first
// replaces a repository given as @NAME or alias:NAME by the URL of the local helm
// repository of that name, which ferry does not know: the caller skips the check then.
bool lock_in_sync(const ChartMetadata& meta, const ChartLock& lock);

} // namespace ferry::chart
