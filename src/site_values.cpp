// Site values: Helm's --set syntax and typing, --values and --reuse-values per release,
// required keys, the overlay's overrides, and private values files for helm.
// SPDX-License-Identifier: Apache-2.0
#include "site_values.hpp"

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/process.hpp"
#include "values/helm_values.hpp"
#include "values/tree.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <map>
#include <string_view>
#include <unordered_set>

namespace ferry {

namespace fs = std::filesystem;
using core::UsageError;
using values::Node;
using values::Path;
using values::PathSegment;

namespace {

// Helm's strvals refuses list indexes above this (pkg/strvals/parser.go MaxIndex): a
// typo must not allocate a huge list.
constexpr std::size_t k_max_index = 65536;
// helm get values answers within seconds from a healthy cluster.
constexpr std::chrono::minutes k_helm_timeout{2};

// One KEY=VALUE of a --set (or --set-file, or a manifest `set:` entry).
struct Assignment {
  Path path;
  std::string key; // as written, for messages and reports
  Node value;      // typed; for --set-file, the file's path until it is read
};

enum class SetKind { value, file };

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

Node plain(std::string text) {
  Node n;
  n.kind = Node::Kind::scalar;
  n.text = std::move(text);
  return n;
}

// helm --set's typing (strvals typedVal): true/false and null in any case, "0", and
// integers Go's strconv.ParseInt reads (sign allowed, no leading zero, within int64);
// everything else — "1.5", "007", "1e3", "" — is a string.
Node typed(std::string text) {
  if (equals_ignoring_case(text, "true")) return plain("true");
  if (equals_ignoring_case(text, "false")) return plain("false");
  if (equals_ignoring_case(text, "null")) return Node{};
  if (text == "0") return plain("0");
  if (!text.empty() && text.front() != '0') {
    std::string_view digits = text;
    if (digits.front() == '+') digits.remove_prefix(1);
    std::int64_t number = 0;
    const char* end = digits.data() + digits.size();
    // from_chars takes a '-' but not a '+', and nothing else: exactly ParseInt's base 10.
    if (!digits.empty() && digits.front() != '+') {
      const auto [ptr, ec] = std::from_chars(digits.data(), end, number);
      if (ec == std::errc() && ptr == end) return plain(std::to_string(number));
    }
  }
  return Node::string(std::move(text));
}

// Helm's --set grammar (pkg/strvals): KEY=VALUE pairs separated by ','; KEY is names
// separated by '.', each optionally followed by [N] list indexes; VALUE runs to the next
// ',' or is a list {a,b}; a backslash takes the next character literally everywhere.
class SetParser {
public:
  // `flag` ("--set") and `prefix` ("aistor:") start every message.
  SetParser(std::string_view text, SetKind kind, std::string flag, std::string prefix = {})
      : m_text(text), m_kind(kind), m_flag(std::move(flag)), m_prefix(std::move(prefix)) {}

  std::vector<Assignment> parse() {
    std::vector<Assignment> out;
    while (m_pos < m_text.size()) {
      out.push_back(parse_one(out.empty() ? std::string() : out.back().key));
    }
    return out;
  }

private:
  [[noreturn]] void fail(const std::string& key, const std::string& problem) const {
    throw UsageError(m_flag + " " + m_prefix + (key.empty() ? "…" : key) + ": " + problem,
                     "write KEY=VALUE pairs as helm --set does: a.b=1,list[0].name=x,tags={a,b}");
  }

  // A key that cannot be read. After a first pair it may well be the rest of a value
  // that held a ',' (helm splits there): then nothing of it is shown.
  [[noreturn]] void bad_key(const std::string& previous, const std::string& key, const std::string& problem) const {
    if (previous.empty()) fail(key, problem);
    throw UsageError(m_flag + " " + m_prefix + previous + "=…: the text after a ',' is not KEY=VALUE (" + problem +
                         ")",
                     "helm splits --set at commas: escape a comma inside a value as '\\,', or give the value with "
                     "--set-file or --values");
  }

