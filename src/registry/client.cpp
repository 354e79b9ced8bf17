// The OCI distribution client: pull and push operations over a Session (session.hpp),
// which does the HTTP exchanges, authentication and retries.
// SPDX-License-Identifier: Apache-2.0
#include "registry/client.hpp"

#include "core/error.hpp"
#include "oci/media_types.hpp"
#include "registry/session.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace ferry::registry {

namespace {

constexpr std::size_t k_manifest_limit = 16u << 20; // larger manifests are refused
constexpr std::size_t k_json_limit = 16u << 20;     // tag lists
constexpr int k_max_tag_pages = 100000;
// A broken blob download that delivered at least this much (or the rest of the blob)
// before it broke starts the count of attempts over (get_blob).
constexpr std::uint64_t k_resume_progress = 1u << 20;

constexpr const char* k_manifest_accept =
    "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

// "library/nginx:1.27" or "library/nginx@sha256:…".
std::string display_ref(const std::string& repository, const std::string& reference) {
  return repository + (reference.rfind("sha256:", 0) == 0 ? "@" : ":") + reference;
}

// Sink for get_blob: forwards to the caller's sink while hashing and counting, and stops
// at once when more bytes arrive than the descriptor's size.
class BlobSink final : public core::Sink {
public:
  BlobSink(core::Sink& out, std::uint64_t size, std::string what) : m_out(out), m_size(size), m_what(std::move(what)) {}
  void write(const char* data, std::size_t size) override {
    if (size > m_size - m_count) {
      throw core::IntegrityError(m_what + " is larger than the expected " + std::to_string(m_size) + " bytes",
                                 "the registry holds different content under this digest; check the image source");
    }
    m_out.write(data, size);
    m_hash.update(data, size);
    m_count += size;
  }
  using Sink::write;
  std::uint64_t count() const noexcept { return m_count; }
  core::Digest finish() { return m_hash.finish(); }

private:
  core::Sink& m_out;
  std::uint64_t m_size;
  std::string m_what;
  core::Sha256 m_hash;
  std::uint64_t m_count = 0;
};

// Fills `buffer` with exactly `size` bytes of `from` (ExactSource throws when it ends early).
void read_exactly(core::Source& from, std::string& buffer, std::size_t size) {
  buffer.resize(size);
  std::size_t filled = 0;
  while (filled < size) {
    const std::size_t n = from.read(buffer.data() + filled, size - filled);
    if (n == 0) throw core::IntegrityError("blob source ended early");
    filled += n;
  }
}

} // namespace

// The operations' helpers for uploads; the HTTP side is the Session.
struct Client::Impl : Session {
  using Session::Session;

  std::string start_upload(const Call& call);
  void cancel_upload(const Call& call, const std::string& location);
  void push_monolithic(const Call& call, const std::string& digest_param, const std::string& buffer);
  // `hashed` (which reads `body`) checks the content before the upload completes; null
  // for ContentCheck::trusted.
  void push_chunked(const Call& call, const core::Digest& digest, std::uint64_t size, core::Source& body,
                    core::HashingSource* hashed);
  void finish_upload(const Call& call, const std::string& location, const core::Digest& digest);
};

std::string Client::Impl::start_upload(const Call& call) {
  Request request = make_request(Method::post, url(call.repository, "blobs/uploads/"));
  Call start = call;
  start.retry = Retry::transient; // no body yet: always safe to send again
  start.not_found_hint = "the registry does not accept uploads to " + call.repository;
  Response response = execute(start, request);
  if (classify(response) == Outcome::not_found) fail(start, request, response);
  const std::string* location = response.header("location");
  const std::string resolved = location ? resolve_url(request.url, *location) : std::string();
  if (resolved.empty()) {
    throw core::RegistryError(scrub(call.what + " failed: the registry started an upload without a usable Location (" +
                                    std::string("POST ") + redact_url(request.url) + ")"));
  }
  return resolved;
}

// Abandons an upload session; failures do not matter (sessions expire on their own).
void Client::Impl::cancel_upload(const Call& call, const std::string& location) {
  Call cancel = call;
  cancel.what = "cancelling an upload to " + call.repository;
  cancel.retry = Retry::caller;
  try {
    execute(cancel, make_request(Method::del, location));
  } catch (const core::Error& e) {
    log.debug(scrub(std::string("cancelling an upload session failed (ignored): ") + e.what()));
  }
}

