// RECEIPT.json (de)serialisation and signature check. Keys are sorted by nlohmann::json's
// std::map, so the bytes depend only on the content.
// SPDX-License-Identifier: Apache-2.0
#include "bundle/receipt.hpp"

#include "core/encoding.hpp"
#include "core/error.hpp"

#include <nlohmann/json.hpp>

#include <set>

namespace ferry::bundle {

using nlohmann::json;

const ReceiptBlob* Receipt::find_blob(const core::Digest& digest) const {
  for (const auto& b : blobs) {
    if (b.digest == digest) return &b;
  }
  return nullptr;
}

std::string to_json(const Receipt& r) {
  json j;
  j["receiptVersion"] = r.receipt_version;
  j["mediaType"] = k_receipt_media_type;
  j["registry"] = r.registry;
  j["created"] = r.created;
  j["tool"] = {{"name", "ferry"}, {"version", r.tool_version}};
  if (r.signer) j["signer"] = {{"keyId", r.signer->key_id}, {"algorithm", r.signer->algorithm}};
  json repositories = json::array();
  for (const auto& repo : r.repositories) {
    json tags = json::object();
    for (const auto& [tag, digest] : repo.tags) tags[tag] = digest.str();
    json manifests = json::array();
    for (const auto& m : repo.manifests) {
      manifests.push_back({{"digest", m.digest.str()}, {"mediaType", m.media_type}, {"size", m.size}});
    }
    repositories.push_back({{"name", repo.name}, {"tags", std::move(tags)}, {"manifests", std::move(manifests)}});
  }
  j["repositories"] = std::move(repositories);
  json blobs = json::array();
  for (const auto& b : r.blobs) {
    blobs.push_back({{"digest", b.digest.str()}, {"size", b.size}, {"repositories", b.repositories}});
  }
  j["blobs"] = std::move(blobs);
  json problems = json::array();
  for (const auto& p : r.problems) {
    problems.push_back({{"repository", p.repository}, {"reference", p.reference}, {"problem", p.problem}});
  }
  j["problems"] = std::move(problems);
  return j.dump() + "\n";
}

namespace {

// Typed field access naming the field in every error: a receipt is carried across the
// air gap and may have been edited on the way.
class Fields {
public:
  Fields(const json& object, std::string where, const std::string& what)
      : m_object(object), m_where(std::move(where)), m_what(what) {
    if (!m_object.is_object()) fail("is not a JSON object");
  }
  const json& field(const char* key) const {
    const auto it = m_object.find(key);
    if (it == m_object.end()) fail(std::string("has no field '") + key + "'");
    return *it;
  }
  bool has(const char* key) const { return m_object.contains(key) && !m_object.at(key).is_null(); }
  std::string string(const char* key) const {
    const json& v = field(key);
    if (!v.is_string()) fail_field(key, "is not a string");
    return v.get<std::string>();
  }
  core::Digest digest(const char* key) const { return parse_digest(field(key), key); }
  core::Digest parse_digest(const json& v, const std::string& key) const {
    const auto d = v.is_string() ? core::Digest::try_parse(v.get<std::string>()) : std::nullopt;
    if (!d) fail_field(key, "is not a sha256 digest: " + v.dump().substr(0, 80));
    return *d;
  }
  std::uint64_t size(const char* key) const {
    const json& v = field(key);
    if (!v.is_number_unsigned()) fail_field(key, "is not a non-negative whole number that fits in 64 bits");
    return v.get<std::uint64_t>();
  }
  const json& array(const char* key) const {
    const json& v = field(key);
    if (!v.is_array()) fail_field(key, "is not a list");
    return v;
  }
  std::vector<std::string> strings(const char* key) const {
    std::vector<std::string> out;
    for (const auto& s : array(key)) {
      if (!s.is_string()) fail_field(key, "holds something that is not a string");
      out.push_back(s.get<std::string>());
    }
    return out;
  }
  std::string item(const char* key, std::size_t i) const { return m_where + "." + key + "[" + std::to_string(i) + "]"; }
  const std::string& what() const noexcept { return m_what; }

