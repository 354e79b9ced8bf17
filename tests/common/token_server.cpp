// Bearer-token server for registry tests: cpp-httplib on 127.0.0.1, ES256 JWTs signed
// with libcrypto.
// SPDX-License-Identifier: Apache-2.0
#include "common/token_server.hpp"

#include "common/registry_fixture.hpp"
#include "common/test_dir.hpp"

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <array>
#include <ctime>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

namespace ferry::test {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

template <auto free_fn>
struct CDeleter {
  template <typename T>
  void operator()(T* p) const noexcept {
    free_fn(p);
  }
};
using Bio = std::unique_ptr<BIO, CDeleter<BIO_free>>;
using EvpPkey = std::unique_ptr<EVP_PKEY, CDeleter<EVP_PKEY_free>>;
using EvpMdCtx = std::unique_ptr<EVP_MD_CTX, CDeleter<EVP_MD_CTX_free>>;
using EcdsaSig = std::unique_ptr<ECDSA_SIG, CDeleter<ECDSA_SIG_free>>;

constexpr std::size_t k_coordinate_bytes = 32; // P-256

std::string base64url(std::string_view bytes) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const auto n = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                   static_cast<unsigned char>(bytes[i + 2]);
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += alphabet[(n >> 6) & 63];
    out += alphabet[n & 63];
  }
  if (const std::size_t rest = bytes.size() - i; rest > 0) {
    auto n = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2) n |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    if (rest == 2) out += alphabet[(n >> 6) & 63];
  }
  return out; // no padding (JWS)
}

// Standard base64 (padding optional); nullopt for anything else.
std::optional<std::string> base64_decode(std::string_view text) {
  std::string out;
  unsigned int buffer = 0;
  int bits = 0;
  for (const char c : text) {
    int value;
    if (c >= 'A' && c <= 'Z') {
      value = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      value = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      value = c - '0' + 52;
    } else if (c == '+') {
      value = 62;
    } else if (c == '/') {
      value = 63;
    } else if (c == '=') {
      break;
    } else {
      return std::nullopt;
    }
    buffer = (buffer << 6) | static_cast<unsigned int>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xffu);
    }
  }
  return out;
}

// The base64 body of the first PEM block: the DER certificate as JWS "x5c" wants it.
std::string pem_body(const std::string& pem) {
  std::istringstream lines(pem);
  std::string line;
  std::string body;
  bool inside = false;
  while (std::getline(lines, line)) {
    if (line.rfind("-----BEGIN", 0) == 0) {
      inside = true;
    } else if (line.rfind("-----END", 0) == 0) {
      break;
    } else if (inside) {
      for (const char c : line) {
        if (c != '\r') body += c;
      }
    }
  }
  return body;
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, separator)) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

std::string rfc3339(std::chrono::system_clock::time_point time) {
  const std::time_t t = std::chrono::system_clock::to_time_t(time);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

// A scope "TYPE:NAME:ACTIONS" (NAME may hold colons, e.g. a registry host with a port).
struct Scope {
  std::string type;
  std::string name;
  std::vector<std::string> actions;
};

std::optional<Scope> parse_scope(const std::string& text) {
  const auto first = text.find(':');
  const auto last = text.rfind(':');
  if (first == std::string::npos || first == last) return std::nullopt;
  return Scope{text.substr(0, first), text.substr(first + 1, last - first - 1), split(text.substr(last + 1), ',')};
}

} // namespace

struct TokenServer::State {
  TokenServerOptions options;
  fs::path certificate;
  std::string x5c;
  EvpPkey key;
  httplib::Server server;
  std::uint16_t port = 0;
  std::thread thread;
  mutable std::mutex mutex; // guards deny_push, requests, key use
  std::vector<TokenRequest> requests;

  void handle(const httplib::Request& request, httplib::Response& response);
  std::string sign(const std::string& signing_input) const;
  std::string make_token(const std::string& subject, const json& access, std::chrono::system_clock::time_point now);
};