void Client::Impl::push_monolithic(const Call& call, const std::string& digest_param, const std::string& buffer) {
  Call put = call;
  put.retry = Retry::caller; // a broken PUT leaves the session's state unknown: start a new one
  put.not_found_hint = "the upload session vanished; run the command again";
  for (int attempt = 1;; ++attempt) {
    const std::string location = start_upload(call);
    Request request = make_request(Method::put, append_query(location, digest_param));
    request.headers.push_back("Content-Type: application/octet-stream");
    request.body = buffer;
    Response response = execute(put, request);
    const Outcome outcome = classify(response);
    if (outcome == Outcome::success) return;
    if (outcome != Outcome::transient || attempt >= options.max_attempts) fail(put, request, response, attempt);
    cancel_upload(call, location);
    wait_before_retry(put, request, response, attempt);
  }
}

// Chunked upload (distribution spec "Pushing a blob in chunks"): PATCH each chunk with
// its Content-Range and follow each answer's Location. After a broken PATCH the upload
// session says (GET, Range: 0-END) how much arrived; the rest of the chunk, still in
// memory, is sent from there.
void Client::Impl::push_chunked(const Call& call, const core::Digest& digest, std::uint64_t size,
                                core::Source& body, core::HashingSource* hashed) {
  std::string location = start_upload(call);
  Call patch = call;
  patch.retry = Retry::caller;
  patch.not_found_hint = "the upload session vanished (it may have expired); run the command again";
  Call status_call = call;
  status_call.not_found_hint = patch.not_found_hint;
  std::string chunk;
  std::uint64_t offset = 0;
  while (offset < size) {
    const std::size_t length = static_cast<std::size_t>(std::min<std::uint64_t>(options.chunk_size, size - offset));
    read_exactly(body, chunk, length);
    std::size_t sent = 0;
    int attempt = 1;
    while (sent < length) {
      Request request = make_request(Method::patch, location);
      request.headers.push_back("Content-Type: application/octet-stream");
      request.headers.push_back("Content-Range: " + std::to_string(offset + sent) + "-" +
                                std::to_string(offset + length - 1));
      request.body = std::string_view(chunk).substr(sent);
      Response response = execute(patch, request);
      const Outcome outcome = classify(response);
      if (outcome == Outcome::success) {
        if (const std::string* next = response.header("location")) {
          const std::string resolved = resolve_url(location, *next);
          if (!resolved.empty()) location = resolved;
        }
        sent = length;
        break;
      }
      if (outcome != Outcome::transient || attempt >= options.max_attempts) fail(patch, request, response, attempt);
      wait_before_retry(patch, request, response, attempt);
      ++attempt;
      // How much of the chunk arrived?
      Request status_request = make_request(Method::get, location);
      Response status = execute(status_call, status_request);
      if (classify(status) == Outcome::not_found) fail(status_call, status_request, status);
      const std::string* range = status.header("range");
      const std::optional<std::uint64_t> have = range ? parse_upload_range(*range) : std::optional<std::uint64_t>(0);
      if (!have || *have < offset || *have > offset + length) {
        throw core::RegistryError(scrub(call.what + " failed: after a broken transfer the upload session holds " +
                                        (have ? std::to_string(*have) : std::string("an unreadable number of")) +
                                        " bytes, which ferry cannot resume from (chunk " + std::to_string(offset) +
                                        "-" + std::to_string(offset + length - 1) + ")"),
                                  "run the command again");
      }
      sent = static_cast<std::size_t>(*have - offset);
      if (const std::string* next = status.header("location")) {
        const std::string resolved = resolve_url(location, *next);
        if (!resolved.empty()) location = resolved;
      }
      log.debug("resuming the upload of " + digest.str() + " at byte " + std::to_string(*have));
    }
    offset += length;
  }
  const core::Digest actual = hashed ? hashed->finish() : digest;
  if (actual != digest) {
    cancel_upload(call, location);
    throw core::IntegrityError("blob " + digest.str() + " to push to " + call.repository + " has content of digest " +
                                   actual.str(),
                               "the data changed after it was verified; verify the bundle again");
  }
  finish_upload(call, location, digest);
}