  // The text up to (not including) an unescaped character of `stops`, or to the end.
  std::string take_until(std::string_view stops) {
    std::string out;
    while (m_pos < m_text.size()) {
      const char c = m_text[m_pos];
      if (c == '\\' && m_pos + 1 < m_text.size()) {
        out += m_text[m_pos + 1];
        m_pos += 2;
        continue;
      }
      if (stops.find(c) != std::string_view::npos) break;
      out += c;
      ++m_pos;
    }
    return out;
  }

  // The key as written so far (for messages: the value is never shown).
  std::string key_so_far(std::size_t start) const { return std::string(m_text.substr(start, m_pos - start)); }

  Assignment parse_one(const std::string& previous) {
    Assignment a;
    const std::size_t start = m_pos;
    std::string name = take_until(".[=,");
    if (name.empty()) bad_key(previous, key_so_far(start), "a key is empty");
    a.path.push_back(PathSegment{name, 0, false});
    for (;;) {
      if (m_pos >= m_text.size()) bad_key(previous, key_so_far(start), "no '=VALUE' after the key");
      const char c = m_text[m_pos++];
      if (c == '=') break;
      if (c == ',') {
        --m_pos;
        bad_key(previous, key_so_far(start), "no '=VALUE' after the key");
      }
      if (c == '.') {
        name = take_until(".[=,");
        if (name.empty()) bad_key(previous, key_so_far(start), "a part of the key is empty");
        a.path.push_back(PathSegment{name, 0, false});
        continue;
      }
      // c == '['
      const std::string index = take_until("]");
      if (m_pos >= m_text.size()) bad_key(previous, key_so_far(start), "a list index is not closed with ']'");
      ++m_pos;
      std::size_t value = 0;
      const char* end = index.data() + index.size();
      const auto [ptr, ec] = std::from_chars(index.data(), end, value);
      if (index.empty() || ec != std::errc() || ptr != end) {
        bad_key(previous, key_so_far(start), "a list index is not a non-negative number");
      }
      if (value > k_max_index) {
        bad_key(previous, key_so_far(start), "a list index is above helm's limit of " + std::to_string(k_max_index));
      }
      a.path.push_back(PathSegment{{}, value, true});
    }
    a.key = std::string(m_text.substr(start, m_pos - 1 - start));
    if (m_kind == SetKind::value && m_pos < m_text.size() && m_text[m_pos] == '{') {
      ++m_pos;
      a.value.kind = Node::Kind::sequence;
      if (m_pos < m_text.size() && m_text[m_pos] == '}') {
        ++m_pos;
      } else {
        for (;;) {
          std::string item = take_until(",}");
          if (m_pos >= m_text.size()) fail(a.key, "a list value {…} is not closed with '}'");
          a.value.items.push_back(typed(std::move(item)));
          if (m_text[m_pos++] == '}') break;
        }
      }
      if (m_pos < m_text.size() && m_text[m_pos] != ',') fail(a.key, "text follows the '}' of a list value");
    } else {
      std::string text = take_until(",");
      a.value = m_kind == SetKind::value ? typed(std::move(text)) : Node::string(std::move(text));
    }
    if (m_pos < m_text.size()) ++m_pos; // the ','
    return a;
  }

