// Helm chart archives: reading a .tgz (Chart.yaml, config blob), packaging a directory.
// SPDX-License-Identifier: Apache-2.0
#include "chart/chart_archive.hpp"

#include "core/c_handle.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/io.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <clocale>
#include <fnmatch.h>
#include <locale.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <string_view>
#include <system_error>

namespace ferry::chart {

namespace fs = std::filesystem;
using core::UsageError;

namespace {

using ArchiveReader = std::unique_ptr<archive, core::CDeleter<archive_read_free>>;
using ArchiveWriter = std::unique_ptr<archive, core::CDeleter<archive_write_free>>;
using ArchiveEntry = std::unique_ptr<archive_entry, core::CDeleter<archive_entry_free>>;

// Helm reads at most 5 MiB of Chart.yaml (loader.MaxDecompressedFileSize); so do we.
constexpr std::size_t k_max_chart_yaml_size = 5u << 20;
// Bound on the unpacked size of a chart (sum of its entries), against gzip bombs: what
// we read or skip while scanning an archive, and what we read while packaging one.
constexpr std::uint64_t k_max_unpacked_size = 4ull * k_max_chart_size;
// Chart.yaml is converted to JSON by walking it: bounds for hostile documents (yaml-cpp
// keeps aliases shared, and a recursive alias makes a cycle).
constexpr int k_max_yaml_depth = 64;
constexpr std::size_t k_max_yaml_nodes = 100000;

// libarchive converts path names with the calling thread's locale: in the C locale
// version 3.6 refuses any non-ASCII name (and crashes on names given as UTF-8). Charts
// carry UTF-8 names (Go's archive/tar writes them so), so archives are read and written
// under C.UTF-8, for this thread only, which also makes the bytes independent of the
// caller's locale. Where C.UTF-8 does not exist the thread's locale stays in force.
class Utf8Locale {
public:
  Utf8Locale() : m_locale(::newlocale(LC_CTYPE_MASK, "C.UTF-8", locale_t{})) {
    if (m_locale) m_previous = ::uselocale(m_locale);
  }
  Utf8Locale(const Utf8Locale&) = delete;
  Utf8Locale& operator=(const Utf8Locale&) = delete;
  ~Utf8Locale() {
    if (!m_locale) return;
    ::uselocale(m_previous);
    ::freelocale(m_locale);
  }

private:
  locale_t m_locale;
  locale_t m_previous{};
};

std::string archive_error(archive* a) {
  const char* text = archive_error_string(a);
  std::string out = text ? text : "unknown libarchive error";
  if (const int err = archive_errno(a); err > 0) out += " (errno " + std::to_string(err) + ")";
  return out;
}

// --- Chart.yaml ----------------------------------------------------------------------

// Plain (untagged, unquoted) YAML booleans as the core schema spells them.
bool is_plain_bool(const YAML::Node& node, bool& value) {
  if (node.Tag() != "?") return false;
  const std::string& s = node.Scalar();
  if (s == "true" || s == "True" || s == "TRUE") {
    value = true;
    return true;
  }
  if (s == "false" || s == "False" || s == "FALSE") {
    value = false;
    return true;
  }
  return false;
}

// Chart.yaml as JSON: maps -> objects, sequences -> arrays, plain true/false -> booleans,
// null -> null, every other scalar -> its text. Every Chart.yaml field is a string or a
// boolean (`deprecated`), so strings never turn into numbers ("1.10" stays "1.10").
nlohmann::json yaml_to_json(const YAML::Node& node, const std::string& what, int depth, std::size_t& budget) {
  if (depth > k_max_yaml_depth || budget == 0) {
    throw UsageError(what + " is nested too deeply or too large (recursive YAML alias?)");
  }
  --budget;
  switch (node.Type()) {
  case YAML::NodeType::Map: {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& item : node) {
      if (!item.first.IsScalar()) {
        throw UsageError(what + ":" + std::to_string(item.first.Mark().line + 1) + ": map keys must be strings");
      }
      const std::string& key = item.first.Scalar();
      if (out.contains(key)) {
        throw UsageError(what + ":" + std::to_string(item.first.Mark().line + 1) + ": duplicate key '" + key + "'");
      }
      out[key] = yaml_to_json(item.second, what, depth + 1, budget);
    }
    return out;
  }
  case YAML::NodeType::Sequence: {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& item : node) out.push_back(yaml_to_json(item, what, depth + 1, budget));
    return out;
  }
  case YAML::NodeType::Scalar: {
    bool value = false;
    if (is_plain_bool(node, value)) return value;
    return node.Scalar();
  }
  case YAML::NodeType::Null:
  case YAML::NodeType::Undefined:
    break;
  }
  return nullptr;
}