// The final PUT ?digest= without a body. It is idempotent enough to retry: if an earlier
// attempt completed without its answer arriving, the session is gone (404) and the blob
// is there.
void Client::Impl::finish_upload(const Call& call, const std::string& location, const core::Digest& digest) {
  Request request = make_request(Method::put, append_query(location, "digest=" + percent_encode(digest.str())));
  request.headers.push_back("Content-Type: application/octet-stream");
  Call put = call;
  put.not_found_hint = "the upload session vanished (it may have expired); run the command again";
  Response response = execute(put, request);
  if (classify(response) == Outcome::not_found) {
    Call head = call_for("checking blob " + digest.str() + " in " + call.repository, call.repository, Access::push);
    Response exists = execute(head, make_request(Method::head, url(call.repository, "blobs/" + digest.str())));
    if (classify(exists) == Outcome::success) return;
    fail(put, request, response);
  }
}

Client::Client(std::string host, ClientOptions options, core::LogSink& log)
    : m_impl(std::make_unique<Impl>(std::move(host), std::move(options), log)) {}

Client::~Client() = default;

const std::string& Client::host() const noexcept { return m_impl->host; }

std::string Client::endpoint() const { return m_impl->base; }

ManifestData Client::get_manifest(const std::string& repository, const std::string& reference) {
  Impl& d = *m_impl;
  const std::string name = display_ref(repository, reference);
  Call call = d.call_for("pulling manifest " + name, repository, Access::pull);
  call.not_found_hint = "check the repository and the tag or digest (`skopeo list-tags docker://" + d.host + "/" +
                        repository + "` lists the tags)";
  Request request = make_request(Method::get, d.url(repository, "manifests/" + reference));
  request.headers.push_back(k_manifest_accept);
  request.body_limit = k_manifest_limit;
  Response response = d.execute(call, request);
  if (classify(response) == Outcome::not_found) d.fail(call, request, response);

  ManifestData data;
  const std::string* content_type = response.header("content-type");
  data.media_type = manifest_media_type(content_type ? *content_type : std::string(), response.body,
                                        "manifest " + name + " from " + d.base);
  data.digest = core::sha256_of(response.body);
  data.size = response.body.size();
  if (auto wanted = core::Digest::try_parse(reference); wanted && *wanted != data.digest) {
    throw core::IntegrityError("manifest " + repository + "@" + wanted->str() + " from " + d.base +
                                   " does not match its digest (expected " + wanted->str() + ", actual " +
                                   data.digest.str() + ")",
                               "the registry or a proxy in between altered the manifest; check the registry");
  }
  if (const std::string* header = response.header("docker-content-digest")) {
    if (auto claimed = core::Digest::try_parse(trim(*header))) {
      if (*claimed != data.digest) {
        throw core::IntegrityError("registry " + d.base + " says manifest " + name + " has digest " + claimed->str() +
                                       ", but its content has digest " + data.digest.str(),
                                   "the registry or a proxy in between altered the manifest; check the registry");
      }
    } else {
      d.log.debug("ignoring Docker-Content-Digest \"" + *header + "\" of " + name + " (not sha256)");
    }
  }
  data.bytes = std::move(response.body);
  return data;
}

std::optional<ManifestData> Client::head_manifest(const std::string& repository, const std::string& reference) {
  Impl& d = *m_impl;
  const std::string name = display_ref(repository, reference);
  Call call = d.call_for("checking manifest " + name, repository, Access::pull);
  Request request = make_request(Method::head, d.url(repository, "manifests/" + reference));
  request.headers.push_back(k_manifest_accept);
  Response response = d.execute(call, request);
  if (classify(response) == Outcome::not_found) return std::nullopt;

  const std::string* content_type = response.header("content-type");
  const std::string type = lower(
      trim(content_type ? std::string_view(*content_type).substr(0, content_type->find(';')) : std::string_view()));
  if (is_schema1(type)) manifest_media_type(type, {}, "manifest " + name + " from " + d.base); // throws
  const bool generic =
      type.empty() || type == "application/json" || type == "text/plain" || type == "application/octet-stream";
  const std::optional<core::Digest> wanted = core::Digest::try_parse(reference);
  std::optional<core::Digest> digest;
  if (const std::string* header = response.header("docker-content-digest")) {
    digest = core::Digest::try_parse(trim(*header));
  }
  if (wanted && digest && *digest != *wanted) {
    throw core::IntegrityError("registry " + d.base + " says manifest " + name + " has digest " + digest->str(),
                               "the registry or a proxy in between is inconsistent; check the registry");
  }
  if (!digest) digest = wanted;
  std::optional<std::uint64_t> size;
  if (const std::string* length = response.header("content-length")) {
    try {
      size = std::stoull(*length);
    } catch (const std::exception&) {
      size.reset();
    }
  }
  // Without a digest, a specific type or a size, only the content can tell.
  if (!digest || generic || !size) return get_manifest(repository, reference);
  ManifestData data;
  data.media_type = type;
  data.digest = *digest;
  data.size = *size;
  return data;
}