  std::string_view m_text;
  SetKind m_kind;
  std::string m_flag;
  std::string m_prefix;
  std::size_t m_pos = 0;
};

// Sets `path` in `root` as helm's strvals does: missing maps and lists are made, a value
// of the wrong kind on the way is replaced, a list is padded with nulls up to the index.
void assign(Node& root, const Path& path, Node value) {
  Node* at = &root;
  for (const PathSegment& segment : path) {
    if (segment.is_index) {
      if (at->kind != Node::Kind::sequence) {
        *at = Node{};
        at->kind = Node::Kind::sequence;
      }
      if (at->items.size() <= segment.index) at->items.resize(segment.index + 1);
      at = &at->items[segment.index];
    } else {
      if (!at->is_map()) *at = Node::map();
      Node* next = at->find(segment.key);
      at = next ? next : &at->set(segment.key, Node{});
    }
  }
  *at = std::move(value);
}

const Node* lookup(const Node& root, const Path& path) {
  const Node* at = &root;
  for (const PathSegment& segment : path) {
    if (segment.is_index) {
      if (at->kind != Node::Kind::sequence || segment.index >= at->items.size()) return nullptr;
      at = &at->items[segment.index];
    } else {
      if (!at->is_map()) return nullptr;
      at = at->find(segment.key);
      if (!at) return nullptr;
    }
  }
  return at;
}

// Applies `assignments` to `root` in order and returns a values file with just the keys
// they set (a later assignment may have replaced an earlier one's parent: only what
// still exists is written).
std::string apply_assignments(Node& root, const std::vector<Assignment>& assignments) {
  for (const Assignment& a : assignments) assign(root, a.path, a.value);
  std::unordered_set<const Node*> changed;
  for (const Assignment& a : assignments) {
    if (const Node* node = lookup(root, a.path)) changed.insert(node);
  }
  return values::emit_overlay(root, changed);
}

// The one key path of a manifest `set:` entry (its key, in the same syntax).
Path key_path(const std::string& key, const std::string& flag) {
  const std::string text = key + "=";
  std::vector<Assignment> parsed = SetParser(text, SetKind::file, flag).parse();
  if (parsed.size() != 1) {
    throw UsageError(flag + ": '" + key + "' is not a single key", "escape a ',' in a key as '\\,'");
  }
  return std::move(parsed.front().path);
}

bool is_empty_value(const Node* node) {
  if (!node || node->is_null()) return true;
  if (node->is_scalar()) return node->text.empty();
  return node->items.empty() && node->entries.empty();
}

std::string join(const std::vector<std::string>& items, const std::string& separator = ", ") {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : separator) + item;
  return out;
}

// The part of a flag's argument that may be shown: up to the first '=' (REL:KEY, never
// the value).
std::string shown(const std::string& flag, const std::string& text) {
  const std::size_t eq = text.find('=');
  return flag + " " + (eq == std::string::npos ? text : text.substr(0, eq) + "=…");
}

class Releases {
public:
  Releases(std::vector<SiteValues>& sites, std::string what) : m_sites(sites), m_what(std::move(what)) {
    for (const auto& s : sites) m_names.push_back(s.release);
  }

  SiteValues& find(const std::string& release, const std::string& flag_text, const std::string& usage) {
    for (auto& s : m_sites) {
      if (s.release == release) return s;
    }
    const std::string near = core::suggest(release, m_names);
    throw UsageError(flag_text + ": '" + release + "' is not a release of " + m_what,
                     (near.empty() ? std::string() : "did you mean '" + near + "'? ") + "write " + usage +
                         "; the releases are: " + (m_names.empty() ? "(none)" : join(m_names)));
  }

