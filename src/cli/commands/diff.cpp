// ferry diff: what changed between two bundles or two lock files.
// SPDX-License-Identifier: Apache-2.0
#include "diff.hpp"

#include "cli/commands/commands.hpp"
#include "cli/output.hpp"
#include "cli/render.hpp"

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace ferry::cli {

namespace {

using nlohmann::json;

json size_json(const std::optional<std::uint64_t>& size) { return size ? json(*size) : json(nullptr); }

json item_json(const DiffItem& i) {
  json o = {{"name", i.key}, {"digest", i.digest.str()}, {"size", size_json(i.size)}};
  if (!i.version.empty()) o["version"] = i.version;
  return o;
}

json section_json(const SectionDiff& s) {
  json added = json::array();
  for (const auto& i : s.added) added.push_back(item_json(i));
  json removed = json::array();
  for (const auto& i : s.removed) removed.push_back(item_json(i));
  json changed = json::array();
  for (const auto& c : s.changed) changed.push_back({{"old", item_json(c.before)}, {"new", item_json(c.after)}});
  return {{"added", added}, {"removed", removed}, {"changed", changed}, {"unchanged", s.unchanged}};
}

json side_json(const DiffSide& side, const std::string& file) {
  json bases = json::array();
  for (const auto& b : side.bases) bases.push_back(bundle::base_text(b));
  return {{"file", file}, {"kind", side.kind}, {"name", side.name}, {"version", side.version}, {"bases", bases}};
}

std::string size_text(const std::optional<std::uint64_t>& size) { return size ? human_bytes(*size) : std::string("?"); }

// "name 1.0 sha256:…" for a line of text.
std::string item_text(const DiffItem& i, bool show_version) {
  return fmt::format("{}{}  {}  {}", i.key, show_version && !i.version.empty() ? " " + i.version : std::string(),
                     i.digest.short_str(), size_text(i.size));
}

void print_section(Output& out, const char* title, const SectionDiff& s, bool show_version) {
  out.result(fmt::format("{:<7}{} changed, {} added, {} removed, {} unchanged", title, s.changed.size(), s.added.size(),
                         s.removed.size(), s.unchanged));
  for (const auto& c : s.changed) {
    const bool renamed = c.before.key != c.after.key;
    out.result(fmt::format("  ~ {}{}{}  {} -> {}  ({} -> {})", c.after.key, renamed ? " (was " + c.before.key + ")" : "",
                           show_version && c.before.version != c.after.version
                               ? " " + c.before.version + " -> " + c.after.version
                               : std::string(),
                           c.before.digest.short_str(), c.after.digest.short_str(), size_text(c.before.size),
                           size_text(c.after.size)));
  }
  for (const auto& i : s.added) out.result("  + " + item_text(i, show_version));
  for (const auto& i : s.removed) out.result("  - " + item_text(i, show_version));
}

} // namespace

void add_diff(CLI::App& app, CommandRun& run) {
  struct Flags {
    std::string before;
    std::string after;
    std::vector<std::string> pubkeys;
  };
  auto flags = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand("diff", "Show what changed between two bundles or two lock files");
  cmd->add_option("old", flags->before, "The older bundle (.tar.zst, or one volume) or lock file")->required();
  cmd->add_option("new", flags->after, "The newer bundle or lock file")->required();
  cmd->add_option("--pubkey", flags->pubkeys, "Check the bundles' signatures with this key (repeatable)")
      ->allow_extra_args(false);
  cmd->footer("Reads only the head of a bundle (ferry.json). Images are matched by reference (a tag that moved in\n"
              "the same repository is a change), charts by name, files by path. Exits 0 whatever the differences.");
  cmd->callback([flags, &run] {
    run = [flags](Output& out) {
      TrustOptions trust;
      trust.pubkeys = {flags->pubkeys.begin(), flags->pubkeys.end()};
      const DiffSide before = read_diff_side(flags->before, trust, out);
      const DiffSide after = read_diff_side(flags->after, trust, out);
      const DiffResult r = diff(before, after);
      if (out.json()) {
        json blobs = nullptr;
        if (r.blobs) {
          blobs = {{"added", r.blobs->added},     {"addedBytes", r.blobs->added_bytes},
                   {"removed", r.blobs->removed}, {"removedBytes", r.blobs->removed_bytes},
                   {"shared", r.blobs->shared},   {"sharedBytes", r.blobs->shared_bytes}};
        }
        print_json(out, {{"old", side_json(before, flags->before)},
                         {"new", side_json(after, flags->after)},
                         {"images", section_json(r.images)},
                         {"charts", section_json(r.charts)},
                         {"files", section_json(r.files)},
                         {"sizesKnown", r.blobs.has_value()},
                         {"blobs", blobs}});
        return;
      }
      out.result(fmt::format("old    {} {} {} ({})", before.kind, before.name, before.version, flags->before));
      out.result(fmt::format("new    {} {} {} ({})", after.kind, after.name, after.version, flags->after));
      print_section(out, "images", r.images, false);
      print_section(out, "charts", r.charts, true);
      print_section(out, "files", r.files, false);
      if (r.blobs) {
        out.result(fmt::format("blobs  {} new ({}), {} gone ({}), {} in both ({})", r.blobs->added,
                               human_bytes(r.blobs->added_bytes), r.blobs->removed, human_bytes(r.blobs->removed_bytes),
                               r.blobs->shared, human_bytes(r.blobs->shared_bytes)));
      } else {
        out.result("blobs  sizes unknown: a lock file records digests, not blobs or sizes");
      }
    };
  });
}

} // namespace ferry::cli