void Client::get_blob(const std::string& repository, const core::Digest& digest, std::uint64_t size, core::Sink& out) {
  Impl& d = *m_impl;
  const std::string what = "pulling blob " + digest.str() + " of " + repository;
  Call call = d.call_for(what, repository, Access::pull);
  call.retry = Retry::caller; // resumed here with Range
  call.not_found_hint =
      "the registry does not hold this blob in " + repository + "; check that the image is complete in the registry";
  BlobSink sink(out, size, "blob " + digest.str() + " of " + repository + " from " + d.base);
  int attempt = 1;
  for (;;) {
    const std::uint64_t start = sink.count();
    Request request = make_request(Method::get, d.url(repository, "blobs/" + digest.str()));
    request.sink = &sink;
    if (start > 0) request.headers.push_back("Range: bytes=" + std::to_string(start) + "-");
    request.on_body = [&](const Response& r) {
      if (start == 0) return; // a 200 or a 206 from byte 0: both fine
      if (r.status != 206) {
        throw core::RegistryError(d.scrub(what + " failed: the transfer broke after " + std::to_string(start) + " of " +
                                          std::to_string(size) + " bytes, and " + d.base +
                                          " cannot resume it (it answered a Range request with HTTP " +
                                          std::to_string(r.status) + ")"),
                                  "run the command again; blobs already fetched are kept");
      }
      const std::string* range = r.header("content-range");
      const std::optional<std::uint64_t> first = range ? parse_content_range_start(*range) : std::nullopt;
      if (!first || *first != start) {
        throw core::RegistryError(d.scrub(what + " failed: asked to resume at byte " + std::to_string(start) +
                                          ", the registry answered Content-Range \"" + (range ? *range : "") + "\""),
                                  "run the command again");
      }
    };
    Response response = d.execute(call, request);
    const Outcome outcome = classify(response);
    if (outcome == Outcome::not_found) d.fail(call, request, response);
    if (outcome == Outcome::success && sink.count() == size) break;
    if (outcome == Outcome::success) {
      // A complete answer (a broken one is a curl error: Content-Length or chunking tell)
      // with fewer bytes than the descriptor says: the blob is not what was expected.
      throw core::IntegrityError("blob " + digest.str() + " of " + repository + " from " + d.base + " has " +
                                     std::to_string(sink.count()) + " bytes, expected " + std::to_string(size),
                                 "the image's manifest and the registry's blob disagree; check the image source");
    }
    // Progress lets the attempts count again from here, but only real progress: a server
    // that dribbles a few bytes per connection before it stalls or cuts would otherwise
    // be asked again forever, one Range request after the other.
    if (sink.count() - start >= std::min<std::uint64_t>(k_resume_progress, size - start)) attempt = 1;
    if (attempt >= d.options.max_attempts) d.fail(call, request, response, attempt);
    d.wait_before_retry(call, request, response, attempt);
    ++attempt;
  }
  const core::Digest actual = sink.finish();
  if (actual != digest) {
    throw core::IntegrityError("blob of " + repository + " from " + d.base + " has digest " + actual.str() +
                                   ", expected " + digest.str(),
                               "the registry or a proxy in between corrupted the blob; pull again, and check the "
                               "registry's storage");
  }
}

Location Location::split(std::string_view text) {
  while (!text.empty() && text.front() == '/') text.remove_prefix(1);
  while (!text.empty() && text.back() == '/') text.remove_suffix(1);
  const auto slash = text.find('/');
  Location location{std::string(text.substr(0, slash)), {}};
  if (slash != std::string_view::npos) {
    std::string_view prefix = text.substr(slash + 1);
    while (!prefix.empty() && prefix.front() == '/') prefix.remove_prefix(1);
    location.prefix = std::string(prefix);
  }
  return location;
}