  [[noreturn]] void fail(const std::string& problem) const {
    throw core::IntegrityError(m_what + ": " + m_where + " " + problem,
                               "take the inventory again inside the air gap with `ferry inventory`, and carry it out unchanged");
  }
  [[noreturn]] void fail_field(const std::string& key, const std::string& problem) const {
    fail_at(m_where + "." + key, problem);
  }
  [[noreturn]] void fail_at(const std::string& where, const std::string& problem) const {
    throw core::IntegrityError(m_what + ": " + where + " " + problem,
                               "take the inventory again inside the air gap with `ferry inventory`, and carry it out unchanged");
  }

private:
  const json& m_object;
  std::string m_where;
  const std::string& m_what;
};

} // namespace

Receipt parse_receipt(std::string_view bytes, const std::string& what) {
  json j;
  try {
    j = json::parse(bytes.begin(), bytes.end());
  } catch (const json::exception& e) {
    throw core::IntegrityError(what + " is not valid JSON: " + e.what(), "pass a RECEIPT.json written by `ferry inventory`");
  }
  const Fields top(j, "document", what);
  const json& version = top.field("receiptVersion");
  if (!version.is_number_integer()) top.fail_field("receiptVersion", "is not a whole number");
  if (version.get<long long>() != k_receipt_version) {
    throw core::IntegrityError(what + " has receipt version " + version.dump() + "; this ferry reads version " +
                                   std::to_string(k_receipt_version),
                               "use a ferry release that reads receipt version " + version.dump());
  }
  if (top.string("mediaType") != k_receipt_media_type) {
    top.fail_field("mediaType", "is not " + std::string(k_receipt_media_type));
  }
  Receipt r;
  r.registry = top.string("registry");
  r.created = top.string("created");
  r.tool_version = Fields(top.field("tool"), "tool", what).string("version");
  if (top.has("signer")) {
    const Fields s(top.field("signer"), "signer", what);
    r.signer = SignerRecord{s.string("keyId"), s.string("algorithm")};
  }
  const json& repositories = top.array("repositories");
  for (std::size_t i = 0; i < repositories.size(); ++i) {
    const Fields f(repositories[i], top.item("repositories", i), what);
    ReceiptRepository repo;
    repo.name = f.string("name");
    const json& tags = f.field("tags");
    if (!tags.is_object()) f.fail_field("tags", "is not an object of tag -> digest");
    for (const auto& [tag, digest] : tags.items()) repo.tags.emplace_back(tag, f.parse_digest(digest, "tags." + tag));
    const json& manifests = f.array("manifests");
    for (std::size_t k = 0; k < manifests.size(); ++k) {
      const Fields m(manifests[k], f.item("manifests", k), what);
      repo.manifests.push_back(ReceiptManifest{m.digest("digest"), m.string("mediaType"), m.size("size")});
    }
    r.repositories.push_back(std::move(repo));
  }
  const json& blobs = top.array("blobs");
  std::set<core::Digest> seen;
  for (std::size_t i = 0; i < blobs.size(); ++i) {
    const Fields f(blobs[i], top.item("blobs", i), what);
    ReceiptBlob b{f.digest("digest"), f.size("size"), f.strings("repositories")};
    if (!seen.insert(b.digest).second) f.fail_field("digest", "lists blob " + b.digest.str() + " a second time");
    r.blobs.push_back(std::move(b));
  }
  if (top.has("problems")) {
    const json& problems = top.array("problems");
    for (std::size_t i = 0; i < problems.size(); ++i) {
      const Fields f(problems[i], top.item("problems", i), what);
      r.problems.push_back(ReceiptProblem{f.string("repository"), f.string("reference"), f.string("problem")});
    }
  }
  return r;
}

std::string verify_receipt_signature(std::string_view bytes, std::string_view signature_text, const TrustedKeys& trusted,
                                     const std::string& what) {
  std::string text(signature_text);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  const auto signature = core::base64_decode(text);
  if (!signature) throw core::IntegrityError("the signature of " + what + " is not base64 text");
  std::string have;
  for (const auto& id : trusted.key_ids()) have += (have.empty() ? "" : ", ") + id;
  // The bytes are checked before anything in them is believed.
  const PublicKey* key = trusted.signer_of(bytes, *signature);
  if (!key) {
    std::string claimed;
    try {
      const Receipt unverified = parse_receipt(bytes, what);
      if (unverified.signer) claimed = unverified.signer->key_id;
    } catch (const core::Error&) {
    }
    if (!claimed.empty() && !trusted.find(claimed)) {
      throw core::IntegrityError(what + " is signed by key " + claimed + ", which is not among the trusted keys (" +
                                     (have.empty() ? "none given" : have) + ")",
                                 "pass the key that signed the inventory with --base-pubkey");
    }
    throw core::IntegrityError("the signature of " + what + " does not verify with the trusted key" +
                                   (trusted.keys().size() == 1 ? " " : "s ") + have + ": the receipt or its signature was changed",
                               "take the inventory again with `ferry inventory --key`, and carry it out unchanged");
  }
  const Receipt verified = parse_receipt(bytes, what);
  if (!verified.signer || verified.signer->key_id != key->key_id() ||
      verified.signer->algorithm != std::string(to_string(key->type()))) {
    throw core::IntegrityError(what + " names signer " +
                               (verified.signer ? verified.signer->key_id + " (" + verified.signer->algorithm + ")"
                                                : std::string("(none)")) +
                               ", but it was signed by " + key->key_id() + " (" + std::string(to_string(key->type())) + ")");
  }
  return key->key_id();
}

} // namespace ferry::bundle
