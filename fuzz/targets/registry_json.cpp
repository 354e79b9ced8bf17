// Fuzz target: the JSON a registry sends. The first byte picks what the rest is:
//   0 an image manifest or index of unknown kind (oci::parse_manifest, as for a tag),
//   1 the same where the pointing descriptor said "index", 2 where it said "manifest",
//   3 a registry error body and the media type ferry infers for a manifest answer,
//   4 a token endpoint's answer,
//   5 a tag list, 6 a catalog page: served by a loopback HTTP server to the real
//     registry::Client (list_tags / list_repositories), whose parsing lives inside them.
//     The second byte picks the status (mostly 200, else 400, 404 or 500, whose body
//     is an error body); a first line starting with "<" becomes the Link header (pages),
//     the rest is the body.
// SPDX-License-Identifier: Apache-2.0
#include "core/error.hpp"
#include "core/log.hpp"
#include "oci/manifest.hpp"
#include "oci/media_types.hpp"
#include "registry/auth.hpp"
#include "registry/client.hpp"
#include "registry/http.hpp"
#include "registry/session.hpp"

#include <curl/curl.h>
#include <httplib.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <variant>

using namespace ferry;

namespace {

// What the loopback server answers to every request.
struct Answer {
  int status = 200;
  std::string link;
  std::string body;
};

// One HTTP server on 127.0.0.1 for the whole run, answering with the current Answer.
class Loopback {
public:
  Loopback() {
    m_server.Get(".*", [this](const httplib::Request&, httplib::Response& res) {
      const std::lock_guard lock(m_mutex);
      res.status = m_answer.status;
      if (!m_answer.link.empty()) res.set_header("Link", m_answer.link);
      res.set_content(m_answer.body, "application/json");
    });
    // Headers and body go out in two writes: without this, Nagle's algorithm and the
    // client's delayed ACK hold every answer back for 40 ms.
    m_server.set_tcp_nodelay(true);
    m_port = m_server.bind_to_any_port("127.0.0.1");
    if (m_port <= 0) std::abort();
    m_thread = std::thread([this] { m_server.listen_after_bind(); });
    while (!m_server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~Loopback() {
    m_server.stop();
    m_thread.join();
  }
  std::string host() const { return "127.0.0.1:" + std::to_string(m_port); }
  void set(Answer answer) {
    const std::lock_guard lock(m_mutex);
    m_answer = std::move(answer);
  }

private:
  httplib::Server m_server;
  std::mutex m_mutex;
  Answer m_answer;
  int m_port = 0;
  std::thread m_thread;
};

struct Http {
  Http() {
    // ferry's main() does this before any thread starts.
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) std::abort();
    registry::ClientOptions options;
    options.tls.plain_http = true;
    options.max_attempts = 1; // a 500 is not retried: one exchange per page
    options.initial_backoff = std::chrono::milliseconds(0);
    options.connect_timeout = std::chrono::seconds(5);
    server = std::make_unique<Loopback>();
    client = std::make_unique<registry::Client>(server->host(), options, log);
  }
  core::NullLog log;
  std::unique_ptr<Loopback> server;
  std::unique_ptr<registry::Client> client;
};

Http& http() {
  static Http instance;
  return instance;
}

std::string without_line_ends(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c != '\r' && c != '\n' && c != '\0') out += c;
  }
  return out;
}

void serve_list(std::uint8_t status_byte, std::string_view rest, bool tags) {
  Http& h = http();
  Answer answer;
  static constexpr int k_statuses[] = {200, 200, 200, 200, 200, 400, 404, 500};
  answer.status = k_statuses[status_byte % 8];
  if (!rest.empty() && rest.front() == '<') {
    const std::size_t newline = rest.find('\n');
    const std::string link = without_line_ends(rest.substr(0, newline));
    rest = newline == std::string_view::npos ? std::string_view{} : rest.substr(newline + 1);
    // The client follows the link wherever it points: keep it on the loopback server.
    const std::string base = "http://" + h.server->host() + "/";
    const std::size_t close = link.find('>');
    if (close != std::string::npos) {
      const std::string target = registry::resolve_url(base + "v2/fuzz/tags/list", link.substr(1, close - 1));
      if (target.rfind(base, 0) == 0) answer.link = link;
    }
  }
  answer.body = std::string(rest);
  h.server->set(std::move(answer));
  if (tags) {
    (void)h.client->list_tags("fuzz");
  } else {
    (void)h.client->list_repositories();
  }
}

// Serialising what was parsed and parsing that again must give the same document:
// ferry writes manifests this way (narrowed indexes, chart and file artifacts).
void check_round_trip(const oci::AnyManifest& parsed) {
  const std::string once = std::visit([](const auto& m) { return oci::to_json(m); }, parsed);
  const std::string_view type =
      std::holds_alternative<oci::ImageIndex>(parsed) ? oci::media_type::oci_index : oci::media_type::oci_manifest;
  const oci::AnyManifest again = oci::parse_manifest(once, type, "round trip");
  const std::string twice = std::visit([](const auto& m) { return oci::to_json(m); }, again);
  if (once != twice || parsed.index() != again.index()) std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t mode = data[0] % 7;
  std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    switch (mode) {
    case 0:
    case 1:
    case 2: {
      const std::string_view declared = mode == 1   ? oci::media_type::oci_index
                                        : mode == 2 ? oci::media_type::oci_manifest
                                                    : std::string_view{};
      check_round_trip(oci::parse_manifest(body, declared, "manifest from the fuzzer"));
      break;
    }
    case 3:
      (void)registry::registry_error_text(body);
      (void)registry::manifest_media_type("", body, "manifest from the fuzzer");
      (void)registry::manifest_media_type("application/json; charset=utf-8", body, "manifest from the fuzzer");
      break;
    case 4:
      if (const auto answer = registry::parse_token_answer(body)) {
        if (answer->token.empty() || answer->expires_in.count() < 1) std::abort();
      }
      break;
    case 5:
    case 6: {
      const std::uint8_t status = body.empty() ? 0 : static_cast<std::uint8_t>(body.front());
      if (!body.empty()) body.remove_prefix(1);
      serve_list(status, body, mode == 5);
      break;
    }
    default:
      break;
    }
  } catch (const core::Error&) {
  }
  return 0;
}