std::string Client::get_url(const std::string& url, std::size_t limit, const std::string& what,
                            const std::string& not_found_hint) {
  Impl& d = *m_impl;
  Call call;
  call.what = what;
  call.not_found_hint = not_found_hint;
  Request request = make_request(Method::get, url);
  request.body_limit = limit; // kept in memory: a retry starts with an empty body again
  Response response = d.execute(call, request);
  if (classify(response) != Outcome::success) d.fail(call, request, response);
  return std::move(response.body);
}

void Client::ping() {
  Impl& d = *m_impl;
  Call call;
  call.what = "checking the registry API at " + d.base + "/v2/";
  Request request = make_request(Method::get, d.base + "/v2/");
  Response response = d.execute(call, request);
  if (classify(response) != Outcome::success) d.fail(call, request, response);
}

void Client::probe_push(const std::string& repository) {
  Impl& d = *m_impl;
  const Call call = d.call_for("opening an upload in " + repository, repository, Access::push);
  const std::string location = d.start_upload(call);
  d.cancel_upload(call, location);
}

bool Client::blob_exists(const std::string& repository, const core::Digest& digest) {
  Impl& d = *m_impl;
  Call call = d.call_for("checking blob " + digest.str() + " in " + repository, repository, Access::pull);
  Response response = d.execute(call, make_request(Method::head, d.url(repository, "blobs/" + digest.str())));
  return classify(response) == Outcome::success;
}

bool Client::mount_blob(const std::string& repository, const core::Digest& digest, const std::string& from_repository) {
  Impl& d = *m_impl;
  if (from_repository == repository) return blob_exists(repository, digest);
  Call call = d.call_for("mounting blob " + digest.str() + " from " + from_repository + " into " + repository,
                         repository, Access::push);
  call.scopes.add("repository:" + from_repository, {"pull"});
  call.not_found_hint = "the registry does not accept uploads to " + repository;
  Request request =
      make_request(Method::post, d.url(repository, "blobs/uploads/?mount=" + percent_encode(digest.str()) +
                                                       "&from=" + percent_encode(from_repository)));
  Response response = d.execute(call, request);
  if (classify(response) == Outcome::not_found) d.fail(call, request, response);
  if (response.status == 201) return true;
  // 202: the registry started an ordinary upload instead; it is not needed.
  if (const std::string* location = response.header("location")) {
    const std::string resolved = resolve_url(request.url, *location);
    if (!resolved.empty()) d.cancel_upload(call, resolved);
  }
  return false;
}

void Client::push_blob(const std::string& repository, const core::Digest& digest, std::uint64_t size,
                       core::Source& body, ContentCheck check) {
  Impl& d = *m_impl;
  Call call = d.call_for("pushing blob " + digest.str() + " to " + repository, repository, Access::push);
  core::ExactSource exact(body, size, "blob " + digest.str());
  core::HashingSource hashed(exact);
  if (size <= d.options.chunk_size) {
    std::string buffer;
    if (check == ContentCheck::trusted) {
      read_exactly(exact, buffer, static_cast<std::size_t>(size));
      d.push_monolithic(call, "digest=" + percent_encode(digest.str()), buffer);
      return;
    }
    read_exactly(hashed, buffer, static_cast<std::size_t>(size));
    const core::Digest actual = hashed.finish();
    if (actual != digest) {
      throw core::IntegrityError("blob " + digest.str() + " to push to " + repository + " has content of digest " +
                                     actual.str(),
                                 "the data changed after it was verified; verify the bundle again");
    }
    d.push_monolithic(call, "digest=" + percent_encode(digest.str()), buffer);
    return;
  }
  if (check == ContentCheck::trusted) {
    d.push_chunked(call, digest, size, exact, nullptr);
  } else {
    d.push_chunked(call, digest, size, hashed, &hashed);
  }
}