// A string field of Chart.yaml; empty when absent or null.
std::string string_field(const YAML::Node& root, const char* key, const std::string& what) {
  const YAML::Node value = root[key];
  if (!value.IsDefined() || value.IsNull()) return {};
  if (!value.IsScalar()) {
    throw UsageError(what + ":" + std::to_string(value.Mark().line + 1) + ": '" + key + "' must be a string");
  }
  return value.Scalar();
}

// Parses Chart.yaml; `what` names it in messages ("x.tgz: mychart/Chart.yaml").
ChartMetadata parse_chart_yaml(const std::string& text, const std::string& what) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw UsageError(what + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                     ": YAML syntax error: " + e.msg);
  }
  if (!root.IsMap()) throw UsageError(what + " is not a YAML map of chart metadata");

  ChartMetadata meta;
  std::size_t budget = k_max_yaml_nodes;
  try {
    meta.config_json = yaml_to_json(root, what, 0, budget).dump();
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(what + " cannot be converted to JSON: " + e.what(), "Chart.yaml must be UTF-8 text");
  }
  meta.api_version = string_field(root, "apiVersion", what);
  meta.name = string_field(root, "name", what);
  meta.version = string_field(root, "version", what);
  meta.app_version = string_field(root, "appVersion", what);
  meta.description = string_field(root, "description", what);
  meta.type = string_field(root, "type", what);
  if (meta.name.empty()) throw UsageError(what + " has no 'name'", "Chart.yaml must give the chart's name and version");
  if (meta.version.empty()) {
    throw UsageError(what + " has no 'version'", "Chart.yaml must give the chart's name and version");
  }
  if (meta.name == "." || meta.name == ".." || meta.name.find_first_of("/\\") != std::string::npos) {
    throw UsageError(what + ": chart name '" + meta.name + "' is not a valid directory name");
  }
  const YAML::Node dependencies = root["dependencies"];
  if (dependencies.IsDefined() && !dependencies.IsNull()) {
    if (!dependencies.IsSequence()) {
      throw UsageError(what + ":" + std::to_string(dependencies.Mark().line + 1) + ": 'dependencies' must be a list");
    }
    for (const auto& item : dependencies) {
      const std::string where = what + ":" + std::to_string(item.Mark().line + 1);
      if (!item.IsMap()) throw UsageError(where + ": an item of 'dependencies' must be a map");
      ChartDependency dependency{string_field(item, "name", what), string_field(item, "version", what),
                                 string_field(item, "repository", what), string_field(item, "alias", what)};
      if (dependency.name.empty()) throw UsageError(where + ": a dependency has no 'name'");
      if (dependency.name == "." || dependency.name == ".." ||
          dependency.name.find_first_of("/\\") != std::string::npos) {
        throw UsageError(where + ": dependency name '" + dependency.name + "' is not a valid chart name");
      }
      meta.dependencies.push_back(std::move(dependency));
    }
  }
  const YAML::Node annotations = root["annotations"];
  if (annotations.IsDefined() && !annotations.IsNull()) {
    if (!annotations.IsMap()) {
      throw UsageError(what + ":" + std::to_string(annotations.Mark().line + 1) + ": 'annotations' must be a map");
    }
    for (const auto& item : annotations) {
      if (!item.second.IsScalar() && !item.second.IsNull()) {
        throw UsageError(what + ":" + std::to_string(item.second.Mark().line + 1) + ": annotation '" +
                         item.first.Scalar() + "' must be a string");
      }
      meta.annotations[item.first.Scalar()] = item.second.IsScalar() ? item.second.Scalar() : std::string();
    }
  }
  return meta;
}