std::string TokenServer::State::sign(const std::string& signing_input) const {
  const EvpMdCtx context(EVP_MD_CTX_new());
  if (!context || EVP_DigestSignInit(context.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1) return {};
  std::size_t length = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(signing_input.data());
  if (EVP_DigestSign(context.get(), nullptr, &length, data, signing_input.size()) != 1) return {};
  std::vector<unsigned char> der(length);
  if (EVP_DigestSign(context.get(), der.data(), &length, data, signing_input.size()) != 1) return {};
  // OpenSSL gives a DER SEQUENCE {r, s}; JWS ES256 wants r and s as 32 big-endian bytes each.
  const unsigned char* cursor = der.data();
  const EcdsaSig signature(d2i_ECDSA_SIG(nullptr, &cursor, static_cast<long>(length)));
  if (!signature) return {};
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(signature.get(), &r, &s);
  std::array<unsigned char, 2 * k_coordinate_bytes> raw{};
  if (BN_bn2binpad(r, raw.data(), k_coordinate_bytes) < 0 ||
      BN_bn2binpad(s, raw.data() + k_coordinate_bytes, k_coordinate_bytes) < 0) {
    return {};
  }
  return std::string(reinterpret_cast<const char*>(raw.data()), raw.size());
}

std::string TokenServer::State::make_token(const std::string& subject, const json& access,
                                           std::chrono::system_clock::time_point now) {
  const auto seconds = [](std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
  };
  std::random_device device;
  const json header = {{"typ", "JWT"}, {"alg", "ES256"}, {"x5c", json::array({x5c})}};
  const json claims = {{"iss", options.issuer},
                       {"sub", subject},
                       {"aud", options.service},
                       {"exp", seconds(now + options.lifetime)},
                       {"nbf", seconds(now - std::chrono::seconds(10))},
                       {"iat", seconds(now)},
                       {"jti", std::to_string(device()) + std::to_string(device())},
                       {"access", access}};
  const std::string signing_input = base64url(header.dump()) + "." + base64url(claims.dump());
  const std::string signature = sign(signing_input);
  if (signature.empty()) return {};
  return signing_input + "." + base64url(signature);
}

void TokenServer::State::handle(const httplib::Request& request, httplib::Response& response) {
  TokenRequest record;
  record.method = request.method;
  record.service = request.get_param_value("service");
  std::string user;
  std::string password;
  bool have_credentials = false;
  if (request.method == "POST") {
    if (request.get_param_value("grant_type") != "password") {
      record.status = 400;
      response.status = 400;
      response.set_content(R"({"error":"unsupported_grant_type"})", "application/json");
    }
    user = request.get_param_value("username");
    password = request.get_param_value("password");
    have_credentials = request.has_param("username");
  } else if (const std::string authorization = request.get_header_value("Authorization");
             authorization.rfind("Basic ", 0) == 0) {
    if (const auto decoded = base64_decode(authorization.substr(6))) {
      const auto colon = decoded->find(':');
      user = decoded->substr(0, colon);
      password = colon == std::string::npos ? "" : decoded->substr(colon + 1);
      have_credentials = true;
    }
  }
  record.user = user;
  const auto range = request.params.equal_range("scope");
  for (auto it = range.first; it != range.second; ++it) {
    for (auto& scope : split(it->second, ' ')) record.scopes.push_back(scope);
  }

  const std::lock_guard lock(mutex);
  if (record.status == 0 &&
      (!have_credentials || user != options.username || password != options.password)) {
    record.status = 401;
    response.status = 401;
    response.set_header("WWW-Authenticate", "Basic realm=\"ferry-test-token\"");
    response.set_content(R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})",
                         "application/json");
  }
  if (record.status == 0) {
    json access = json::array();
    for (const auto& text : record.scopes) {
      const auto scope = parse_scope(text);
      if (!scope) continue;
      std::vector<std::string> actions;
      for (const auto& action : scope->actions) {
        if (options.deny_push && (action == "push" || action == "*")) continue;
        actions.push_back(action);
      }
      std::string granted = scope->type + ":" + scope->name + ":";
      for (std::size_t i = 0; i < actions.size(); ++i) granted += (i ? "," : "") + actions[i];
      record.granted.push_back(granted);
      access.push_back({{"type", scope->type}, {"name", scope->name}, {"actions", actions}});
    }
    const auto now = std::chrono::system_clock::now();
    const std::string token = make_token(user, access, now);
    if (token.empty()) {
      record.status = 500;
      response.status = 500;
      response.set_content(R"({"error":"signing failed"})", "application/json");
    } else {
      record.status = 200;
      response.status = 200;
      const json body = {{"token", token},
                         {"access_token", token},
                         {"expires_in", options.lifetime.count()},
                         {"issued_at", rfc3339(now)}};
      response.set_content(body.dump(), "application/json");
    }
  }
  requests.push_back(std::move(record));
}

