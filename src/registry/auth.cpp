// Challenge parsing, credential lookup (files and docker-credential helpers), token
// scopes and cache, and redaction.
// SPDX-License-Identifier: Apache-2.0
#include "registry/auth.hpp"

#include "core/encoding.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/process.hpp"
#include "core/secret.hpp"
#include "registry/http.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>


namespace ferry::registry {

namespace {

using nlohmann::json;

// --- WWW-Authenticate (RFC 7235 §2.1, §4.1; list syntax of RFC 7230 §7) ---

bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token68_char(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("-._~+/").find(c) != std::string_view::npos;
}

class ChallengeParser {
public:
  explicit ChallengeParser(std::string_view text) : m_text(text) {}

  std::optional<std::vector<Challenge>> parse() {
    std::vector<Challenge> challenges;
    for (;;) {
      skip_separators(); // empty list elements are allowed (RFC 7230 §7)
      if (at_end()) break;
      Challenge challenge;
      const std::string_view scheme = token();
      if (scheme.empty()) return std::nullopt;
      challenge.scheme = lower(scheme);
      if (at_end() || peek() == ',') {
        challenges.push_back(std::move(challenge));
        continue;
      }
      if (peek() != ' ' && peek() != '\t') return std::nullopt; // 1*SP after the scheme
      skip_ows();
      if (at_end() || peek() == ',') {
        challenges.push_back(std::move(challenge));
        continue;
      }
      if (!next_is_param()) {
        // token68: only where no '=' or a padding run of two or more follows, so that
        // `name=` (a parameter without a value) stays malformed.
        const std::size_t start = m_pos;
        while (!at_end() && is_token68_char(peek())) ++m_pos;
        const std::size_t chars_end = m_pos;
        while (!at_end() && peek() == '=') ++m_pos;
        const std::size_t padding = m_pos - chars_end;
        if (chars_end == start || padding == 1) return std::nullopt;
        challenge.token68 = std::string(m_text.substr(start, m_pos - start));
        skip_ows();
        if (!at_end() && peek() != ',') return std::nullopt;
        challenges.push_back(std::move(challenge));
        continue;
      }
      // auth-param *( OWS "," OWS auth-param ), until the next element is a new scheme
      for (;;) {
        std::string name = lower(token());
        skip_ows();
        if (name.empty() || at_end() || peek() != '=') return std::nullopt;
        ++m_pos;
        skip_ows();
        std::optional<std::string> value = param_value();
        if (!value) return std::nullopt;
        if (!challenge.params.emplace(std::move(name), std::move(*value)).second) return std::nullopt;
        skip_ows();
        if (at_end()) break;
        if (peek() != ',') return std::nullopt; // text between parameters without a comma
        skip_separators();
        if (at_end() || !next_is_param()) break;
      }
      challenges.push_back(std::move(challenge));
    }
    if (challenges.empty()) return std::nullopt;
    return challenges;
  }

private:
  bool at_end() const { return m_pos >= m_text.size(); }
  char peek() const { return m_text[m_pos]; }
  void skip_ows() {
    while (!at_end() && (peek() == ' ' || peek() == '\t')) ++m_pos;
  }
  void skip_separators() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == ',')) ++m_pos;
  }
  std::string_view token() {
    const std::size_t start = m_pos;
    while (!at_end() && is_tchar(peek())) ++m_pos;
    return m_text.substr(start, m_pos - start);
  }
  // Whether `token BWS "=" BWS` (and not "==", a token68's padding) comes next.
  bool next_is_param() {
    const std::size_t saved = m_pos;
    const bool has_name = !token().empty();
    skip_ows();
    bool result = has_name && !at_end() && peek() == '=';
    if (result) {
      ++m_pos;
      result = at_end() || peek() != '=';
    }
    m_pos = saved;
    return result;
  }
  std::optional<std::string> param_value() {
    if (at_end()) return std::nullopt;
    if (peek() != '"') {
      const std::string_view value = token();
      if (value.empty()) return std::nullopt;
      return std::string(value);
    }
    ++m_pos;
    std::string value;
    while (!at_end()) {
      const char c = m_text[m_pos++];
      if (c == '"') return value;
      if (c == '\\') {
        if (at_end()) return std::nullopt;
        value += m_text[m_pos++];
      } else {
        value += c;
      }
    }
    return std::nullopt; // unterminated quoted string
  }

  std::string_view m_text;
  std::size_t m_pos = 0;
};