// Reads at most `limit` bytes of `path`; more is a UsageError naming it.
std::string read_limited(const fs::path& path, std::size_t limit, std::string_view what) {
  core::FileSource source(path);
  try {
    return core::read_all(source, limit, core::display(path));
  } catch (const core::IntegrityError&) {
    throw UsageError(std::string(what) + " " + core::display(path) + " is larger than the limit of " +
                     std::to_string(limit >> 20) + " MiB");
  }
}

// --- reading --------------------------------------------------------------------------

// Splits a tar entry path into components; refuses absolute paths, "..", "." and empty
// components (a trailing '/' of a directory entry is allowed).
std::vector<std::string> split_entry_path(const std::string& path, const std::string& shown) {
  if (path.empty()) throw UsageError(shown + " has an entry with an empty path");
  if (path.front() == '/') throw UsageError(shown + ": entry '" + path + "' has an absolute path");
  std::string_view rest = path;
  if (rest.back() == '/') rest.remove_suffix(1);
  std::vector<std::string> parts;
  while (true) {
    const std::size_t slash = rest.find('/');
    const std::string_view part = rest.substr(0, slash);
    if (part == "..") throw UsageError(shown + ": entry '" + path + "' has a '..' component");
    if (part.empty() || part == ".") {
      throw UsageError(shown + ": entry '" + path + "' is not a normalised relative path",
                       "`helm package` writes entries as CHART/FILE, without '.' or empty components");
    }
    parts.emplace_back(part);
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return parts;
}

std::string read_entry_data(archive* a, std::size_t size, const std::string& what) {
  std::string data(size, '\0');
  std::size_t done = 0;
  while (done < size) {
    const la_ssize_t n = archive_read_data(a, data.data() + done, size - done);
    if (n < 0) throw UsageError("reading " + what + ": " + archive_error(a));
    if (n == 0) throw UsageError(what + " ended after " + std::to_string(done) + " of " + std::to_string(size) + " bytes");
    done += static_cast<std::size_t>(n);
  }
  return data;
}

// One regular file of a chart archive, as scan_chart_archive() meets it.
struct ScannedFile {
  std::string entry_path; // as in the tar ("mychart/templates/x.yaml")
  std::string rel;        // below the top directory ("templates/x.yaml")
  std::uint64_t size = 0;
  bool executable = false;
  std::function<std::string()> read; // its data; call at most once, before the next file
};

// Walks a chart archive (gzip tar, one top directory) with every check that
// read_chart_archive() promises, handing each regular file to `on_file`. Returns the
// name of the top directory.
std::string scan_chart_archive(const std::string& bytes, const std::string& shown,
                               const std::function<void(const ScannedFile&)>& on_file) {
  if (bytes.size() < 2 || static_cast<unsigned char>(bytes[0]) != 0x1f || static_cast<unsigned char>(bytes[1]) != 0x8b) {
    throw UsageError(shown + " is not a gzip-compressed chart archive", "give a .tgz written by `helm package` or a chart directory");
  }
  if (bytes.size() > k_max_chart_size) {
    throw UsageError(shown + " is larger than the limit of " + std::to_string(k_max_chart_size >> 20) + " MiB");
  }

  const Utf8Locale utf8_locale;
  ArchiveReader reader(archive_read_new());
  if (!reader) throw core::Error(core::ExitCode::failure, "archive_read_new failed");
  archive* a = reader.get();
  if (archive_read_support_filter_gzip(a) != ARCHIVE_OK || archive_read_support_format_tar(a) != ARCHIVE_OK ||
      archive_read_open_memory(a, bytes.data(), bytes.size()) != ARCHIVE_OK) {
    throw UsageError(shown + " is not a valid chart archive: " + archive_error(a));
  }

  std::string top;
  std::uint64_t unpacked = 0;
  while (true) {
    archive_entry* entry = nullptr;
    const int r = archive_read_next_header(a, &entry);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) throw UsageError(shown + " is not a valid chart archive: " + archive_error(a));
    const char* raw_path = archive_entry_pathname_utf8(entry);
    if (!raw_path) raw_path = archive_entry_pathname(entry);
    const std::string path = raw_path ? raw_path : "";
    const std::vector<std::string> parts = split_entry_path(path, shown);
    if (top.empty()) {
      top = parts.front();
    } else if (parts.front() != top) {
      throw UsageError(shown + " has more than one top-level directory ('" + top + "' and '" + parts.front() + "')",
                       "a chart archive holds exactly one directory named after the chart");
    }
    const mode_t type = archive_entry_filetype(entry);
    if (type == AE_IFDIR) continue;
    if (type != AE_IFREG || archive_entry_hardlink(entry) != nullptr) {
      throw UsageError(shown + ": entry '" + path + "' is not a regular file or directory (links are not allowed in charts)");
    }
    if (parts.size() == 1) {
      throw UsageError(shown + ": entry '" + path + "' is not inside a chart directory",
                       "a chart archive holds exactly one directory named after the chart");
    }
    const la_int64_t size = archive_entry_size(entry);
    if (size < 0) throw UsageError(shown + ": entry '" + path + "' has no size");
    unpacked += static_cast<std::uint64_t>(size);
    if (unpacked > k_max_unpacked_size) {
      throw UsageError(shown + " unpacks to more than " + std::to_string(k_max_unpacked_size >> 20) + " MiB");
    }
    std::string rel = parts[1];
    for (std::size_t i = 2; i < parts.size(); ++i) rel += "/" + parts[i];
    ScannedFile file;
    file.entry_path = path;
    file.rel = std::move(rel);
    file.size = static_cast<std::uint64_t>(size);
    file.executable = (archive_entry_perm(entry) & 0111) != 0;
    file.read = [a, &file, &shown] {
      return read_entry_data(a, static_cast<std::size_t>(file.size), shown + ": " + file.entry_path);
    };
    on_file(file);
  }
  if (top.empty()) throw UsageError(shown + " is an empty archive");
  return top;
}