  [[noreturn]] void no_release(const std::string& flag_text, const std::string& usage) const {
    throw UsageError(flag_text + " names no release",
                     "write " + usage + "; the releases of " + m_what + " are: " +
                         (m_names.empty() ? "(none)" : join(m_names)));
  }

private:
  std::vector<SiteValues>& m_sites;
  std::string m_what;
  std::vector<std::string> m_names;
};

// `helm get values REL -n NS -o yaml` (the user-supplied values helm --reuse-values
// starts from); nullopt for a release that does not exist.
std::optional<std::string> live_values(const SiteValues& s, const KubeTools& tools, core::LogSink& log) {
  if (!core::find_program(tools.helm)) {
    throw UsageError("helm not found ('" + tools.helm + "'), needed by --reuse-values to read the live values",
                     "install helm on this host or give its path with --helm");
  }
  std::vector<std::string> argv = {tools.helm, "get", "values", s.release, "-n", s.namespace_name, "-o", "yaml"};
  if (!tools.kubeconfig.empty()) argv.insert(argv.end(), {"--kubeconfig", tools.kubeconfig});
  if (!tools.kube_context.empty()) argv.insert(argv.end(), {"--kube-context", tools.kube_context});
  log.debug("running: " + shell_quote(argv));
  core::ProcessOptions options;
  options.timeout = k_helm_timeout;
  options.output_limit = k_max_values_file_size + 1;
  const core::ProcessResult got = core::run_process(argv, options);
  if (got.exit_code == 0 && !got.timed_out) {
    if (got.out_truncated) {
      throw core::Error(core::ExitCode::upgrade, "the live values of release " + s.release + " are larger than " +
                                                     std::to_string(k_max_values_file_size >> 20) + " MiB");
    }
    return got.out;
  }
  if (got.err.find("release: not found") != std::string::npos) return std::nullopt;
  // Standard error only: standard output would hold the values themselves.
  std::string said = got.err;
  while (!said.empty() && (said.back() == '\n' || said.back() == '\r')) said.pop_back();
  if (said.size() > 2000) said = "…" + said.substr(said.size() - 2000);
  const std::string ended = got.timed_out ? " did not finish in time" : " exited with " + std::to_string(got.exit_code);
  throw core::Error(core::ExitCode::upgrade,
                    "cannot read the live values of release " + s.release + " (namespace " + s.namespace_name + "): " +
                        shell_quote(argv) + ended + (said.empty() ? std::string() : ":\n  " + said),
                    "check --kubeconfig and --kube-context; or leave out --reuse-values and give the values with "
                    "--values");
}

Node parse_document(const std::string& text, const std::string& what) { return values::parse_values(text, what); }

// The site's own values (live, files, --set) merged as helm merges -f files.
Node site_tree(const SiteValues& s) {
  Node tree = Node::map();
  if (s.live_yaml) values::merge_values_files(tree, parse_document(*s.live_yaml, "the live values of " + s.release));
  for (std::size_t k = 0; k < s.file_yamls.size(); ++k) {
    values::merge_values_files(tree, parse_document(s.file_yamls[k], core::display(s.files[k])));
  }
  values::merge_values_files(tree, parse_document(s.set_yaml, "--set values of " + s.release));
  return tree;
}

// Every node of `node` by its path ("a.b[0].c"), the root left out.
void index_nodes(const Node& node, Path& path, std::map<std::string, const Node*>& out) {
  if (!path.empty()) out.emplace(values::path_string(path), &node);
  if (node.is_map()) {
    for (const auto& [key, value] : node.entries) {
      path.push_back(PathSegment{key, 0, false});
      index_nodes(value, path, out);
      path.pop_back();
    }
  } else if (node.kind == Node::Kind::sequence) {
    for (std::size_t k = 0; k < node.items.size(); ++k) {
      path.push_back(PathSegment{{}, k, true});
      index_nodes(node.items[k], path, out);
      path.pop_back();
    }
  }
}

std::map<std::string, const Node*> index_nodes(const Node& root) {
  std::map<std::string, const Node*> out;
  Path path;
  index_nodes(root, path, out);
  return out;
}

std::string safe_file_name(std::string name) {
  for (char& c : name) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '.' && c != '-' && c != '_') c = '_';
  }
  return name;
}

void write_private(const fs::path& path, const std::string& text) { core::write_file_atomic(path, text, 0600); }

} // namespace

std::vector<std::string> SiteValues::documents() const {
  std::vector<std::string> docs = {bundle_set_yaml};
  if (live_yaml) docs.push_back(*live_yaml);
  docs.insert(docs.end(), file_yamls.begin(), file_yamls.end());
  docs.push_back(set_yaml);
  return docs;
}

std::vector<std::string> SiteValues::names() const {
  std::vector<std::string> out = {"the set: entries of release " + release};
  if (live_yaml) out.push_back("the live values of release " + release);
  for (const auto& f : files) out.push_back(core::display(f));
  out.push_back("--set/--set-file values of release " + release);
  return out;
}

std::string helm_set(const std::string& base_yaml, const std::string& assignments, const std::string& flag) {
  Node root = values::parse_values(base_yaml, "the values below " + flag);
  return apply_assignments(root, SetParser(assignments, SetKind::value, flag).parse());
}

