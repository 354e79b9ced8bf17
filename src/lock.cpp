// MANIFEST.lock.json (de)serialisation and comparison.
// SPDX-License-Identifier: Apache-2.0
#include "lock.hpp"

#include "bundle/descriptor.hpp"
#include "core/error.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>

namespace ferry {

using nlohmann::json;

namespace {

template <typename T, typename Key>
const T* find_by(const std::vector<T>& items, std::string_view key, Key T::*member) {
  const auto it = std::find_if(items.begin(), items.end(), [&](const T& item) { return item.*member == key; });
  return it == items.end() ? nullptr : &*it;
}

json digest_or_null(const std::optional<core::Digest>& digest) {
  return digest ? json(digest->str()) : json(nullptr);
}

// Reads the lock with field names in messages.
class Reader {
public:
  explicit Reader(std::string what) : m_what(std::move(what)) {}

  [[noreturn]] void fail(const std::string& field, const std::string& problem) const {
    throw core::UsageError(m_what + ": " + field + " " + problem,
                           "write the lock again with `ferry lock -f MANIFEST` (or `ferry pack` without --locked)");
  }
  const json& member(const json& object, const std::string& key, const std::string& field) const {
    if (!object.is_object() || !object.contains(key)) fail(field + "." + key, "is missing");
    return object.at(key);
  }
  std::string string(const json& object, const std::string& key, const std::string& field) const {
    const json& v = member(object, key, field);
    if (!v.is_string()) fail(field + "." + key, "is not a string");
    return v.get<std::string>();
  }
  std::string optional_string(const json& object, const std::string& key, const std::string& field) const {
    if (!object.is_object() || !object.contains(key) || object.at(key).is_null()) return {};
    return string(object, key, field);
  }
  core::Digest digest(const json& object, const std::string& key, const std::string& field) const {
    const std::string text = string(object, key, field);
    const auto d = core::Digest::try_parse(text);
    if (!d) fail(field + "." + key, "is not a sha256 digest: '" + text + "'");
    return *d;
  }
  std::optional<core::Digest> optional_digest(const json& object, const std::string& key, const std::string& field) const {
    if (optional_string(object, key, field).empty()) return std::nullopt;
    return digest(object, key, field);
  }
  const json& array(const json& object, const std::string& key, const std::string& field) const {
    const json& v = member(object, key, field);
    if (!v.is_array()) fail(field + "." + key, "is not a list");
    return v;
  }

private:
  std::string m_what;
};

std::string image_line(const LockedImage& i) { return "image " + i.source; }

} // namespace

const LockedImage* LockFile::image(std::string_view source) const { return find_by(images, source, &LockedImage::source); }
const LockedChart* LockFile::chart(std::string_view chart_name) const {
  return find_by(charts, chart_name, &LockedChart::name);
}
const LockedFile* LockFile::file(std::string_view path) const { return find_by(files, path, &LockedFile::path); }

std::filesystem::path lock_path_for(const std::filesystem::path& manifest) {
  std::filesystem::path out = manifest;
  const std::string ext = manifest.extension().string();
  if (ext == ".yaml" || ext == ".yml") {
    out.replace_extension(".lock.json");
  } else {
    out += ".lock.json";
  }
  return out;
}

std::string to_json(const LockFile& lock) {
  json images = json::array();
  for (const auto& i : lock.images) {
    json platforms = json::object();
    for (const auto& [platform, digest] : i.platforms) platforms[platform] = digest.str();
    images.push_back({{"source", i.source},
                      {"ref", i.ref},
                      {"digest", i.digest.str()},
                      {"sourceDigest", digest_or_null(i.source_digest)},
                      {"platforms", platforms}});
  }
  json charts = json::array();
  for (const auto& c : lock.charts) {
    json deps = json::array();
    for (const auto& d : c.dependencies) {
      deps.push_back({{"name", d.name},
                      {"constraint", d.constraint},
                      {"version", d.version},
                      {"url", d.url},
                      {"digest", d.digest.str()}});
    }
    charts.push_back({{"name", c.name},
                      {"source", c.source},
                      {"constraint", c.constraint},
                      {"version", c.version},
                      {"url", c.url},
                      {"digest", digest_or_null(c.digest)},
                      {"dependencies", deps}});
  }
  json files = json::array();
  for (const auto& f : lock.files) files.push_back({{"path", f.path}, {"source", f.source}, {"digest", f.digest.str()}});
  const json doc = {{"lockVersion", lock.lock_version},
                    {"bundle", {{"name", lock.name}, {"version", lock.version}}},
                    {"platforms", lock.platforms},
                    {"images", images},
                    {"charts", charts},
                    {"files", files}};
  return doc.dump(2) + "\n";
}

LockFile parse_lock(std::string_view text, const std::string& what) {
  const Reader r(what);
  json doc;
  try {
    doc = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    r.fail("", std::string("is not JSON: ") + e.what());
  }
  if (!doc.is_object()) r.fail("the document", "is not a JSON object");
  LockFile lock;
  const json& version = r.member(doc, "lockVersion", "lock");
  if (!version.is_number_integer() || version.get<long long>() != k_lock_version) {
    throw core::UsageError(what + " has lockVersion " + version.dump() + "; this ferry reads version " +
                               std::to_string(k_lock_version),
                           "write the lock again with this ferry (`ferry lock -f MANIFEST`), or use the ferry that wrote it");
  }
  const json& bundle = r.member(doc, "bundle", "lock");
  lock.name = r.string(bundle, "name", "bundle");
  lock.version = r.string(bundle, "version", "bundle");
  for (const auto& p : r.array(doc, "platforms", "lock")) {
    if (!p.is_string()) r.fail("platforms", "holds something that is not a string");
    lock.platforms.push_back(p.get<std::string>());
  }
  std::size_t n = 0;
  for (const auto& i : r.array(doc, "images", "lock")) {
    const std::string field = "images[" + std::to_string(n++) + "]";
    LockedImage image{r.string(i, "source", field), r.string(i, "ref", field), r.digest(i, "digest", field),
                      r.optional_digest(i, "sourceDigest", field), {}};
    const json& platforms = r.member(i, "platforms", field);
    if (!platforms.is_object()) r.fail(field + ".platforms", "is not an object");
    for (const auto& [platform, digest] : platforms.items()) {
      const auto d = digest.is_string() ? core::Digest::try_parse(digest.get<std::string>()) : std::nullopt;
      if (!d) r.fail(field + ".platforms." + platform, "is not a sha256 digest");
      image.platforms.emplace_back(platform, *d);
    }
    if (lock.image(image.source)) r.fail(field, "locks image " + image.source + " a second time");
    lock.images.push_back(std::move(image));
  }
  n = 0;
  for (const auto& c : r.array(doc, "charts", "lock")) {
    const std::string field = "charts[" + std::to_string(n++) + "]";
    LockedChart chart{r.string(c, "name", field),   r.string(c, "source", field),         r.string(c, "constraint", field),
                      r.string(c, "version", field), r.optional_string(c, "url", field), r.optional_digest(c, "digest", field),
                      {}};
    std::size_t k = 0;
    for (const auto& d : r.array(c, "dependencies", field)) {
      const std::string dep = field + ".dependencies[" + std::to_string(k++) + "]";
      chart.dependencies.push_back({r.string(d, "name", dep), r.string(d, "constraint", dep), r.string(d, "version", dep),
                                    r.string(d, "url", dep), r.digest(d, "digest", dep)});
    }
    if (lock.chart(chart.name)) r.fail(field, "locks chart " + chart.name + " a second time");
    lock.charts.push_back(std::move(chart));
  }
  n = 0;
  for (const auto& f : r.array(doc, "files", "lock")) {
    const std::string field = "files[" + std::to_string(n++) + "]";
    LockedFile file{r.string(f, "path", field), r.string(f, "source", field), r.digest(f, "digest", field)};
    if (lock.file(file.path)) r.fail(field, "locks file " + file.path + " a second time");
    lock.files.push_back(std::move(file));
  }
  return lock;
}

LockFile lock_from_descriptor(
    const bundle::BundleDescriptor& descriptor, const std::vector<std::string>& default_platforms,
    const std::vector<std::pair<std::string, std::vector<std::pair<std::string, core::Digest>>>>& platforms,
    const std::vector<std::pair<std::string, std::string>>& constraints) {
  LockFile lock;
  lock.name = descriptor.name;
  lock.version = descriptor.version;
  lock.platforms = default_platforms;
  for (const auto& i : descriptor.images) {
    LockedImage image{i.source, i.ref, i.digest, i.source_digest, {}};
    const auto p = std::find_if(platforms.begin(), platforms.end(), [&](const auto& e) { return e.first == i.source; });
    if (p != platforms.end()) image.platforms = p->second;
    lock.images.push_back(std::move(image));
  }
  for (const auto& c : descriptor.charts) {
    const auto constraint =
        std::find_if(constraints.begin(), constraints.end(), [&](const auto& e) { return e.first == c.name; });
    LockedChart chart{c.name, c.source, constraint == constraints.end() ? std::string() : constraint->second,
                      c.version, c.source_url, c.upstream_digest, {}};
    for (const auto& d : c.dependencies) chart.dependencies.push_back({d.name, "", d.version, d.source, d.digest});
    lock.charts.push_back(std::move(chart));
  }
  for (const auto& f : descriptor.files) lock.files.push_back({f.path, f.source, f.content_digest});
  return lock;
}

std::vector<std::string> lock_differences(const LockFile& lock, const LockFile& now) {
  std::vector<std::string> out;
  for (const auto& i : now.images) {
    const LockedImage* locked = lock.image(i.source);
    if (!locked) {
      out.push_back(image_line(i) + ": not in the lock");
      continue;
    }
    // The source's own root decides whether upstream moved (ferry's narrowed index
    // follows from it and the platforms).
    const core::Digest& was = locked->source_digest ? *locked->source_digest : locked->digest;
    const core::Digest& is = i.source_digest ? *i.source_digest : i.digest;
    if (was != is) {
      out.push_back(image_line(i) + ": the lock has " + was.str() + ", the source now " + is.str());
    } else if (locked->digest != i.digest) {
      out.push_back(image_line(i) + ": packs as " + i.digest.str() + " (platforms differ from the lock's: " +
                    locked->digest.str() + ")");
    }
  }
  for (const auto& i : lock.images) {
    if (!now.image(i.source)) out.push_back(image_line(i) + ": in the lock, but the manifest no longer has it");
  }
  for (const auto& c : now.charts) {
    const LockedChart* locked = lock.chart(c.name);
    if (!locked) {
      out.push_back("chart " + c.name + ": not in the lock");
      continue;
    }
    if (locked->version != c.version) {
      out.push_back("chart " + c.name + ": the lock has version " + locked->version + ", now " + c.version);
    } else if (locked->digest && c.digest && *locked->digest != *c.digest) {
      out.push_back("chart " + c.name + " " + c.version + ": the lock has archive " + locked->digest->str() + ", " +
                    (c.url.empty() ? std::string("now") : c.url + " now serves") + " " + c.digest->str());
    }
    std::map<std::string, const LockedChartDependency*> before;
    for (const auto& d : locked->dependencies) before[d.name] = &d;
    for (const auto& d : c.dependencies) {
      const auto it = before.find(d.name);
      if (it == before.end()) {
        out.push_back("chart " + c.name + ": dependency " + d.name + " " + d.version + " is not in the lock");
      } else if (it->second->version != d.version || it->second->digest != d.digest) {
        out.push_back("chart " + c.name + ": dependency " + d.name + ": the lock has " + it->second->version + " " +
                      it->second->digest.str() + ", now " + d.version + " " + d.digest.str());
      }
    }
  }
  for (const auto& c : lock.charts) {
    if (!now.chart(c.name)) out.push_back("chart " + c.name + ": in the lock, but the manifest no longer has it");
  }
  for (const auto& f : now.files) {
    const LockedFile* locked = lock.file(f.path);
    if (!locked) {
      out.push_back("file " + f.path + ": not in the lock");
    } else if (locked->digest != f.digest) {
      out.push_back("file " + f.path + " (" + f.source + "): the lock has " + locked->digest.str() + ", the file now " +
                    f.digest.str());
    }
  }
  for (const auto& f : lock.files) {
    if (!now.file(f.path)) out.push_back("file " + f.path + ": in the lock, but the manifest no longer has it");
  }
  return out;
}

} // namespace ferry