// --- packaging ------------------------------------------------------------------------

// One .helmignore pattern, interpreted as Helm's pkg/ignore/rules.go does: a trailing
// '/' matches directories only; a pattern with a '/' (a leading one is dropped) matches
// the whole relative path, one without matches the base name; globs are those of Go's
// filepath.Match, which fnmatch(FNM_PATHNAME) implements ('*' and '?' never match '/').
struct IgnoreRule {
  std::string glob;
  bool directories_only = false;
  bool whole_path = false;
};

// True when `glob` is well-formed for filepath.Match: brackets closed, no dangling '\'.
bool valid_glob(std::string_view glob) {
  for (std::size_t i = 0; i < glob.size(); ++i) {
    if (glob[i] == '\\') {
      if (++i == glob.size()) return false;
    } else if (glob[i] == '[') {
      std::size_t j = i + 1;
      if (j < glob.size() && (glob[j] == '^' || glob[j] == '!')) ++j;
      if (j < glob.size() && glob[j] == ']') ++j; // a leading ']' is a member
      while (j < glob.size() && glob[j] != ']') {
        if (glob[j] == '\\') ++j;
        ++j;
      }
      if (j >= glob.size()) return false;
      i = j;
    }
  }
  return true;
}

class HelmIgnore {
public:
  // Helm always adds this rule (ignore.AddDefaults): hidden files under templates/.
  HelmIgnore() { m_rules.push_back({.glob = "templates/.?*", .directories_only = false, .whole_path = true}); }