// --- credentials files ---

std::string getenv_or_empty(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

// Docker Hub answers to several names; its credentials are filed under any of them.
bool is_docker_hub(std::string_view host) {
  return host == "docker.io" || host == "index.docker.io" || host == "registry-1.docker.io";
}

// The registry host a key of `auths` / `credHelpers` names, or an empty string when the
// key names something narrower (podman's "host/namespace" keys): "https://host/v1/" ->
// "host", "Host" -> "host", docker.io's aliases -> "docker.io".
std::string key_host(std::string_view key) {
  std::string text = lower(key);
  bool had_scheme = false;
  for (std::string_view scheme : {"https://", "http://"}) {
    if (text.rfind(scheme, 0) == 0) {
      text.erase(0, scheme.size());
      had_scheme = true;
    }
  }
  const std::size_t slash = text.find('/');
  if (slash != std::string::npos) {
    if (!had_scheme) return {};
    text.resize(slash);
  }
  return is_docker_hub(text) ? "docker.io" : text;
}

std::string normal_host(std::string_view host) {
  const std::string h = lower(host);
  return is_docker_hub(h) ? "docker.io" : h;
}

// What `docker login` files a registry under, and what helpers are asked for.
std::string server_url(std::string_view host) {
  return normal_host(host) == "docker.io" ? "https://index.docker.io/v1/" : std::string(host);
}

// The value for `host` in JSON object `map`: an exact key first, then any equivalent key.
const json* lookup(const json& map, std::string_view host) {
  if (auto it = map.find(std::string(host)); it != map.end()) return &*it;
  const std::string wanted = normal_host(host);
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (key_host(it.key()) == wanted) return &*it;
  }
  return nullptr;
}

std::string string_field(const json& object, const char* name, const std::filesystem::path& file,
                         const std::string& where) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return {};
  if (!it->is_string()) {
    throw core::UsageError("credentials file " + core::display(file) + ": " + where + "." + name + " is not a string",
                           "fix the file, or pass --username and --password-stdin");
  }
  return it->get<std::string>();
}

std::optional<Credentials> credentials_from_entry(const json& entry, const std::filesystem::path& file,
                                                  const std::string& key) {
  const std::string where = "auths.\"" + key + "\"";
  if (!entry.is_object()) {
    throw core::UsageError("credentials file " + core::display(file) + ": " + where + " is not an object",
                           "fix the file, or pass --username and --password-stdin");
  }
  Credentials credentials;
  const std::string auth = string_field(entry, "auth", file, where);
  if (!auth.empty()) {
    std::optional<std::string> decoded = core::base64_decode(auth);
    const std::size_t colon = decoded ? decoded->find(':') : std::string::npos;
    if (colon == std::string::npos) {
      throw core::UsageError(
          "credentials file " + core::display(file) + ": " + where + ".auth is not the base64 of user:password",
          "log in again (`docker login` or `podman login`), or pass --username and --password-stdin");
    }
    credentials.username = decoded->substr(0, colon);
    credentials.password = decoded->substr(colon + 1);
  }
  if (const std::string user = string_field(entry, "username", file, where); !user.empty()) credentials.username = user;
  if (const std::string pass = string_field(entry, "password", file, where); !pass.empty()) credentials.password = pass;
  credentials.identity_token = string_field(entry, "identitytoken", file, where);
  if (!credentials.identity_token.empty()) credentials.password.clear(); // the token flow wins, as in docker
  if (credentials.identity_token.empty() && (credentials.username.empty() || credentials.password.empty())) {
    return std::nullopt; // e.g. credsStore placeholders `{}`
  }
  return credentials;
}

// --- docker-credential helpers ---

std::string first_line(std::string_view text) {
  const std::size_t start = text.find_first_not_of(" \t\r\n");
  if (start == std::string_view::npos) return {};
  text.remove_prefix(start);
  std::string line(text.substr(0, text.find_first_of("\r\n")));
  if (line.size() > 200) line = line.substr(0, 200) + "…";
  return line;
}

