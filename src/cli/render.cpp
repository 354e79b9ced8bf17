// Bundle summaries as text and JSON.
// SPDX-License-Identifier: Apache-2.0
#include "cli/render.hpp"

#include "cli/output.hpp"
#include "unpack.hpp"
#include "values/rewrite.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

namespace ferry::cli {

using nlohmann::json;

std::string signature_text(const bundle::SignatureCheck& s) {
  using Status = bundle::SignatureCheck::Status;
  if (s.status == Status::verified) return "verified, " + s.algorithm + " key " + s.key_id + " (" + s.key_display + ")";
  if (!s.has_signature) return "NONE: the bundle is unsigned";
  return "NOT CHECKED, claims " + s.algorithm + " key " + s.key_id;
}

void print_given_files(Output& out, const GivenFiles& files, const char* verb) {
  if (!files.split) return;
  std::string given;
  for (const auto& f : files.given) given += (given.empty() ? "" : ", ") + fmt::format("{:03}", f.volume);
  out.result(fmt::format("volumes    {} of {} {} ({}), at most {} each", files.given.size(), files.count, verb, given,
                         human_bytes(files.limit)));
  if (files.missing_names.empty()) return;
  std::string missing;
  for (const auto& name : files.missing_names) missing += (missing.empty() ? "" : ", ") + name;
  out.result("not given  " + missing);
}

json given_files_json(const GivenFiles& files) {
  if (!files.split) return nullptr;
  json given = json::array();
  for (const auto& f : files.given) {
    json o = {{"volume", f.volume}, {"file", f.path.string()}, {"size", f.size}};
    if (f.stats.entries > 0) o["verified"] = {{"entries", f.stats.entries}, {"bytes", f.stats.bytes}};
    given.push_back(std::move(o));
  }
  json missing = json::array();
  for (std::size_t i = 0; i < files.missing.size(); ++i) {
    missing.push_back({{"volume", files.missing[i]}, {"file", files.missing_names[i]}});
  }
  return {{"count", files.count}, {"limit", files.limit}, {"given", given}, {"missing", missing}};
}

namespace {

// Percent of a differential bundle's content that its bases hold (0 for a full bundle).
double saved_percent(const bundle::BundleDescriptor& d) {
  const std::uint64_t whole = d.blob_bytes() + d.omitted_bytes();
  return whole == 0 ? 0.0 : 100.0 * static_cast<double>(d.omitted_bytes()) / static_cast<double>(whole);
}

} // namespace

void print_bundle(Output& out, const bundle::BundleDescriptor& d, const bundle::SignatureCheck& signature,
                  std::uint64_t bundle_size) {
  const std::uint64_t content = d.blob_bytes();
  const std::uint64_t whole = content + d.omitted_bytes(); // a differential bundle's omitted blobs too
  const std::uint64_t unshared = d.unshared_bytes();
  out.result(fmt::format("bundle     {} {}", d.name, d.version));
  out.result(fmt::format("created    {} by ferry {}", d.created, d.tool_version));
  out.result(fmt::format("signature  {}", signature_text(signature)));
  out.result(fmt::format("size       {} compressed, {} in {} blobs{}", human_bytes(bundle_size), human_bytes(content),
                         d.blobs.size() - d.omitted_blobs(),
                         unshared > whole ? fmt::format(" ({} saved by sharing blobs)", human_bytes(unshared - whole))
                                          : std::string()));
  for (const auto& b : d.bases) {
    out.result(fmt::format("base       {}, {}{}", bundle::base_text(b), b.digest.short_str(),
                           b.signer.empty() ? std::string(", signature not checked") : ", signed by " + b.signer));
  }
  if (d.differential()) {
    out.result(fmt::format("omitted    {} blobs, {} the base has: {:.1f}% of the {} of content left out", d.omitted_blobs(),
                           human_bytes(d.omitted_bytes()), saved_percent(d), human_bytes(whole)));
  }
  if (!d.images.empty()) out.result(fmt::format("images     {}", d.images.size()));
  for (const auto& i : d.images) {
    std::string platforms;
    for (const auto& p : i.platforms) platforms += (platforms.empty() ? "" : ",") + p;
    out.result(fmt::format("  {}  {}  {}  {}", i.ref, i.digest.short_str(), human_bytes(i.size),
                           platforms.empty() ? "-" : platforms));
    for (const auto& f : i.found_by) {
      out.result(fmt::format("    found by {} in chart {}: {}", f.method, f.chart, f.where));
    }
  }
  if (!d.charts.empty()) out.result(fmt::format("charts     {}", d.charts.size()));
  for (const auto& c : d.charts) {
    out.result(fmt::format("  {} {}  {}  {}  from {}", c.name, c.version, c.digest.short_str(), human_bytes(c.size),
                           c.source_url.empty() ? c.source : c.source_url));
    for (const auto& dep : c.dependencies) {
      out.result(fmt::format("    + {} {} vendored from {}", dep.name, dep.version, dep.source));
    }
  }
  if (!d.files.empty()) out.result(fmt::format("files      {}", d.files.size()));
  for (const auto& f : d.files) {
    out.result(fmt::format("  {}  {:04o}  {}  {}", f.path, f.mode, f.content_digest.short_str(), human_bytes(f.size)));
  }
}

json bundle_json(const bundle::BundleDescriptor& d, const bundle::SignatureCheck& s, std::uint64_t bundle_size) {
  // Images and charts as ferry.json writes them (one serialisation), with the optional
  // members every report shows filled in: an empty release of foundBy, an empty list of
  // vendored dependencies.
  json signed_form = json::parse(bundle::to_json(d));
  json images = std::move(signed_form["images"]);
  for (auto& image : images) {
    if (!image.contains("foundBy")) continue;
    for (auto& f : image["foundBy"]) {
      if (!f.contains("release")) f["release"] = "";
    }
  }
  json charts = std::move(signed_form["charts"]);
  for (auto& chart : charts) {
    if (!chart.contains("dependencies")) chart["dependencies"] = json::array();
  }
  json files = json::array();
  for (const auto& f : d.files) {
    files.push_back({{"path", f.path}, {"source", f.source}, {"mode", fmt::format("{:04o}", f.mode)},
                     {"digest", f.content_digest.str()}, {"size", f.size}});
  }
  const std::uint64_t content = d.blob_bytes();
  const std::uint64_t whole = content + d.omitted_bytes();
  const std::uint64_t unshared = d.unshared_bytes();
  json bases = json::array();
  for (const auto& b : d.bases) {
    json o = {{"kind", b.kind}, {"file", b.file}, {"digest", b.digest.str()}, {"text", bundle::base_text(b)}};
    for (const auto& [key, value] : {std::pair<const char*, const std::string*>{"name", &b.name},
                                     {"version", &b.version},
                                     {"registry", &b.registry},
                                     {"created", &b.created},
                                     {"signer", &b.signer}}) {
      if (!value->empty()) o[key] = *value;
    }
    bases.push_back(std::move(o));
  }
  json differential = nullptr;
  if (d.differential()) {
    differential = {{"omittedBlobs", d.omitted_blobs()},
                    {"omittedBytes", d.omitted_bytes()},
                    {"contentBytes", whole},
                    {"savedPercent", saved_percent(d)}};
  }
  return {
      {"name", d.name},
      {"version", d.version},
      {"created", d.created},
      {"formatVersion", d.format_version},
      {"toolVersion", d.tool_version},
      {"signature",
       {{"status", s.status == bundle::SignatureCheck::Status::verified ? "verified"
                   : s.has_signature                                   ? "not-checked"
                                                                       : "unsigned"},
        {"keyId", s.key_id},
        {"algorithm", s.algorithm},
        {"key", s.key_display}}},
      {"bundleSize", bundle_size},
      {"blobs", d.blobs.size() - d.omitted_blobs()},
      {"blobBytes", content},
      {"unsharedBytes", unshared},
      {"savedBySharing", unshared > whole ? unshared - whole : 0},
      {"bases", std::move(bases)},
      {"differential", std::move(differential)},
      {"images", std::move(images)},
      {"charts", std::move(charts)},
      {"files", std::move(files)},
  };
}

// Paths and messages may hold bytes that are not UTF-8: they become U+FFFD instead of
// failing the dump.
void print_json(Output& out, const json& value) {
  out.result(value.dump(-1, ' ', false, json::error_handler_t::replace));
}

} // namespace ferry::cli

namespace ferry::cli {

nlohmann::json changes_json(const std::vector<values::Change>& changes) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& c : changes) {
    out.push_back({{"path", c.path}, {"old", c.old_value}, {"new", c.new_value}, {"detector", c.detector}, {"image", c.image}});
  }
  return out;
}

nlohmann::json skipped_json(const std::vector<values::Skipped>& skipped) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& s : skipped) out.push_back({{"path", s.path}, {"value", s.value}, {"reason", s.reason}});
  return out;
}

nlohmann::json by_rules_json(const std::vector<values::RulePlaced>& by_rules) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& b : by_rules) out.push_back({{"image", b.image}, {"rule", b.rule}, {"path", b.path}});
  return out;
}

} // namespace ferry::cli