  void parse(const std::string& text, const std::string& shown) {
    std::size_t start = 0;
    int line_number = 0;
    while (start <= text.size()) {
      std::size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      std::string line = text.substr(start, end - start);
      start = end + 1;
      ++line_number;
      const auto first = line.find_first_not_of(" \t\r\f\v");
      if (first == std::string::npos) continue;
      line = line.substr(first, line.find_last_not_of(" \t\r\f\v") - first + 1);
      if (line.front() == '#') continue;
      const std::string where = shown + ":" + std::to_string(line_number) + ": ";
      if (line.front() == '!') {
        throw UsageError(where + "negated pattern '" + line + "' is not supported",
                         "list only what to leave out of the chart; a '!' rule cannot bring files back");
      }
      if (line.find("**") != std::string::npos) {
        throw UsageError(where + "pattern '" + line + "' uses '**', which .helmignore does not support");
      }
      if (!valid_glob(line)) throw UsageError(where + "pattern '" + line + "' is malformed (unclosed '[' or trailing '\\')");
      IgnoreRule rule;
      if (line.back() == '/') {
        rule.directories_only = true;
        line.pop_back();
      }
      if (!line.empty() && line.front() == '/') {
        rule.whole_path = true;
        line.erase(0, 1);
      } else {
        rule.whole_path = line.find('/') != std::string::npos;
      }
      if (line.empty()) continue; // "/" alone: Helm never ignores the chart root
      rule.glob = std::move(line);
      m_rules.push_back(std::move(rule));
    }
  }

  bool ignored(const std::string& rel, bool is_directory) const {
    const std::size_t slash = rel.rfind('/');
    const std::string base = slash == std::string::npos ? rel : rel.substr(slash + 1);
    for (const auto& rule : m_rules) {
      if (rule.directories_only && !is_directory) continue;
      const std::string& subject = rule.whole_path ? rel : base;
      if (::fnmatch(rule.glob.c_str(), subject.c_str(), FNM_PATHNAME) == 0) return true;
    }
    return false;
  }

private:
  std::vector<IgnoreRule> m_rules;
};

struct ChartFile {
  std::string rel;  // relative path with '/' separators
  fs::path path;    // on disk (possibly through a symlink inside the chart)
  bool executable = false;
};

bool is_within(const fs::path& path, const fs::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p) {
    if (p == path.end() || *p != *r) return false;
  }
  return true;
}

class ChartWalker {
public:
  ChartWalker(const fs::path& dir, const HelmIgnore& rules, std::vector<ChartFile>& out)
      : m_dir(dir), m_shown(core::display(dir)), m_rules(rules), m_out(out) {
    std::error_code ec;
    m_root = fs::canonical(dir, ec);
    if (ec) throw UsageError("cannot resolve chart directory " + m_shown + ": " + ec.message());
  }