std::optional<Credentials> credentials_from_helper(const std::string& name, std::string_view host,
                                                   const AuthEnvironment& env, const std::filesystem::path& file,
                                                   core::LogSink& log) {
  if (name.empty() || name.find('/') != std::string::npos) {
    throw core::UsageError("credentials file " + core::display(file) + " names an invalid credential helper \"" + name +
                           "\"");
  }
  const std::string program_name = "docker-credential-" + name;
  const std::optional<std::filesystem::path> program = core::find_program(program_name, env.path);
  if (!program) {
    log.warning("credential helper " + program_name + " (named in " + core::display(file) +
                ") is not on PATH; going on without credentials for " + std::string(host));
    return std::nullopt;
  }
  const std::string server = server_url(host);
  core::ProcessOptions run_options;
  run_options.input = server;
  run_options.output_limit = 1u << 20;
  run_options.timeout = std::chrono::seconds(60);
  const core::ProcessResult run = core::run_process({program->string(), "get"}, run_options);
  if (run.exit_code != 0) {
    // docker-credential-helpers print their errors on stdout.
    if (lower(run.out + run.err).find("credentials not found") != std::string::npos) {
      log.debug(program_name + " has no credentials for " + server);
      return std::nullopt;
    }
    std::string why = first_line(run.out);
    if (why.empty()) why = first_line(run.err);
    if (why.empty()) {
      why = run.timed_out ? "no answer within 60 s"
            : run.exit_code > 128 ? "killed by signal " + std::to_string(run.exit_code - 128)
                                  : "exit status " + std::to_string(run.exit_code);
    }
    throw core::RegistryError("credential helper " + program_name + " failed for " + server + ": " + why,
                              "run `echo " + server + " | " + program_name +
                                  " get` to see why, or pass --username and --password-stdin");
  }
  json answer;
  try {
    answer = json::parse(run.out);
  } catch (const json::exception&) {
    answer = nullptr;
  }
  auto field = [&](const char* key) -> std::string {
    if (!answer.is_object()) return {};
    auto it = answer.find(key);
    return it != answer.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (!answer.is_object()) {
    // Never quote the output: it may hold the secret.
    throw core::RegistryError(
        "credential helper " + program_name + " printed an unreadable answer for " + server,
        "it must print {\"Username\": …, \"Secret\": …}; pass --username and --password-stdin instead");
  }
  Credentials credentials;
  const std::string user = field("Username");
  const std::string secret = field("Secret");
  if (secret.empty()) return std::nullopt;
  if (user == "<token>") {
    credentials.identity_token = secret;
  } else {
    credentials.username = user;
    credentials.password = secret;
  }
  return credentials;
}

// Whether an `auths` entry of the file holds a password, an auth string or an identity
// token; a file that only names credential helpers (credsStore, credHelpers) holds none.
bool holds_secret(const json& doc) {
  auto auths = doc.find("auths");
  if (auths == doc.end() || !auths->is_object()) return false;
  for (const json& entry : *auths) {
    if (!entry.is_object()) continue;
    for (const char* key : {"auth", "password", "identitytoken"}) {
      auto it = entry.find(key);
      if (it != entry.end() && it->is_string() && !it->get_ref<const std::string&>().empty()) return true;
    }
  }
  return false;
}

} // namespace

std::string Challenge::param(const std::string& name) const {
  auto it = params.find(name);
  return it != params.end() ? it->second : std::string();
}

std::optional<std::vector<Challenge>> parse_challenges(std::string_view field) {
  return ChallengeParser(field).parse();
}

AuthEnvironment AuthEnvironment::from_process() {
  return AuthEnvironment{
      .registry_auth_file = getenv_or_empty("REGISTRY_AUTH_FILE"),
      .docker_config = getenv_or_empty("DOCKER_CONFIG"),
      .home = getenv_or_empty("HOME"),
      .path = getenv_or_empty("PATH"),
  };
}

std::optional<std::filesystem::path> find_auth_file(const AuthEnvironment& env) {
  std::error_code ec;
  std::vector<std::filesystem::path> candidates;
  if (!env.registry_auth_file.empty()) candidates.emplace_back(env.registry_auth_file);
  if (!env.docker_config.empty()) candidates.push_back(std::filesystem::path(env.docker_config) / "config.json");
  if (!env.home.empty()) candidates.push_back(std::filesystem::path(env.home) / ".docker" / "config.json");
  for (const auto& candidate : candidates) {
    if (std::filesystem::exists(candidate, ec)) return candidate;
  }
  return std::nullopt;
}