std::vector<SiteValues> resolve_site_values(const std::vector<BundleRelease>& releases, const SiteValueOptions& options,
                                            const KubeTools& tools, LiveValues live, const std::string& what,
                                            core::LogSink& log) {
  std::vector<SiteValues> sites;
  for (const auto& r : releases) {
    SiteValues s;
    s.release = r.name;
    s.namespace_name = r.namespace_name;
    for (const auto& [key, value] : r.set) {
      if (value.empty()) s.required.push_back(key);
    }
    sites.push_back(std::move(s));
  }
  Releases known(sites, what);

  // --values REL=FILE
  for (const auto& text : options.values) {
    const std::size_t eq = text.find('=');
    if (eq == std::string::npos || eq == 0) known.no_release("--values " + text, "--values RELEASE=FILE");
    SiteValues& s = known.find(text.substr(0, eq), "--values " + text, "--values RELEASE=FILE");
    const fs::path file = text.substr(eq + 1);
    if (file.empty()) throw UsageError("--values " + text + " names no file", "write --values RELEASE=FILE");
    std::string content = core::with_context("reading values file " + core::display(file) + " (--values " + text + ")",
                                             [&] { return core::read_file(file, k_max_values_file_size); });
    (void)parse_document(content, core::display(file)); // a map, or a UsageError naming FILE:LINE
    s.files.push_back(file);
    s.file_yamls.push_back(std::move(content));
  }

  // --set / --set-file REL:KEY=…, kept per release until the values below them are known.
  std::map<std::string, std::vector<Assignment>> sets;
  std::map<std::string, std::vector<Assignment>> set_files;
  auto split = [&](const std::string& flag, const std::string& text, SetKind kind) {
    const std::string usage = flag + (kind == SetKind::value ? " RELEASE:KEY=VALUE" : " RELEASE:KEY=FILE");
    const std::size_t colon = text.find(':');
    const std::size_t eq = text.find('=');
    if (colon == std::string::npos || colon == 0 || (eq != std::string::npos && eq < colon)) {
      known.no_release(shown(flag, text), usage);
    }
    SiteValues& s = known.find(text.substr(0, colon), shown(flag, text), usage);
    std::vector<Assignment> parsed =
        SetParser(std::string_view(text).substr(colon + 1), kind, flag, s.release + ":").parse();
    if (parsed.empty()) throw UsageError(shown(flag, text) + " sets nothing", "write " + usage);
    auto& into = kind == SetKind::value ? sets[s.release] : set_files[s.release];
    for (auto& a : parsed) {
      if (kind == SetKind::file) {
        const fs::path file = a.value.text;
        if (file.empty()) throw UsageError(flag + " " + s.release + ":" + a.key + " names no file", "write " + usage);
        a.value = Node::string(core::with_context(
            "reading " + core::display(file) + " for " + flag + " " + s.release + ":" + a.key,
            [&] { return core::read_file(file, k_max_values_file_size); }));
        s.set_file_keys.push_back(a.key);
      } else {
        s.set_keys.push_back(a.key);
      }
      into.push_back(std::move(a));
    }
  };
  for (const auto& text : options.set) split("--set", text, SetKind::value);
  for (const auto& text : options.set_file) split("--set-file", text, SetKind::file);

  for (std::size_t index = 0; index < releases.size(); ++index) {
    const BundleRelease& r = releases[index];
    SiteValues& s = sites[index];
    // What helm holds before --set: the -f files merged in order.
    Node below = Node::map();
    for (const auto& v : r.values) {
      const std::string name = v.file + " (release " + r.name + " in " + what + ")";
      values::merge_values_files(below, parse_document(v.content, name));
    }
    std::vector<Assignment> bundle_set;
    for (const auto& [key, value] : r.set) {
      if (value.empty()) continue;
      const std::string flag = "set: of release " + r.name;
      bundle_set.push_back(Assignment{key_path(key, flag), key, typed(value)});
    }
    if (!bundle_set.empty()) s.bundle_set_yaml = apply_assignments(below, bundle_set);

    if (options.reuse_values) {
      if (live == LiveValues::skip) {
        s.live_skipped = true;
      } else {
        s.live_yaml = live_values(s, tools, log);
        if (s.live_yaml) {
          Node doc = parse_document(*s.live_yaml, "the live values of release " + r.name);
          if (doc.entries.empty()) s.live_yaml = "{}\n"; // `helm get values` prints "null" for none
          values::merge_values_files(below, doc);
          log.info(r.name + ": starting from the live release's values (--reuse-values)");
        } else {
          log.info(r.name + ": not installed yet; no live values to reuse");
        }
      }
    }
    for (std::size_t k = 0; k < s.file_yamls.size(); ++k) {
      values::merge_values_files(below, parse_document(s.file_yamls[k], core::display(s.files[k])));
    }
    // helm applies --set, then --set-file (pkg/cli/values MergeValues).
    std::vector<Assignment> site_set = std::move(sets[r.name]);
    for (auto& a : set_files[r.name]) site_set.push_back(std::move(a));
    if (!site_set.empty()) s.set_yaml = apply_assignments(below, site_set);

    const Node site = site_tree(s);
    for (const auto& key : s.required) {
      if (is_empty_value(lookup(site, key_path(key, "set: of release " + r.name)))) s.missing.push_back(key);
    }
  }
  return sites;
}

