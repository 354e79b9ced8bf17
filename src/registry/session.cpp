// The request loop of the registry client: one exchange over a pooled curl handle,
// authentication (anonymous, Basic, bearer tokens), manual redirects, retries with
// backoff, and the failure messages and hints.
// SPDX-License-Identifier: Apache-2.0
#include "registry/session.hpp"

#include "core/encoding.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/secret.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <random>
#include <thread>

namespace ferry::registry {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int k_max_redirects = 10;
constexpr std::chrono::seconds k_retry_after_cap{60};
constexpr std::chrono::seconds k_backoff_cap{30};

Outcome classify_curl(CURLcode code) {
  switch (code) {
  // The connection could not be made, broke, stalled below the low-speed limit or timed
  // out: another attempt may get through (and blob downloads resume where they were).
  case CURLE_COULDNT_CONNECT:
  case CURLE_OPERATION_TIMEDOUT:
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_GOT_NOTHING:  // the server closed the connection without an answer
  case CURLE_PARTIAL_FILE: // the body ended before its Content-Length
  case CURLE_HTTP2:        // HTTP/2 framing trouble, mostly a dropped connection
  case CURLE_HTTP2_STREAM: // a reset stream (proxies do that under load)
  case CURLE_COULDNT_RESOLVE_PROXY:
    return Outcome::transient;
  // TLS: a CA ferry does not trust, a plain-HTTP server, a bad client certificate.
  // Sending again cannot help; the operator must change --ca-file/--plain-http/...
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
    return Outcome::tls;
  // An unknown host name is far more often a typo than a passing DNS failure.
  case CURLE_COULDNT_RESOLVE_HOST:
    return Outcome::unreachable;
  // Malformed URLs, unsupported protocols, HTTP/0.9 answers (plain HTTP sent to a TLS
  // port), out of memory: not worth another attempt.
  default:
    return Outcome::failed;
  }
}

// The host's CA bundle: SSL_CERT_FILE when set, else the path libcurl was built with, else
// the first file of the places distributions keep it. The static binary's libcurl has no
// built-in path (packaging/static/build-deps.sh), so the same binary verifies TLS on
// Debian, RHEL, SUSE and Alpine jump hosts. Empty when there is none.
std::string system_ca_bundle() {
  std::error_code ec;
  const char* from_env = std::getenv("SSL_CERT_FILE");
  if (from_env != nullptr && *from_env != '\0') return from_env;
  CurlEasy probe(curl_easy_init());
  char* built_in = nullptr;
  if (probe && curl_easy_getinfo(probe.get(), CURLINFO_CAINFO, &built_in) == CURLE_OK && built_in != nullptr &&
      std::filesystem::is_regular_file(built_in, ec)) {
    return built_in;
  }
  for (const char* path : {
           "/etc/ssl/certs/ca-certificates.crt",                // Debian, Ubuntu, Alpine
           "/etc/pki/tls/certs/ca-bundle.crt",                  // RHEL, Fedora, Rocky, Alma
           "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // RHEL 7 and later
           "/etc/ssl/ca-bundle.pem",                            // SUSE
           "/etc/ssl/cert.pem",                                 // Alpine, BSD-style
       }) {
    if (std::filesystem::is_regular_file(path, ec)) return path;
  }
  return {};
}

// scheme://host:port of a URL (lower-cased, default port filled in), for deciding where
// credentials may go.
std::string origin_of(const std::string& url) {
  CurlUrl handle(curl_url());
  if (!handle || curl_url_set(handle.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) return {};
  std::string out;
  for (const auto part : {CURLUPART_SCHEME, CURLUPART_HOST, CURLUPART_PORT}) {
    char* value = nullptr;
    if (curl_url_get(handle.get(), part, &value, part == CURLUPART_PORT ? CURLU_DEFAULT_PORT : 0) != CURLUE_OK) {
      return {};
    }
    const CurlString owned(value);
    out += lower(owned.get());
    out += part == CURLUPART_SCHEME ? "://" : part == CURLUPART_HOST ? ":" : "";
  }
  return out;
}

// The state curl's callbacks work on during one exchange.
struct Transfer {
  const Request& request;
  Response& response;
  std::atomic<std::uint64_t>& bytes_down;
  std::atomic<std::uint64_t>& bytes_up;
  std::exception_ptr error; // thrown by a sink or a check; rethrown after the exchange
  std::size_t upload_pos = 0;
  bool body_started = false;
};

extern "C" std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  const std::size_t length = size * count;
  try {
    const std::string_view line = trim(std::string_view(data, length));
    if (line.rfind("HTTP/", 0) == 0) {
      // A new response (after 100 Continue, or a proxy's CONNECT answer) starts over.
      t.response.headers.clear();
      const std::size_t space = line.find(' ');
      if (space != std::string_view::npos) {
        const std::string_view rest = line.substr(space + 1);
        t.response.status = std::strtol(std::string(rest.substr(0, 3)).c_str(), nullptr, 10);
        t.response.reason = rest.size() > 4 ? std::string(trim(rest.substr(4))) : std::string();
      }
    } else if (const std::size_t colon = line.find(':'); colon != std::string_view::npos && colon > 0) {
      t.response.headers.push_back(
          Header{lower(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1)))});
    }
    return length;
  } catch (...) {
    t.error = std::current_exception();
    return 0;
  }
}