void Client::put_manifest(const std::string& repository, const std::string& reference, const std::string& media_type,
                          const std::string& bytes) {
  Impl& d = *m_impl;
  const std::string name = display_ref(repository, reference);
  const core::Digest digest = core::sha256_of(bytes);
  if (auto wanted = core::Digest::try_parse(reference); wanted && *wanted != digest) {
    throw core::IntegrityError("manifest to push as " + name + " has content of digest " + digest.str() +
                               " (expected " + wanted->str() + ")");
  }
  Call call = d.call_for("pushing manifest " + name, repository, Access::push);
  call.not_found_hint = "the registry does not accept manifests for " + repository;
  Request request = make_request(Method::put, d.url(repository, "manifests/" + reference));
  request.headers.push_back("Content-Type: " + media_type);
  request.body = bytes;
  Response response = d.execute(call, request);
  if (classify(response) == Outcome::not_found) d.fail(call, request, response);
  const std::string* header = response.header("docker-content-digest");
  if (header == nullptr) {
    d.log.debug("registry " + d.base + " sent no Docker-Content-Digest for manifest " + name);
    return;
  }
  const auto claimed = core::Digest::try_parse(trim(*header));
  if (!claimed || *claimed != digest) {
    throw core::IntegrityError("registry " + d.base + " stored manifest " + name + " as " + *header + ", expected " +
                                   digest.str(),
                               "the registry changed the manifest on the way in (schema conversion?); check its "
                               "configuration");
  }
}

std::vector<std::string> Client::list_tags(const std::string& repository) {
  Impl& d = *m_impl;
  Call call = d.call_for("listing the tags of " + repository, repository, Access::pull);
  std::string next = d.url(repository, "tags/list");
  if (d.options.tags_page_size > 0) next = append_query(next, "n=" + std::to_string(d.options.tags_page_size));
  std::vector<std::string> tags;
  for (int page = 0; page < k_max_tag_pages && !next.empty(); ++page) {
    Request request = make_request(Method::get, next);
    request.body_limit = k_json_limit;
    Response response = d.execute(call, request);
    if (classify(response) == Outcome::not_found) return {}; // no such repository: no tags
    nlohmann::json doc;
    try {
      doc = nlohmann::json::parse(response.body);
    } catch (const nlohmann::json::exception&) {
      doc = nullptr;
    }
    const auto it = doc.is_object() ? doc.find("tags") : doc.end();
    if (!doc.is_object() || (it != doc.end() && !it->is_array() && !it->is_null())) {
      throw core::RegistryError(
          d.scrub(call.what + " failed: the answer is not a tag list (GET " + redact_url(request.url) + ")"));
    }
    if (it != doc.end() && it->is_array()) {
      for (const auto& tag : *it) {
        if (tag.is_string()) tags.push_back(tag.get<std::string>());
      }
    }
    next.clear();
    if (const std::string* link = response.header("link")) {
      if (auto target = parse_link_next(*link)) {
        const std::string resolved = resolve_url(request.url, *target);
        if (!resolved.empty() && resolved != request.url) next = resolved;
      }
    }
  }
  return tags;
}

std::vector<std::string> Client::list_repositories() {
  Impl& d = *m_impl;
  Call call;
  call.what = "listing the repositories of " + d.host + " (catalog)";
  call.scopes.add("registry:catalog", {"*"}); // the distribution token spec's catalog scope
  call.not_found_hint = "this registry has no catalog API; name the repositories with --repos (or --bundle)";
  std::string next = d.base + "/v2/_catalog";
  if (d.options.tags_page_size > 0) next = append_query(next, "n=" + std::to_string(d.options.tags_page_size));
  std::vector<std::string> repositories;
  for (int page = 0; page < k_max_tag_pages && !next.empty(); ++page) {
    Request request = make_request(Method::get, next);
    request.body_limit = k_json_limit;
    Response response = d.execute(call, request);
    if (classify(response) == Outcome::not_found) d.fail(call, request, response);
    nlohmann::json doc;
    try {
      doc = nlohmann::json::parse(response.body);
    } catch (const nlohmann::json::exception&) {
      doc = nullptr;
    }
    const auto it = doc.is_object() ? doc.find("repositories") : doc.end();
    if (!doc.is_object() || (it != doc.end() && !it->is_array() && !it->is_null())) {
      throw core::RegistryError(
          d.scrub(call.what + " failed: the answer is not a repository list (GET " + redact_url(request.url) + ")"));
    }
    if (it != doc.end() && it->is_array()) {
      for (const auto& name : *it) {
        if (name.is_string()) repositories.push_back(name.get<std::string>());
      }
    }
    next.clear();
    if (const std::string* link = response.header("link")) {
      if (auto target = parse_link_next(*link)) {
        const std::string resolved = resolve_url(request.url, *target);
        if (!resolved.empty() && resolved != request.url) next = resolved;
      }
    }
  }
  return repositories;
}

ClientStats Client::stats() const { return m_impl->stats(); }

} // namespace ferry::registry