  void walk() { walk_directory(m_dir, m_root, ""); }

private:
  void walk_directory(const fs::path& dir, const fs::path& canonical, const std::string& prefix) {
    m_stack.push_back(canonical);
    std::vector<fs::directory_entry> entries;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) entries.push_back(*it);
    if (ec) throw core::Error(core::ExitCode::failure, "cannot list " + core::display(dir) + ": " + ec.message());
    for (const auto& entry : entries) {
      const std::string name = entry.path().filename().string();
      const std::string rel = prefix.empty() ? name : prefix + "/" + name;
      visit(entry.path(), rel);
    }
    m_stack.pop_back();
  }

  void visit(const fs::path& path, const std::string& rel) {
    std::error_code ec;
    const fs::file_status link_status = fs::symlink_status(path, ec);
    if (ec) throw core::Error(core::ExitCode::failure, "cannot stat " + core::display(path) + ": " + ec.message());
    fs::path target;
    if (fs::is_symlink(link_status)) {
      target = fs::canonical(path, ec);
      if (ec) {
        if (m_rules.ignored(rel, false)) return;
        throw UsageError("symlink " + rel + " in chart " + m_shown + " points to a missing file",
                         "remove it or list it in .helmignore");
      }
    } else {
      target = m_stack.back() / path.filename();
    }
    const fs::file_status status = fs::status(path, ec);
    if (ec) throw core::Error(core::ExitCode::failure, "cannot stat " + core::display(path) + ": " + ec.message());
    const bool is_directory = fs::is_directory(status);
    if (m_rules.ignored(rel, is_directory)) return;
    if (fs::is_symlink(link_status) && !is_within(target, m_root)) {
      throw UsageError("symlink " + rel + " in chart " + m_shown + " points outside the chart, to " + target.string(),
                       "copy the file into the chart directory or list the link in .helmignore");
    }
    if (is_directory) {
      if (std::find(m_stack.begin(), m_stack.end(), target) != m_stack.end()) {
        throw UsageError("symlink " + rel + " in chart " + m_shown + " makes a loop (it points to " + target.string() + ")");
      }
      walk_directory(path, target, rel);
      return;
    }
    if (!fs::is_regular_file(status)) {
      throw UsageError("cannot package " + rel + " in chart " + m_shown + ": not a regular file or directory");
    }
    const fs::perms perms = status.permissions();
    const bool executable = (perms & (fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec)) != fs::perms::none;
    m_out.push_back({.rel = rel, .path = path, .executable = executable});
  }

  fs::path m_dir;
  std::string m_shown;
  fs::path m_root;
  const HelmIgnore& m_rules;
  std::vector<ChartFile>& m_out;
  std::vector<fs::path> m_stack; // canonical directories being walked, against loops
};

// Collects libarchive's output in memory, refusing to grow past k_max_chart_size.
struct ArchiveOutput {
  std::string bytes;
  bool too_large = false;
};

la_ssize_t write_callback(archive* a, void* client, const void* buffer, size_t length) {
  auto* out = static_cast<ArchiveOutput*>(client);
  if (out->bytes.size() + length > k_max_chart_size) {
    out->too_large = true;
    archive_set_error(a, EFBIG, "chart archive larger than the limit");
    return -1;
  }
  out->bytes.append(static_cast<const char*>(buffer), length);
  return static_cast<la_ssize_t>(length);
}

// Writes chart entries the reproducible way (see package_chart_directory) into memory.
class ChartArchiveWriter {
public:
  ChartArchiveWriter(std::string shown, std::int64_t mtime)
      : m_shown(std::move(shown)), m_mtime(mtime), m_writer(archive_write_new()) {
    if (!m_writer) throw core::Error(core::ExitCode::failure, "archive_write_new failed");
    archive* a = m_writer.get();
    // pax_restricted writes plain ustar headers and adds pax records only for what ustar
    // cannot hold (long paths). The gzip header gets no timestamp (libarchive never writes
    // the original file name), and the last block is not padded, so the same files give
    // the same bytes whenever they are packaged.
    if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK || archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
        archive_write_set_filter_option(a, "gzip", "timestamp", nullptr) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
        archive_write_open(a, &m_output, nullptr, write_callback, nullptr) != ARCHIVE_OK) {
      throw core::Error(core::ExitCode::failure,
                        "cannot set up the archive writer for chart " + m_shown + ": " + archive_error(a));
    }
  }
  ChartArchiveWriter(const ChartArchiveWriter&) = delete; // libarchive's callback points at m_output
  ChartArchiveWriter& operator=(const ChartArchiveWriter&) = delete;

  // One regular file; `entry_path` includes the top directory ("mychart/values.yaml").
  void add(const std::string& entry_path, const std::string& content, bool executable) {
    m_unpacked += content.size();
    if (m_unpacked > k_max_unpacked_size) {
      throw UsageError("chart " + m_shown + " holds more than " + std::to_string(k_max_unpacked_size >> 20) + " MiB of files",
                       "list large files that the chart does not need in .helmignore");
    }
    archive* a = m_writer.get();
    ArchiveEntry entry(archive_entry_new());
    if (!entry) throw core::Error(core::ExitCode::failure, "archive_entry_new failed");
    archive_entry_set_pathname(entry.get(), entry_path.c_str());
    archive_entry_set_filetype(entry.get(), AE_IFREG);
    archive_entry_set_perm(entry.get(), executable ? 0755 : 0644);
    archive_entry_set_size(entry.get(), static_cast<la_int64_t>(content.size()));
    archive_entry_set_mtime(entry.get(), static_cast<time_t>(m_mtime), 0);
    archive_entry_set_uid(entry.get(), 0);
    archive_entry_set_gid(entry.get(), 0);
    if (archive_write_header(a, entry.get()) < ARCHIVE_OK) fail("writing chart entry " + entry_path);
    if (!content.empty() &&
        archive_write_data(a, content.data(), content.size()) != static_cast<la_ssize_t>(content.size())) {
      fail("writing chart entry " + entry_path);
    }
  }

  std::string finish() {
    if (archive_write_close(m_writer.get()) != ARCHIVE_OK) fail("finishing chart archive " + m_shown);
    return std::move(m_output.bytes);
  }