extern "C" std::size_t on_write(char* data, std::size_t size, std::size_t count, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  const std::size_t length = size * count;
  try {
    t.bytes_down += length;
    const bool ok = t.response.status >= 200 && t.response.status < 300;
    if (ok && t.request.sink != nullptr) {
      if (!t.body_started) {
        t.body_started = true;
        if (t.request.on_body) t.request.on_body(t.response);
      }
      t.request.sink->write(data, length);
    } else if (ok) {
      if (t.response.body.size() + length > t.request.body_limit) {
        t.response.body_over_limit = true;
        return 0;
      }
      t.response.body.append(data, length);
    } else {
      // Error and redirect bodies: the start is kept (for the registry's error code), the
      // rest is not even read. Returning short ends the transfer and closes the connection,
      // so a body that never ends (trickled just fast enough to pass the low-speed check)
      // cannot hold the request open; perform() then reports the status as it came.
      const std::size_t room = k_error_body_limit - std::min(k_error_body_limit, t.response.body.size());
      t.response.body.append(data, std::min(room, length));
      if (length > room) {
        t.response.error_body_cut = true;
        return 0;
      }
    }
    return length;
  } catch (...) {
    t.error = std::current_exception();
    return 0;
  }
}

extern "C" std::size_t on_read(char* buffer, std::size_t size, std::size_t count, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  const std::string_view body = t.request.body;
  const std::size_t n = std::min(size * count, body.size() - std::min(body.size(), t.upload_pos));
  if (n > 0) std::memcpy(buffer, body.data() + t.upload_pos, n);
  t.upload_pos += n;
  t.bytes_up += n;
  return n;
}

// curl rewinds the body when it must send it again on a new connection.
extern "C" int on_seek(void* user, curl_off_t offset, int origin) {
  auto& t = *static_cast<Transfer*>(user);
  if (origin != SEEK_SET || offset < 0 || static_cast<std::uint64_t>(offset) > t.request.body.size()) {
    return CURL_SEEKFUNC_CANTSEEK;
  }
  t.upload_pos = static_cast<std::size_t>(offset);
  return CURL_SEEKFUNC_OK;
}

template <typename T>
void set_option(CURL* easy, CURLoption option, T value) {
  if (const CURLcode rc = curl_easy_setopt(easy, option, value); rc != CURLE_OK) {
    throw core::Error(core::ExitCode::failure, "libcurl refused option " + std::to_string(static_cast<int>(option)) +
                                                   ": " + curl_easy_strerror(rc));
  }
}

} // namespace

struct Authorization {
  std::string value;        // the Authorization header value, or empty
  std::string bearer_token; // the token sent, to forget it if the registry refuses it
  bool basic = false;
};

Request make_request(Method method, std::string url) {
  Request request;
  request.method = method;
  request.url = std::move(url);
  return request;
}

namespace {

// A TLS alert about the client's certificate. With TLS 1.3 the server's refusal arrives
// after the handshake, on the first read (curl: "SSL_read: ... alert certificate
// required" / "alert bad certificate"), which curl reports as a receive error: it is no
// network trouble, and another attempt cannot help.
bool client_certificate_refused(const Response& response) {
  const std::string text = lower(response.curl_error);
  return text.find("alert certificate required") != std::string::npos ||
         text.find("alert bad certificate") != std::string::npos ||
         text.find("alert unknown ca") != std::string::npos ||
         text.find("alert certificate unknown") != std::string::npos ||
         text.find("alert certificate expired") != std::string::npos ||
         text.find("alert certificate revoked") != std::string::npos;
}

} // namespace

Outcome classify(const Response& response) {
  if (response.curl == CURLE_OK) return classify_status(response.status);
  if (client_certificate_refused(response)) return Outcome::tls;
  return classify_curl(response.curl);
}

std::string resolve_url(const std::string& base, const std::string& location) {
  CurlUrl handle(curl_url());
  if (!handle || curl_url_set(handle.get(), CURLUPART_URL, base.c_str(), 0) != CURLUE_OK ||
      curl_url_set(handle.get(), CURLUPART_URL, location.c_str(), 0) != CURLUE_OK) {
    return {};
  }
  char* value = nullptr;
  if (curl_url_get(handle.get(), CURLUPART_URL, &value, 0) != CURLUE_OK) return {};
  const CurlString owned(value);
  return owned.get();
}