TokenServer::TokenServer(const fs::path& dir, TokenServerOptions options) : m_state(std::make_unique<State>()) {
  State& state = *m_state;
  state.options = std::move(options);
  fs::create_directories(dir);
  const fs::path key_file = dir / "token-signer.key";
  state.certificate = dir / "token-signer.pem";
  must_run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            key_file.string(), "-out", state.certificate.string(), "-days", "1", "-subj",
            "/CN=ferry test token signer"});
  state.x5c = pem_body(read_file(state.certificate));
  REQUIRE_MESSAGE(!state.x5c.empty(), "no PEM certificate in " << state.certificate.string());
  const Bio bio(BIO_new_file(key_file.c_str(), "r"));
  REQUIRE_MESSAGE(bio, "cannot open " << key_file.string());
  state.key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  REQUIRE_MESSAGE(state.key, "cannot read the EC key " << key_file.string());

  const auto handler = [&state](const httplib::Request& request, httplib::Response& response) {
    state.handle(request, response);
  };
  state.server.Get("/token", handler);
  state.server.Post("/token", handler);
  const int port = state.server.bind_to_any_port("127.0.0.1");
  REQUIRE_MESSAGE(port > 0, "token server: cannot bind 127.0.0.1");
  state.port = static_cast<std::uint16_t>(port);
  // The socket already listens; connections wait in its backlog until the loop runs.
  state.thread = std::thread([&state] { state.server.listen_after_bind(); });
  // Server::stop() does nothing before the loop runs, so the destructor must not come earlier.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!state.server.is_running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  REQUIRE_MESSAGE(state.server.is_running(), "token server: the accept loop did not start");
}

TokenServer::~TokenServer() {
  m_state->server.stop();
  if (m_state->thread.joinable()) m_state->thread.join();
}

std::uint16_t TokenServer::port() const noexcept { return m_state->port; }

std::string TokenServer::realm() const { return "http://127.0.0.1:" + std::to_string(m_state->port) + "/token"; }

const std::string& TokenServer::service() const noexcept { return m_state->options.service; }

const std::string& TokenServer::issuer() const noexcept { return m_state->options.issuer; }

const fs::path& TokenServer::certificate() const noexcept { return m_state->certificate; }

void TokenServer::set_deny_push(bool deny) {
  const std::lock_guard lock(m_state->mutex);
  m_state->options.deny_push = deny;
}

std::vector<TokenRequest> TokenServer::requests() const {
  const std::lock_guard lock(m_state->mutex);
  return m_state->requests;
}

bool TokenServer::requested(const std::string& repository, const std::string& action) const {
  for (const auto& request : requests()) {
    for (const auto& text : request.scopes) {
      const auto scope = parse_scope(text);
      if (!scope || scope->type != "repository" || scope->name != repository) continue;
      for (const auto& a : scope->actions) {
        if (a == action) return true;
      }
    }
  }
  return false;
}

void TokenServer::clear_requests() {
  const std::lock_guard lock(m_state->mutex);
  m_state->requests.clear();
}

} // namespace ferry::test