private:
  [[noreturn]] void fail(const std::string& doing) {
    if (m_output.too_large) {
      throw UsageError("chart " + m_shown + " packages to more than " + std::to_string(k_max_chart_size >> 20) + " MiB");
    }
    throw core::Error(core::ExitCode::failure, doing + ": " + archive_error(m_writer.get()));
  }

  std::string m_shown;
  std::int64_t m_mtime;
  std::uint64_t m_unpacked = 0;
  ArchiveOutput m_output;
  const Utf8Locale m_utf8_locale; // before the writer: in force while it writes
  ArchiveWriter m_writer;
};

} // namespace

PackagedChart read_chart_archive(std::string bytes, const std::string& display) {
  PackagedChart chart;
  chart.archive = std::move(bytes);
  std::string chart_yaml;
  bool have_chart_yaml = false;
  const std::string top = scan_chart_archive(chart.archive, display, [&](const ScannedFile& file) {
    if (file.rel != "Chart.yaml") return;
    if (have_chart_yaml) throw UsageError(display + " holds " + file.entry_path + " twice");
    if (file.size > k_max_chart_yaml_size) {
      throw UsageError(display + ": " + file.entry_path + " is larger than " + std::to_string(k_max_chart_yaml_size >> 20) +
                       " MiB");
    }
    chart_yaml = file.read();
    have_chart_yaml = true;
  });
  if (!have_chart_yaml) {
    throw UsageError(display + " has no " + top + "/Chart.yaml", "is it a Helm chart archive? `helm package DIR` writes one");
  }
  chart.metadata = parse_chart_yaml(chart_yaml, display + ": " + top + "/Chart.yaml");
  if (chart.metadata.name != top) {
    throw UsageError(display + ": top directory '" + top + "' does not match the chart name '" + chart.metadata.name +
                     "' in " + top + "/Chart.yaml");
  }
  return chart;
}

PackagedChart read_chart_archive(const fs::path& tgz) {
  return read_chart_archive(read_limited(tgz, k_max_chart_size, "chart archive"), core::display(tgz));
}

std::vector<ArchiveFile> read_chart_files(const std::string& archive, const std::string& display) {
  std::vector<ArchiveFile> files;
  scan_chart_archive(archive, display, [&](const ScannedFile& file) {
    files.push_back(ArchiveFile{.path = file.rel, .data = file.read(), .executable = file.executable});
  });
  return files;
}

