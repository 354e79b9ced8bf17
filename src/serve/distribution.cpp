// The read-only OCI distribution API of `ferry serve`.
// SPDX-License-Identifier: Apache-2.0
#include "serve/distribution.hpp"

#include "core/error.hpp"

#include <nlohmann/json.hpp>

#include <charconv>
#include <limits>

namespace ferry::serve {

namespace {

constexpr std::size_t k_max_page = 10000;

Response json_response(int status, const nlohmann::json& body) {
  Response r;
  r.status = status;
  r.headers.emplace_back("Content-Type", "application/json");
  r.headers.emplace_back("Docker-Distribution-API-Version", "registry/2.0");
  r.body = body.dump() + "\n";
  return r;
}

// The error body of the distribution spec: {"errors":[{"code","message","detail"}]}.
Response error(int status, const std::string& code, const std::string& message, nlohmann::json detail = nullptr) {
  nlohmann::json e = {{"code", code}, {"message", message}};
  e["detail"] = detail.is_null() ? nlohmann::json::object() : std::move(detail);
  return json_response(status, {{"errors", nlohmann::json::array({e})}});
}

bool parse_number(std::string_view text, std::uint64_t& value) {
  if (text.empty() || text.size() > 19) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size();
}

// n and last of a paginated list; false (and `bad` set) when n is not a number in range.
struct Page {
  std::size_t n = std::numeric_limits<std::size_t>::max();
  std::string last;
};
std::optional<Page> page_of(const Request& request, std::string& problem) {
  Page page;
  if (const auto n = request.query_value("n")) {
    std::uint64_t value = 0;
    if (!parse_number(*n, value) || value > k_max_page) {
      problem = "n must be a whole number from 0 to " + std::to_string(k_max_page) + ", not '" + *n + "'";
      return std::nullopt;
    }
    page.n = static_cast<std::size_t>(value);
  }
  if (const auto last = request.query_value("last")) page.last = *last;
  return page;
}

// Fills `into` with the names after page.last, at most page.n; adds a Link header to
// the next page when there are more.
template <typename Names>
nlohmann::json paginate(const Names& names, const Page& page, const std::string& path, Response& link_holder) {
  nlohmann::json out = nlohmann::json::array();
  auto it = page.last.empty() ? names.begin() : names.upper_bound(page.last);
  for (; it != names.end() && out.size() < page.n; ++it) out.push_back(it->first);
  if (it != names.end() && !out.empty() && page.n != std::numeric_limits<std::size_t>::max()) {
    link_holder.headers.emplace_back("Link", "<" + path + "?n=" + std::to_string(page.n) +
                                                 "&last=" + out.back().get<std::string>() + ">; rel=\"next\"");
  }
  return out;
}

// Splits /v2/NAME/(manifests|blobs)/REF and /v2/NAME/tags/list.
struct Route {
  enum class Kind { base, catalog, manifest, blob, tags, unknown } kind = Kind::unknown;
  std::string name;
  std::string reference;
};

Route route_of(const std::string& path) {
  Route r;
  if (path == "/v2/" || path == "/v2") {
    r.kind = Route::Kind::base;
    return r;
  }
  if (path == "/v2/_catalog") {
    r.kind = Route::Kind::catalog;
    return r;
  }
  if (path.rfind("/v2/", 0) != 0) return r;
  const std::string rest = path.substr(4);
  static const std::string tags_suffix = "/tags/list";
  if (rest.size() > tags_suffix.size() && rest.compare(rest.size() - tags_suffix.size(), tags_suffix.size(), tags_suffix) == 0) {
    r.kind = Route::Kind::tags;
    r.name = rest.substr(0, rest.size() - tags_suffix.size());
    return r;
  }
  const auto slash = rest.rfind('/');
  if (slash == std::string::npos || slash + 1 == rest.size()) return r;
  const std::string reference = rest.substr(slash + 1);
  const std::string head = rest.substr(0, slash);
  for (const auto& [word, kind] : {std::pair<std::string, Route::Kind>{"/manifests", Route::Kind::manifest},
                                   std::pair<std::string, Route::Kind>{"/blobs", Route::Kind::blob}}) {
    if (head.size() > word.size() && head.compare(head.size() - word.size(), word.size(), word) == 0) {
      r.kind = kind;
      r.name = head.substr(0, head.size() - word.size());
      r.reference = reference;
      return r;
    }
  }
  return r;
}

// Passes the blob through while hashing it; before handing out the last bytes it checks
// the digest, so a blob that changed on disk since it was verified never arrives whole.
class CheckedSource final : public core::Source {
public:
  CheckedSource(std::unique_ptr<core::Source> inner, core::Digest expected, std::uint64_t size)
      : m_inner(std::move(inner)), m_expected(std::move(expected)), m_left(size) {}
  std::size_t read(char* data, std::size_t size) override {
    const std::size_t n = m_inner->read(data, static_cast<std::size_t>(std::min<std::uint64_t>(size, m_left)));
    m_hash.update(data, n);
    m_left -= n;
    if (m_left == 0 && n > 0) {
      const core::Digest actual = m_hash.finish();
      if (actual != m_expected) {
        throw core::IntegrityError("blob " + m_expected.str() + " changed since it was verified: its bytes now hash to " +
                                   actual.str());
      }
    }
    return n;
  }

private:
  std::unique_ptr<core::Source> m_inner;
  core::Digest m_expected;
  std::uint64_t m_left;
  core::Sha256 m_hash;
};

} // namespace

RangeRequest parse_range(const std::string* header, std::uint64_t size) {
  RangeRequest whole;
  if (!header) return whole;
  std::string_view text = *header;
  if (text.rfind("bytes=", 0) != 0) return whole;
  text.remove_prefix(6);
  if (text.find(',') != std::string_view::npos) return whole;
  const auto dash = text.find('-');
  if (dash == std::string_view::npos) return whole;
  const std::string_view from = text.substr(0, dash);
  const std::string_view to = text.substr(dash + 1);
  RangeRequest r;
  r.kind = RangeRequest::Kind::part;
  if (from.empty()) { // bytes=-N: the last N bytes
    std::uint64_t n = 0;
    if (!parse_number(to, n)) return whole;
    if (n == 0 || size == 0) return RangeRequest{RangeRequest::Kind::unsatisfiable, 0, 0};
    r.length = std::min(n, size);
    r.first = size - r.length;
    return r;
  }
  std::uint64_t first = 0;
  if (!parse_number(from, first)) return whole;
  std::uint64_t last = size == 0 ? 0 : size - 1;
  if (!to.empty()) {
    std::uint64_t value = 0;
    if (!parse_number(to, value) || value < first) return whole;
    last = std::min(last, value);
  }
  if (first >= size) return RangeRequest{RangeRequest::Kind::unsatisfiable, 0, 0};
  r.first = first;
  r.length = last - first + 1;
  return r;
}

Distribution::Distribution(Catalog catalog, BlobOpener opener)
    : m_catalog(std::move(catalog)), m_opener(std::move(opener)) {}

Response Distribution::handle(const Request& request) const {
  if (request.method != "GET" && request.method != "HEAD") {
    Response r = error(405, "UNSUPPORTED", "this registry is read-only (ferry serve): " + request.method + " is not supported");
    r.headers.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  const Route route = route_of(request.path);
  switch (route.kind) {
  case Route::Kind::base: return json_response(200, nlohmann::json::object());
  case Route::Kind::catalog: return repositories(request);
  case Route::Kind::unknown: return error(404, "NOT_FOUND", "no such endpoint: " + request.path);
  default: break;
  }
  if (!m_catalog.repositories.count(route.name)) {
    return error(404, "NAME_UNKNOWN", "repository " + route.name + " is not served here", {{"name", route.name}});
  }
  if (route.kind == Route::Kind::tags) return tags(request, route.name);
  if (route.kind == Route::Kind::manifest) return manifest(route.name, route.reference);
  return blob(request, route.reference);
}

Response Distribution::manifest(const std::string& name, const std::string& reference) const {
  std::optional<core::Digest> digest;
  if (reference.find(':') != std::string::npos) {
    digest = core::Digest::try_parse(reference);
    if (!digest) return error(400, "DIGEST_INVALID", "'" + reference + "' is not a sha256 digest");
  } else {
    const auto& tags = m_catalog.repositories.at(name);
    const auto tag = tags.find(reference);
    if (tag == tags.end()) {
      return error(404, "MANIFEST_UNKNOWN", "repository " + name + " has no tag " + reference, {{"tag", reference}});
    }
    digest = tag->second;
  }
  const auto bytes = m_catalog.manifests.find(*digest);
  if (bytes == m_catalog.manifests.end()) {
    return error(404, "MANIFEST_UNKNOWN", "no manifest " + digest->str() + " here", {{"digest", digest->str()}});
  }
  Response r;
  const auto info = m_catalog.blobs.find(*digest);
  r.headers.emplace_back("Content-Type", info != m_catalog.blobs.end() ? info->second.media_type
                                                                        : std::string("application/vnd.oci.image.manifest.v1+json"));
  r.headers.emplace_back("Docker-Content-Digest", digest->str());
  r.headers.emplace_back("Docker-Distribution-API-Version", "registry/2.0");
  r.headers.emplace_back("ETag", "\"" + digest->str() + "\"");
  r.body = bytes->second;
  return r;
}

Response Distribution::blob(const Request& request, const std::string& reference) const {
  const auto digest = core::Digest::try_parse(reference);
  if (!digest) return error(400, "DIGEST_INVALID", "'" + reference + "' is not a sha256 digest");
  const auto info = m_catalog.blobs.find(*digest);
  if (info == m_catalog.blobs.end()) {
    return error(404, "BLOB_UNKNOWN", "no blob " + digest->str() + " here", {{"digest", digest->str()}});
  }
  const std::uint64_t size = info->second.size;
  const RangeRequest range = parse_range(request.header("range"), size);
  if (range.kind == RangeRequest::Kind::unsatisfiable) {
    Response r = error(416, "BLOB_UNKNOWN", "range outside blob " + digest->str() + " of " + std::to_string(size) + " bytes");
    r.headers.emplace_back("Content-Range", "bytes */" + std::to_string(size));
    return r;
  }
  Response r;
  r.headers.emplace_back("Content-Type", "application/octet-stream");
  r.headers.emplace_back("Docker-Content-Digest", digest->str());
  r.headers.emplace_back("Docker-Distribution-API-Version", "registry/2.0");
  r.headers.emplace_back("Accept-Ranges", "bytes");
  r.headers.emplace_back("ETag", "\"" + digest->str() + "\"");
  std::uint64_t first = 0;
  std::uint64_t length = size;
  if (range.kind == RangeRequest::Kind::part) {
    r.status = 206;
    first = range.first;
    length = range.length;
    r.headers.emplace_back("Content-Range", "bytes " + std::to_string(first) + "-" + std::to_string(first + length - 1) +
                                                "/" + std::to_string(size));
  }
  r.length = length;
  if (request.method == "HEAD") {
    r.stream = std::make_unique<core::StringSource>(std::string_view()); // never read: HEAD has no body
    return r;
  }
  const auto manifest = m_catalog.manifests.find(*digest);
  if (manifest != m_catalog.manifests.end()) {
    r.body = manifest->second.substr(first, length);
    r.length = 0;
    return r;
  }
  std::unique_ptr<core::Source> source = m_opener(*digest, first, length);
  if (first == 0 && length == size) source = std::make_unique<CheckedSource>(std::move(source), *digest, size);
  r.stream = std::move(source);
  return r;
}

Response Distribution::tags(const Request& request, const std::string& name) const {
  std::string problem;
  const auto page = page_of(request, problem);
  if (!page) return error(400, "PAGINATION_NUMBER_INVALID", problem);
  Response link;
  const auto& tags = m_catalog.repositories.at(name);
  nlohmann::json list = paginate(tags, *page, "/v2/" + name + "/tags/list", link);
  Response r = json_response(200, {{"name", name}, {"tags", std::move(list)}});
  for (auto& h : link.headers) r.headers.push_back(std::move(h));
  return r;
}

Response Distribution::repositories(const Request& request) const {
  std::string problem;
  const auto page = page_of(request, problem);
  if (!page) return error(400, "PAGINATION_NUMBER_INVALID", problem);
  Response link;
  nlohmann::json list = paginate(m_catalog.repositories, *page, "/v2/_catalog", link);
  Response r = json_response(200, {{"repositories", std::move(list)}});
  for (auto& h : link.headers) r.headers.push_back(std::move(h));
  return r;
}

} // namespace ferry::serve