const char* method_name(Method method) {
  switch (method) {
  case Method::get:
    return "GET";
  case Method::head:
    return "HEAD";
  case Method::post:
    return "POST";
  case Method::put:
    return "PUT";
  case Method::patch:
    return "PATCH";
  case Method::del:
    return "DELETE";
  }
  return "GET";
}

const std::string* Response::header(std::string_view name) const {
  for (const auto& h : headers) {
    if (h.name == name) return &h.value;
  }
  return nullptr;
}

std::vector<std::string> Response::headers_named(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& h : headers) {
    if (h.name == name) out.push_back(h.value);
  }
  return out;
}

CurlEasy HandlePool::acquire() {
  {
    std::lock_guard lock(m_mutex);
    if (!m_idle.empty()) {
      CurlEasy easy = std::move(m_idle.back());
      m_idle.pop_back();
      return easy;
    }
  }
  CurlEasy easy(curl_easy_init());
  if (!easy) throw core::Error(core::ExitCode::failure, "cannot create a libcurl handle (curl_easy_init failed)");
  return easy;
}

void HandlePool::release(CurlEasy easy) noexcept {
  std::lock_guard lock(m_mutex);
  if (m_idle.size() < k_max_idle) m_idle.push_back(std::move(easy));
}

Session::Session(std::string host_, ClientOptions options_, core::LogSink& log_)
    : host(std::move(host_)), options(std::move(options_)), log(log_) {
  if (host.empty() || host.find_first_of("/ @?#") != std::string::npos) {
    throw core::UsageError("invalid registry host \"" + host + "\"",
                           "give HOST or HOST:PORT, e.g. registry.local:5000");
  }
  // Docker Hub's API does not live at docker.io.
  const std::string api_host = host == "docker.io" || host == "index.docker.io" ? "registry-1.docker.io" : host;
  base = (options.tls.plain_http ? "http://" : "https://") + api_host;
  base_origin = origin_of(base);
  if (base_origin.empty()) {
    throw core::UsageError("invalid registry host \"" + host + "\"",
                           "give HOST or HOST:PORT, e.g. registry.local:5000");
  }
  if (options.max_attempts < 1) options.max_attempts = 1;
  if (options.chunk_size == 0) throw core::UsageError("the upload chunk size must be at least one byte");

  const TlsOptions& tls = options.tls;
  ca_path = system_ca_bundle();
  if (!tls.ca_file.empty()) {
    const std::string pem = core::read_file(tls.ca_file, 16u << 20);
    if (pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
      throw core::UsageError("--ca-file " + core::display(tls.ca_file) + " holds no PEM certificate",
                             "give the CA certificate that signed the registry's certificate, in PEM form");
    }
    // CURLOPT_CAINFO would replace the system bundle; the blob holds both, so that a
    // redirect to public blob storage still verifies.
    if (!ca_path.empty()) {
      try {
        ca_blob = core::read_file(ca_path, 64u << 20);
        ca_blob += '\n';
      } catch (const core::Error&) {
        ca_blob.clear();
      }
    }
    ca_blob += pem;
  }
  for (const auto& [path, flag] : {std::pair{tls.cert_file, "--cert-file"}, std::pair{tls.key_file, "--key-file"}}) {
    std::error_code ec;
    if (!path.empty() && !std::filesystem::is_regular_file(path, ec)) {
      throw core::UsageError(std::string(flag) + " " + core::display(path) + " does not exist or is not a file");
    }
  }
  // curl reads the key itself; an unencrypted private key others can read is refused as
  // a signing key is.
  if (!tls.key_file.empty()) core::require_private_file(tls.key_file, "--key-file");
  if (tls.insecure_skip_verify && !tls.plain_http) {
    log.warning("TLS certificate verification is off for " + host +
                " (--insecure-skip-tls-verify): anyone on the network path can read and change the traffic");
  }
  if (options.credentials) {
    add_secret(options.credentials->password);
    add_secret(options.credentials->identity_token);
    add_secret(core::base64_encode(options.credentials->username + ":" + options.credentials->password));
  }
}

Session::~Session() {
  // The scrub list holds the password, its base64 form and the tokens.
  for (std::string& secret : secrets) core::wipe(secret);
}

void Session::add_secret(std::string secret) {
  if (secret.empty()) return;
  std::lock_guard lock(secrets_mutex);
  if (std::find(secrets.begin(), secrets.end(), secret) == secrets.end()) secrets.push_back(std::move(secret));
}

std::string Session::scrub(std::string text) {
  std::lock_guard lock(secrets_mutex);
  return redact_secrets(std::move(text), secrets);
}