ChartMetadata parse_chart_metadata(const std::string& chart_yaml, const std::string& what) {
  if (chart_yaml.size() > k_max_chart_yaml_size) {
    throw UsageError(what + " is larger than " + std::to_string(k_max_chart_yaml_size >> 20) + " MiB");
  }
  return parse_chart_yaml(chart_yaml, what);
}

std::vector<ChartDependency> parse_chart_lock(const std::string& text, const std::string& what) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw UsageError(what + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                         ": YAML syntax error: " + e.msg,
                     "regenerate it with `helm dependency update`");
  }
  if (!root.IsMap()) throw UsageError(what + " is not a YAML map", "regenerate it with `helm dependency update`");
  std::vector<ChartDependency> out;
  const YAML::Node dependencies = root["dependencies"];
  if (!dependencies.IsDefined() || dependencies.IsNull()) return out;
  if (!dependencies.IsSequence()) {
    throw UsageError(what + ":" + std::to_string(dependencies.Mark().line + 1) + ": 'dependencies' must be a list");
  }
  for (const auto& item : dependencies) {
    if (!item.IsMap()) {
      throw UsageError(what + ":" + std::to_string(item.Mark().line + 1) + ": an item of 'dependencies' must be a map");
    }
    out.push_back(ChartDependency{string_field(item, "name", what), string_field(item, "version", what),
                                  string_field(item, "repository", what), {}});
  }
  return out;
}

std::string write_chart_archive(const std::string& name, std::vector<ArchiveFile> files, std::int64_t mtime,
                                const std::string& display) {
  std::sort(files.begin(), files.end(), [](const ArchiveFile& x, const ArchiveFile& y) { return x.path < y.path; });
  for (std::size_t i = 1; i < files.size(); ++i) {
    if (files[i].path == files[i - 1].path) throw UsageError("chart " + display + " would hold " + files[i].path + " twice");
  }
  ChartArchiveWriter writer(display, mtime);
  for (const auto& file : files) {
    split_entry_path(file.path, display); // the same path rules as for reading
    writer.add(name + "/" + file.path, file.data, file.executable);
  }
  return writer.finish();
}

PackagedChart package_chart_directory(const fs::path& dir, std::int64_t mtime) {
  const std::string shown = core::display(dir);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw UsageError(shown + " is not a directory");
  if (!fs::is_regular_file(dir / "Chart.yaml", ec)) throw UsageError(shown + " is not a chart directory (no Chart.yaml)");

  PackagedChart chart;
  const fs::path chart_yaml_path = dir / "Chart.yaml";
  chart.metadata = parse_chart_yaml(read_limited(chart_yaml_path, k_max_chart_yaml_size, "Chart.yaml"),
                                    core::display(chart_yaml_path));

  HelmIgnore rules;
  const fs::path ignore_path = dir / ".helmignore";
  if (fs::is_regular_file(ignore_path, ec)) {
    rules.parse(read_limited(ignore_path, 1u << 20, ".helmignore"), core::display(ignore_path));
  }

  std::vector<ChartFile> files;
  ChartWalker(dir, rules, files).walk();
  std::sort(files.begin(), files.end(), [](const ChartFile& x, const ChartFile& y) { return x.rel < y.rel; });
  if (std::none_of(files.begin(), files.end(), [](const ChartFile& f) { return f.rel == "Chart.yaml"; })) {
    throw UsageError(shown + "/.helmignore excludes Chart.yaml", "a chart cannot be packaged without its Chart.yaml");
  }

  ChartArchiveWriter writer(shown, mtime);
  for (const auto& file : files) {
    writer.add(chart.metadata.name + "/" + file.rel, read_limited(file.path, k_max_chart_size, "file"), file.executable);
  }
  chart.archive = writer.finish();
  return chart;
}

PackagedChart load_chart(const fs::path& path, std::int64_t mtime) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (!fs::exists(status)) throw UsageError("chart " + core::display(path) + " does not exist");
  if (fs::is_directory(status)) return package_chart_directory(path, mtime);
  return read_chart_archive(path);
}

} // namespace ferry::chart