std::optional<Credentials> find_credentials(std::string_view host, const AuthEnvironment& env, core::LogSink& log) {
  const std::optional<std::filesystem::path> file = find_auth_file(env);
  if (!file) return std::nullopt;
  std::string text = core::read_file(*file, 16u << 20);
  const core::WipeOnExit wipe_text(text);
  const std::string hint = "fix or remove the file, or pass --username and --password-stdin";
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    // e.what() quotes the text near the error, which may be a secret: give the offset only.
    throw core::UsageError("credentials file " + core::display(*file) + " is not valid JSON (error at byte " +
                               std::to_string(e.byte) + ")",
                           hint);
  }
  if (!doc.is_object()) {
    throw core::UsageError("credentials file " + core::display(*file) + " does not hold a JSON object", hint);
  }
  // docker login and podman login write the file 0600; one with passwords that others may
  // read is refused (with the chmod that fixes it), as a signing key is.
  if (holds_secret(doc)) core::require_private_file(*file, "credentials file");
  auto object_field = [&](const char* name) -> const json* {
    auto it = doc.find(name);
    if (it == doc.end() || it->is_null()) return nullptr;
    if (!it->is_object()) {
      throw core::UsageError("credentials file " + core::display(*file) + ": " + name + " is not an object", hint);
    }
    return &*it;
  };

  std::string helper;
  if (const json* helpers = object_field("credHelpers")) {
    if (const json* entry = lookup(*helpers, host)) {
      if (!entry->is_string()) {
        throw core::UsageError("credentials file " + core::display(*file) + ": credHelpers entry for " +
                                   std::string(host) + " is not a string",
                               hint);
      }
      helper = entry->get<std::string>();
    }
  }
  if (helper.empty()) {
    if (auto it = doc.find("credsStore"); it != doc.end() && !it->is_null()) {
      if (!it->is_string()) {
        throw core::UsageError("credentials file " + core::display(*file) + ": credsStore is not a string", hint);
      }
      helper = it->get<std::string>();
    }
  }
  if (!helper.empty()) {
    if (auto credentials = credentials_from_helper(helper, host, env, *file, log)) return credentials;
  }
  if (const json* auths = object_field("auths")) {
    // An exact key first, then the equivalent forms.
    if (auto it = auths->find(std::string(host)); it != auths->end()) {
      if (auto credentials = credentials_from_entry(*it, *file, it.key())) return credentials;
    }
    const std::string wanted = normal_host(host);
    for (auto it = auths->begin(); it != auths->end(); ++it) {
      if (it.key() == host || key_host(it.key()) != wanted) continue;
      if (auto credentials = credentials_from_entry(*it, *file, it.key())) return credentials;
    }
  }
  return std::nullopt;
}

// --- scopes and tokens ---

bool ScopeSet::add(std::string_view scope) {
  const std::size_t first = scope.find(':');
  const std::size_t last = scope.rfind(':');
  if (first == std::string_view::npos || first == 0 || last == first || last + 1 >= scope.size()) return false;
  const std::string resource(scope.substr(0, last));
  std::set<std::string> actions;
  std::string_view list = scope.substr(last + 1);
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    const std::string_view action = list.substr(0, comma);
    if (action.empty()) return false;
    actions.emplace(action);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
    if (list.empty()) return false;
  }
  m_scopes[resource].merge(actions);
  return true;
}

void ScopeSet::add(const std::string& resource, std::initializer_list<std::string_view> actions) {
  auto& set = m_scopes[resource];
  for (std::string_view action : actions) set.emplace(action);
}

void ScopeSet::merge(const ScopeSet& other) {
  for (const auto& [resource, actions] : other.m_scopes) m_scopes[resource].insert(actions.begin(), actions.end());
}

bool ScopeSet::covers(const ScopeSet& other) const {
  for (const auto& [resource, actions] : other.m_scopes) {
    auto it = m_scopes.find(resource);
    if (it == m_scopes.end()) return false;
    if (!std::includes(it->second.begin(), it->second.end(), actions.begin(), actions.end())) return false;
  }
  return true;
}