void require_site_values(const std::vector<SiteValues>& sites, core::LogSink& log) {
  std::string lines;
  std::string example;
  for (const auto& s : sites) {
    if (s.missing.empty()) continue;
    if (s.live_skipped) {
      log.warning(s.release + ": required " + (s.missing.size() == 1 ? "key " : "keys ") + join(s.missing) +
                  " must come from the live release's values (--reuse-values; not read with --plan)");
      continue;
    }
    lines += "\n  release " + s.release + " (namespace " + s.namespace_name + "): " + join(s.missing);
    if (example.empty()) example = "--set " + s.release + ":" + s.missing.front() + "=…";
  }
  if (lines.empty()) return;
  throw UsageError("required site values are missing (nothing was pushed or changed):" + lines,
                   "give each with --set RELEASE:KEY=VALUE, --set-file RELEASE:KEY=FILE or --values RELEASE=FILE "
                   "(or --reuse-values to keep the live release's), e.g. " + example);
}

std::vector<OverlayOverride> overlay_overrides(const SiteValues& site, const values::Result& overlay) {
  std::vector<OverlayOverride> out;
  const Node tree = site_tree(site);
  const auto nodes = index_nodes(tree);
  for (const auto& change : overlay.changes) {
    const auto found = nodes.find(change.path);
    if (found == nodes.end()) continue;
    const Node& node = *found->second;
    std::string shown_value = node.is_null() ? "null" : node.is_map() ? "(a map)"
                              : node.kind == Node::Kind::sequence ? "(a list)" : node.text;
    if (node.is_scalar() && node.text == change.new_value) continue;
    out.push_back({change.path, std::move(shown_value), change.new_value});
  }
  return out;
}

std::set<std::string> site_paths(const SiteValues& site) {
  std::set<std::string> out;
  for (const auto& entry : index_nodes(site_tree(site))) out.insert(entry.first);
  return out;
}

std::vector<fs::path> write_release_values(const BundleRelease& release, const SiteValues& site,
                                           const std::string& overlay_yaml, const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || ::chmod(dir.c_str(), 0700) != 0) {
    throw core::Error(core::ExitCode::failure, "cannot create the private directory " + core::display(dir) +
                                                   (ec ? ": " + ec.message() : std::string()));
  }
  std::vector<fs::path> files;
  auto add = [&](const std::string& name, const std::string& text) {
    if (text.empty() || text == "{}\n") return;
    files.push_back(dir / name);
    write_private(files.back(), text);
  };
  for (std::size_t k = 0; k < release.values.size(); ++k) {
    add("bundle-" + std::to_string(k + 1) + "-" + safe_file_name(fs::path(release.values[k].file).filename().string()),
        release.values[k].content);
  }
  add("bundle-set.yaml", site.bundle_set_yaml);
  if (site.live_yaml) add("live-values.yaml", *site.live_yaml);
  for (const auto& f : site.files) files.push_back(fs::absolute(f));
  add("site-set.yaml", site.set_yaml);
  add("overlay.yaml", overlay_yaml);
  return files;
}

} // namespace ferry