Response Session::perform(Request& request) {
  struct Lease {
    HandlePool& pool;
    CurlEasy easy;
    ~Lease() {
      curl_easy_reset(easy.get()); // drops the pointers into this call's stack frame
      pool.release(std::move(easy));
    }
  } lease{pool, pool.acquire()};
  CURL* easy = lease.easy.get();
  curl_easy_reset(easy); // keeps the connection cache; clears the previous request's options

  Response response;
  Transfer transfer{request, response, bytes_down, bytes_up, nullptr, 0, false};
  char error_buffer[CURL_ERROR_SIZE] = {};

  CurlSlist headers;
  for (const auto& line : request.headers) append_header(headers, line);
  if (!request.authorization.empty()) append_header(headers, "Authorization: " + request.authorization);

  set_option(easy, CURLOPT_URL, request.url.c_str());
  set_option(easy, CURLOPT_NOSIGNAL, 1L);
  set_option(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  set_option(easy, CURLOPT_FOLLOWLOCATION, 0L); // redirects are followed by execute(), see there
  set_option(easy, CURLOPT_USERAGENT, options.user_agent.c_str());
  set_option(easy, CURLOPT_CONNECTTIMEOUT_MS,
             static_cast<long>(std::chrono::milliseconds(options.connect_timeout).count()));
  set_option(easy, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  set_option(easy, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options.stall_timeout.count()));
  set_option(easy, CURLOPT_TCP_KEEPALIVE, 1L);
  // Larger buffers than curl's 16/64 KiB: fewer callbacks per blob, faster hashing.
  set_option(easy, CURLOPT_BUFFERSIZE, 512L * 1024);
  set_option(easy, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
  set_option(easy, CURLOPT_ERRORBUFFER, error_buffer);
  set_option(easy, CURLOPT_HEADERFUNCTION, on_header);
  set_option(easy, CURLOPT_HEADERDATA, &transfer);
  set_option(easy, CURLOPT_WRITEFUNCTION, on_write);
  set_option(easy, CURLOPT_WRITEDATA, &transfer);
  // Proxies come from the environment (http_proxy, HTTPS_PROXY, NO_PROXY): curl's default.
  const TlsOptions& tls = options.tls;
  curl_blob ca{};
  if (!ca_blob.empty()) {
    ca = curl_blob{ca_blob.data(), ca_blob.size(), CURL_BLOB_NOCOPY};
    set_option(easy, CURLOPT_CAINFO_BLOB, &ca);
  } else if (!ca_path.empty()) {
    set_option(easy, CURLOPT_CAINFO, ca_path.c_str());
  }
  if (!tls.cert_file.empty()) set_option(easy, CURLOPT_SSLCERT, tls.cert_file.c_str());
  if (!tls.key_file.empty()) set_option(easy, CURLOPT_SSLKEY, tls.key_file.c_str());
  if (tls.insecure_skip_verify) {
    set_option(easy, CURLOPT_SSL_VERIFYPEER, 0L);
    set_option(easy, CURLOPT_SSL_VERIFYHOST, 0L);
  }

  switch (request.method) {
  case Method::get:
    break;
  case Method::head:
    set_option(easy, CURLOPT_NOBODY, 1L);
    break;
  case Method::post:
    set_option(easy, CURLOPT_POST, 1L);
    set_option(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    set_option(easy, CURLOPT_POSTFIELDS, request.body.empty() ? "" : request.body.data()); // never NULL: stdin
    if (!request.form) append_header(headers, "Content-Type:");                            // no curl default form type
    break;
  case Method::put:
  case Method::patch:
    set_option(easy, CURLOPT_UPLOAD, 1L);
    set_option(easy, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    set_option(easy, CURLOPT_READFUNCTION, on_read);
    set_option(easy, CURLOPT_READDATA, &transfer);
    set_option(easy, CURLOPT_SEEKFUNCTION, on_seek);
    set_option(easy, CURLOPT_SEEKDATA, &transfer);
    if (request.method == Method::patch) set_option(easy, CURLOPT_CUSTOMREQUEST, "PATCH");
    break;
  case Method::del:
    set_option(easy, CURLOPT_CUSTOMREQUEST, "DELETE");
    break;
  }
  set_option(easy, CURLOPT_HTTPHEADER, headers.get());

  response.curl = curl_easy_perform(easy);
  if (transfer.error) std::rethrow_exception(transfer.error);
  if (response.curl == CURLE_WRITE_ERROR && response.error_body_cut) response.curl = CURLE_OK; // see on_write
  if (response.curl != CURLE_OK) {
    response.curl_error = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(response.curl);
    while (!response.curl_error.empty() && (response.curl_error.back() == '\n' || response.curl_error.back() == '\r')) {
      response.curl_error.pop_back();
    }
  }
  long status = 0;
  if (curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status != 0) response.status = status;
  char* redirect = nullptr;
  if (curl_easy_getinfo(easy, CURLINFO_REDIRECT_URL, &redirect) == CURLE_OK && redirect != nullptr) {
    response.redirect_url = redirect;
  }
  return response;
}

// The request loop: authentication (anonymous first, then what the 401 challenge asks
// for), redirects, and retries of transient failures with backoff.
//
// Redirects are followed here rather than by curl (CURLOPT_FOLLOWLOCATION): the
// Authorization header is ours, and curl would send a custom header to whatever host a
// redirect names. Each hop gets credentials only when it goes to the registry's own
// origin; blob storage behind a redirect gets a presigned URL and no credentials.
//
// Without --plain-http nothing leaves over plain HTTP: a redirect (or an upload location,
// a next-page link) to an http:// URL is refused before anything is sent there, since
// anyone on the path could read and change that request and its answer.
Response Session::execute(const Call& call, Request request) {
  const std::string first_url = request.url;
  const std::string first_origin = origin_of(first_url);
  const std::string preset_authorization = request.authorization;
  int attempt = 1;
  int auth_rounds = 0;
  int redirects = 0;
  std::string redirected_from;
  for (;;) {
    if (!options.tls.plain_http && lower(request.url.substr(0, 7)) == "http://") {
      throw core::RegistryError(
          scrub(call.what + " failed: refusing plain HTTP: " +
                (redirects > 0 ? redact_url(redirected_from) + " redirects to "
                               : std::string("the registry points to ")) +
                redact_url(request.url)),
          "without --plain-http ferry sends nothing for " + host + " over unencrypted HTTP: have the registry (or "
          "its blob storage) answer with https:// URLs, or pass --plain-http if this registry is meant to be reached "
          "over plain HTTP (for a Helm chart repository: give its http:// URL)");
    }
    const std::string hop_origin = origin_of(request.url);
    Authorization sent;
    if (call.authenticate) {
      if (hop_origin == base_origin) sent = authorization_for(call);
      request.authorization = sent.value;
    } else {
      request.authorization = hop_origin == first_origin ? preset_authorization : std::string();
    }
    ++requests;
    Response response = perform(request);
    if (response.body_over_limit) {
      const std::size_t limit = request.body_limit;
      const std::string limit_text =
          limit >= (1u << 20) ? std::to_string(limit >> 20) + " MiB" : std::to_string(limit >> 10) + " KiB";
      throw core::RegistryError(scrub(call.what + " failed: the answer of " + method_name(request.method) + " " +
                                      redact_url(request.url) + " is larger than " + limit_text),
                                "a registry does not send answers this large; check the registry address");
    }
    const Outcome outcome = classify(response);
    switch (outcome) {
    case Outcome::success:
    case Outcome::not_found:
      return response;
    case Outcome::redirect:
      if ((request.method == Method::get || request.method == Method::head) && !response.redirect_url.empty() &&
          redirects < k_max_redirects) {
        ++redirects;
        log.debug(
            scrub("following redirect of " + redact_url(request.url) + " to " + redact_url(response.redirect_url)));
        redirected_from = request.url;
        request.url = response.redirect_url;
        continue;
      }
      break;
    case Outcome::unauthorized:
      if (call.authenticate && hop_origin == base_origin && auth_rounds < 2 && answer_challenge(call, response, sent)) {
        ++auth_rounds;
        continue;
      }
      break;
    case Outcome::transient:
      if (call.retry == Retry::caller) return response;
      if (attempt < options.max_attempts) {
        wait_before_retry(call, request, response, attempt);
        ++attempt;
        request.url = first_url; // a redirect target (presigned URL) may have expired
        redirects = 0;
        continue;
      }
      break;
    default:
      break;
    }
    fail(call, request, response, attempt);
  }
}

std::string Session::describe(const Response& response) const {
  if (response.curl != CURLE_OK && classify(response) == Outcome::tls) {
    return "TLS handshake with " + host + " failed: " + response.curl_error;
  }
  if (response.curl != CURLE_OK) return response.curl_error;
  std::string text = "HTTP " + std::to_string(response.status);
  if (!response.reason.empty()) text += " " + response.reason;
  const std::string registry_error = registry_error_text(response.body);
  if (!registry_error.empty()) text += ": " + registry_error;
  return text;
}

void Session::fail(const Call& call, const Request& request, const Response& response, int attempts) {
  const Outcome outcome = classify(response);
  std::string message =
      call.what + " failed: " + describe(response) + " (" + method_name(request.method) + " " + redact_url(request.url);
  if (attempts > 1) message += ", " + std::to_string(attempts) + " attempts";
  message += ")";
  throw core::RegistryError(scrub(std::move(message)), scrub(hint_for(outcome, call, response)));
}

std::string Session::hint_for(Outcome outcome, const Call& call, const Response& response) {
  bool have_credentials = false;
  {
    std::lock_guard lock(auth_mutex);
    have_credentials = credentials.has_value() || options.credentials.has_value();
  }
  bool insufficient_scope = false;
  for (const auto& field : response.headers_named("www-authenticate")) {
    if (const auto challenges = parse_challenges(field)) {
      for (const auto& c : *challenges) insufficient_scope |= c.param("error") == "insufficient_scope";
    }
  }
  switch (outcome) {
  case Outcome::unauthorized: {
    if (insufficient_scope) {
      return "the token " + host + " granted does not allow " +
             (call.access == Access::push ? "pushing to " : "pulling ") + call.repository +
             ": check the account's permissions" +
             (have_credentials ? std::string() : std::string(", or pass --username and --password-stdin"));
    }
    if (have_credentials) {
      return host + " refused the credentials: check --username and --password-stdin, or the entry for " + host +
             " in $REGISTRY_AUTH_FILE, $DOCKER_CONFIG/config.json or ~/.docker/config.json";
    }
    return host + " wants credentials: pass --username and --password-stdin, or log in with `docker login " + host +
           "` (ferry reads ~/.docker/config.json)";
  }
  case Outcome::forbidden:
    if (call.access == Access::push) {
      return "the account may not push to " + call.repository + " on " + host +
             ": check its push permission (or whether the registry is read-only)";
    }
    return "the account may not pull " + call.repository + " from " + host +
           ": check its permissions, or the credentials (--username, --password-stdin)";
  case Outcome::not_found:
    return call.not_found_hint;
  case Outcome::too_large:
    return "the registry or a proxy in front of it limits the request body size: lower the upload chunk size, or "
           "raise the limit (nginx: client_max_body_size)";
  case Outcome::transient:
    if (response.curl == CURLE_COULDNT_CONNECT) {
      return "check that the registry runs at " + base +
             " and is reachable from here (proxy settings: HTTPS_PROXY, NO_PROXY)";
    }
    if (!options.tls.plain_http && options.tls.cert_file.empty() && response.status == 0 &&
        (response.curl == CURLE_RECV_ERROR || response.curl == CURLE_SEND_ERROR)) {
      // A registry that requires client certificates may close the connection right after
      // the handshake before its alert can be read ("getpeername() failed", errno 107).
      return "the registry closed the connection right after the TLS handshake; if it requires client "
             "certificates (mutual TLS), pass --cert-file and --key-file, else check its logs";
    }
    if (response.curl == CURLE_OPERATION_TIMEDOUT) {
      return "the registry stopped answering for " + std::to_string(options.stall_timeout.count()) +
             " s at a time; check its load and logs, or allow more with --timeout (and --retries)";
    }
    return "the registry or the network kept failing; try again later, or check the registry's logs";
  case Outcome::tls:
    if (response.curl_error.find("wrong version number") != std::string::npos ||
        response.curl_error.find("packet length too long") != std::string::npos) {
      return host + " does not seem to speak HTTPS: pass --plain-http if it serves plain HTTP";
    }
    if (response.curl == CURLE_SSL_CERTPROBLEM) return "check --cert-file and --key-file (PEM, matching each other)";
    if (client_certificate_refused(response)) {
      if (options.tls.cert_file.empty()) {
        return host + " wants a TLS client certificate (mutual TLS): pass --cert-file and --key-file";
      }
      return host + " refused the client certificate in --cert-file " + options.tls.cert_file.string() +
             ": use one signed by a CA the registry trusts for clients (and not expired)";
    }
    if (response.curl_error.find("expired") != std::string::npos) {
      return "the certificate of " + host + " has expired (or this machine's clock is wrong: check `date`); "
             "renew the registry's certificate";
    }
    // curl (OpenSSL): "no alternative certificate subject name matches target host name",
    // "certificate subject name '...' does not match target host name". The chain is
    // trusted; another CA would not help, and trying without verification is no answer.
    if (response.curl_error.find("subject name") != std::string::npos &&
        response.curl_error.find("target host name") != std::string::npos) {
      return "the certificate of " + host + " is made out for another name: reach the registry by a name the "
             "certificate holds (subjectAltName), or have the certificate reissued for " + host +
             "; if the registry's certificate did not change, something in between may be intercepting the connection";
    }
    // Trusting whatever CA signed it would be wrong when someone in between (a
    // TLS-inspecting proxy, an attacker) presents a certificate of their own.
    if (!options.tls.ca_file.empty()) {
      return host + "'s certificate is not signed by the CA in --ca-file " + options.tls.ca_file.string() +
             " (nor by a system CA); pass the CA that did sign it, unless the registry's certificate did not change: "
             "then something in between may be intercepting the connection";
    }
    if (ca_path.empty()) {
      // The static binary on a host whose CA bundle lives somewhere ferry does not look.
      return "this machine has no CA bundle where ferry looks (SSL_CERT_FILE, /etc/ssl/certs/ca-certificates.crt, "
             "/etc/pki/tls/certs/ca-bundle.crt, /etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem, "
             "/etc/ssl/ca-bundle.pem, /etc/ssl/cert.pem), so no certificate can be verified: set SSL_CERT_FILE to "
             "the CA bundle, or pass the CA that signed " + host + "'s certificate with --ca-file";
    }
    return "pass the CA certificate that signed " + host +
           "'s certificate with --ca-file (or --insecure-skip-tls-verify for a test registry); if the registry's "
           "certificate did not change, something in between may be intercepting the connection";
  case Outcome::unreachable:
    return "check the registry host name " + host + " (and DNS or the proxy settings HTTPS_PROXY, NO_PROXY)";
  case Outcome::failed:
    // Go's TLS servers answer plain HTTP with a bare "HTTP/1.0 400" (no headers, and the
    // body "Client sent an HTTP request to an HTTPS server"); others send TLS bytes that
    // curl reads as HTTP/0.9 or garbage.
    if (options.tls.plain_http &&
        (response.curl == CURLE_UNSUPPORTED_PROTOCOL || response.curl == CURLE_WEIRD_SERVER_REPLY ||
         (response.status == 400 && response.headers.empty()) ||
         response.body.find("HTTP request to an HTTPS server") != std::string::npos)) {
      return host + " seems to speak HTTPS: drop --plain-http";
    }
    if (response.status == 405) {
      return "the registry does not allow this operation (a read-only registry or a pull-through cache?)";
    }
    return {};
  case Outcome::success:
  case Outcome::redirect:
    return {};
  }
  return {};
}

void Session::wait_before_retry(const Call& call, const Request& request, const Response& response, int attempt) {
  // Exponential backoff with full jitter: a random wait up to initial * 2^(attempt-1).
  const auto ceiling = std::min<std::chrono::milliseconds>(
      k_backoff_cap, options.initial_backoff * (std::int64_t{1} << std::min(attempt - 1, 20)));
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::chrono::milliseconds wait(
      std::uniform_int_distribution<std::int64_t>(0, std::max<std::int64_t>(0, ceiling.count()))(rng));
  if (const std::string* retry_after = response.header("retry-after")) {
    if (auto seconds = parse_retry_after(*retry_after, std::time(nullptr), k_retry_after_cap)) {
      wait = std::max<std::chrono::milliseconds>(wait, *seconds);
    }
  }
  ++retries;
  log.warning(scrub(call.what + ": " + describe(response) + " (" + method_name(request.method) + " " +
                    redact_url(request.url) + "); retrying in " + std::to_string(wait.count()) + " ms (attempt " +
                    std::to_string(attempt + 1) + " of " + std::to_string(options.max_attempts) + ")"));
  std::this_thread::sleep_for(wait);
}

// --- authentication ---

const std::optional<Credentials>& Session::resolve_credentials() {
  if (!credentials_resolved) {
    if (options.credentials) {
      credentials = options.credentials;
    } else {
      credentials = find_credentials(host, AuthEnvironment::from_process(), log);
      if (credentials) {
        add_secret(credentials->password);
        add_secret(credentials->identity_token);
        add_secret(core::base64_encode(credentials->username + ":" + credentials->password));
      }
    }
    credentials_resolved = true;
  }
  return credentials;
}

Authorization Session::authorization_for(const Call& call) {
  std::unique_lock lock(auth_mutex);
  switch (scheme) {
  case Scheme::unknown:
    return {}; // anonymous until the registry asks
  case Scheme::basic: {
    const auto& creds = resolve_credentials();
    if (!creds || creds->username.empty() || creds->password.empty()) return {};
    return Authorization{"Basic " + core::base64_encode(creds->username + ":" + creds->password), {}, true};
  }
  case Scheme::bearer:
    break;
  }
  lock.unlock();
  if (auto token = tokens.find(call.scopes, Clock::now())) return Authorization{"Bearer " + *token, *token, false};
  std::string token = fetch_token(call.scopes);
  return Authorization{"Bearer " + token, token, false};
}

// Reacts to a 401: true when the next attempt will carry new credentials or a new token.
bool Session::answer_challenge(const Call& call, const Response& response, const Authorization& sent) {
  std::optional<Challenge> bearer, basic;
  for (const auto& field : response.headers_named("www-authenticate")) {
    const auto challenges = parse_challenges(field);
    if (!challenges) {
      log.debug("ignoring a malformed WWW-Authenticate header from " + host);
      continue;
    }
    for (const auto& c : *challenges) {
      if (c.scheme == "bearer" && !bearer) bearer = c;
      if (c.scheme == "basic" && !basic) basic = c;
    }
  }
  if (bearer && !bearer->param("realm").empty()) {
    ScopeSet scopes = call.scopes;
    std::string wanted = bearer->param("scope");
    for (std::size_t start = 0; start < wanted.size();) {
      std::size_t space = wanted.find(' ', start);
      if (space == std::string::npos) space = wanted.size();
      scopes.add(std::string_view(wanted).substr(start, space - start));
      start = space + 1;
    }
    if (bearer->param("error") == "insufficient_scope" && !sent.bearer_token.empty() && call.scopes.covers(scopes)) {
      return false; // the token was asked for exactly this; the server grants less
    }
    {
      std::lock_guard lock(auth_mutex);
      scheme = Scheme::bearer;
      realm = bearer->param("realm");
      service = bearer->param("service");
    }
    if (!sent.bearer_token.empty()) {
      log.debug("the token for " + host + " was refused (" +
                (bearer->param("error").empty() ? std::string("no reason given") : bearer->param("error")) +
                "); asking for a new one");
      tokens.forget(sent.bearer_token);
    }
    fetch_token(scopes);
    return true;
  }
  if (basic) {
    std::lock_guard lock(auth_mutex);
    if (sent.basic) return false; // the credentials themselves were refused
    scheme = Scheme::basic;
    const auto& creds = resolve_credentials();
    return creds && !creds->username.empty() && !creds->password.empty();
  }
  return false;
}

// Asks the token endpoint (distribution's token authentication spec) for a token
// covering `scopes`, and caches it. Credentials go as Basic on a GET, or, for identity
// tokens, as an OAuth2 refresh-token POST; over plain HTTP only with --plain-http.
std::string Session::fetch_token(const ScopeSet& scopes) {
  std::lock_guard fetch_lock(token_mutex);
  if (auto token = tokens.find(scopes, Clock::now())) return *token; // another thread got it meanwhile
  std::string token_realm, token_service;
  std::optional<Credentials> creds;
  {
    std::lock_guard lock(auth_mutex);
    token_realm = realm;
    token_service = service;
    creds = resolve_credentials();
  }
  const std::vector<std::string> scope_list = scopes.strings();
  std::string scope_text;
  for (const auto& s : scope_list) scope_text += (scope_text.empty() ? "" : " ") + s;
  Call call;
  call.what = "getting a token for " + (scope_text.empty() ? std::string("access") : scope_text) + " from " +
              redact_url(token_realm);
  call.authenticate = false;
  call.not_found_hint = "the registry " + host + " names a token endpoint that does not exist";

  const std::string lower_realm = lower(token_realm);
  const bool plain = lower_realm.rfind("http://", 0) == 0;
  if (!plain && lower_realm.rfind("https://", 0) != 0) {
    throw core::RegistryError("registry " + host + " names an unusable token endpoint \"" + redact_url(token_realm) +
                              "\"");
  }
  // A token (and the credentials that buy it) over plain HTTP is readable, and the token
  // replaceable, by anyone on the path: only where the operator chose plain HTTP.
  if (plain && !options.tls.plain_http) {
    throw core::RegistryError("registry " + host + " names the plain-HTTP token endpoint " + redact_url(token_realm) +
                                  ": refusing to fetch a token without TLS",
                              "configure the registry's token realm with an https:// URL, or pass --plain-http if "
                              "the registry and its token service are meant to be reached over plain HTTP");
  }

  Request request;
  std::string form;
  if (creds && !creds->identity_token.empty()) {
    form = "grant_type=refresh_token&client_id=ferry&refresh_token=" + percent_encode(creds->identity_token);
    if (!token_service.empty()) form += "&service=" + percent_encode(token_service);
    if (!scope_text.empty()) form += "&scope=" + percent_encode(scope_text);
    request.method = Method::post;
    request.url = token_realm;
    request.body = form;
    request.form = true;
    request.headers.push_back("Content-Type: application/x-www-form-urlencoded");
  } else {
    request.url = token_realm;
    if (!token_service.empty()) request.url = append_query(request.url, "service=" + percent_encode(token_service));
    for (const auto& s : scope_list) request.url = append_query(request.url, "scope=" + percent_encode(s));
    if (creds && !creds->username.empty() && !creds->password.empty()) {
      request.authorization = "Basic " + core::base64_encode(creds->username + ":" + creds->password);
    }
  }
  request.body_limit = 1u << 20;
  const Clock::time_point asked = Clock::now();
  Response response = execute(call, std::move(request));
  if (classify(response) == Outcome::not_found) fail(call, make_request(Method::get, token_realm), response);
  std::optional<TokenAnswer> answer = parse_token_answer(response.body);
  if (!answer) {
    throw core::RegistryError(scrub(call.what + " failed: the answer holds no token"),
                              "check that " + redact_url(token_realm) + " is the registry's token service");
  }
  add_secret(answer->token);
  // Refresh a little before the token runs out: a tenth of its lifetime, at most 30 s.
  const auto margin = std::min<std::chrono::seconds>(std::chrono::seconds(30), answer->expires_in / 10);
  tokens.store(scopes, answer->token, asked + answer->expires_in - margin);
  log.debug("got a token for " + (scope_text.empty() ? std::string("access") : scope_text) + " from " +
            redact_url(token_realm));
  return answer->token;
}

Call Session::call_for(std::string what, const std::string& repository, Access access) const {
  Call call;
  call.what = std::move(what);
  call.repository = repository;
  call.access = access;
  if (access == Access::push) {
    call.scopes.add("repository:" + repository, {"pull", "push"});
  } else {
    call.scopes.add("repository:" + repository, {"pull"});
  }
  return call;
}

ClientStats Session::stats() const {
  return ClientStats{requests.load(), retries.load(), bytes_down.load(), bytes_up.load()};
}

} // namespace ferry::registry