std::vector<std::string> ScopeSet::strings() const {
  std::vector<std::string> out;
  for (const auto& [resource, actions] : m_scopes) {
    std::string scope = resource + ":";
    bool first = true;
    for (const auto& action : actions) {
      if (!first) scope += ',';
      scope += action;
      first = false;
    }
    out.push_back(std::move(scope));
  }
  return out;
}

std::optional<std::string> TokenCache::find(const ScopeSet& wanted, Clock::time_point now) const {
  std::lock_guard lock(m_mutex);
  for (const auto& entry : m_entries) {
    if (now < entry.usable_until && entry.scopes.covers(wanted)) return entry.token;
  }
  return std::nullopt;
}

void TokenCache::store(const ScopeSet& scopes, std::string token, Clock::time_point usable_until) {
  std::lock_guard lock(m_mutex);
  const auto now = Clock::now();
  // Expired entries and entries the new one makes redundant go.
  std::erase_if(m_entries, [&](const Entry& e) {
    return e.usable_until <= now || (scopes.covers(e.scopes) && e.usable_until <= usable_until);
  });
  m_entries.push_back(Entry{scopes, std::move(token), usable_until});
}

void TokenCache::forget(std::string_view token) {
  std::lock_guard lock(m_mutex);
  std::erase_if(m_entries, [&](const Entry& e) { return e.token == token; });
}

std::optional<TokenAnswer> parse_token_answer(std::string_view body) {
  json doc;
  try {
    doc = json::parse(body);
  } catch (const json::exception&) {
    return std::nullopt;
  }
  if (!doc.is_object()) return std::nullopt;
  TokenAnswer answer;
  for (const char* key : {"token", "access_token"}) {
    auto it = doc.find(key);
    if (it != doc.end() && it->is_string() && !it->get<std::string>().empty()) {
      answer.token = it->get<std::string>();
      break;
    }
  }
  if (answer.token.empty()) return std::nullopt;
  // The lifetime counts from when the answer arrives here: issued_at is the server's
  // clock, which may disagree with ours.
  if (auto it = doc.find("expires_in"); it != doc.end() && it->is_number() && it->get<double>() >= 1) {
    answer.expires_in = std::chrono::seconds(static_cast<std::int64_t>(std::min(it->get<double>(), 86400.0 * 365)));
  }
  return answer;
}

// --- redaction ---

std::string redact_url(std::string_view url) {
  std::string out;
  const std::size_t scheme_end = url.find("://");
  std::size_t rest = 0;
  if (scheme_end != std::string_view::npos) {
    const std::size_t authority_start = scheme_end + 3;
    std::size_t authority_end = url.find_first_of("/?#", authority_start);
    if (authority_end == std::string_view::npos) authority_end = url.size();
    std::string_view authority = url.substr(authority_start, authority_end - authority_start);
    if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) authority.remove_prefix(at + 1);
    out.append(url.substr(0, authority_start)).append(authority);
    rest = authority_end;
  }
  std::string_view tail = url.substr(rest);
  if (const std::size_t hash = tail.find('#'); hash != std::string_view::npos) tail = tail.substr(0, hash);
  const std::size_t question = tail.find('?');
  out.append(tail.substr(0, question));
  if (question == std::string_view::npos) return out;
  static constexpr std::array<std::string_view, 7> k_harmless{"digest", "mount",   "from", "n",
                                                              "last",   "service", "scope"};
  std::string_view query = tail.substr(question + 1);
  out += '?';
  bool first = true;
  while (true) {
    const std::size_t amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    if (!param.empty()) {
      if (!first) out += '&';
      first = false;
      const std::size_t eq = param.find('=');
      const std::string_view name = param.substr(0, eq);
      if (eq == std::string_view::npos) {
        out += "REDACTED";
      } else if (std::find(k_harmless.begin(), k_harmless.end(), lower(name)) != k_harmless.end()) {
        out.append(param);
      } else {
        out.append(name).append("=REDACTED");
      }
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

std::string redact_secrets(std::string text, const std::vector<std::string>& secrets) {
  for (const auto& secret : secrets) {
    // Very short secrets are left alone: replacing every "ab" would garble the text,
    // and ferry never writes a secret into text in the first place.
    if (secret.size() < 4) continue;
    for (std::size_t pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos + 3)) {
      text.replace(pos, secret.size(), "***");
    }
  }
  return text;
}

} // namespace ferry::registry
