// Tests for registry/auth: challenges, credential lookup, scopes, tokens, redaction.
// SPDX-License-Identifier: Apache-2.0
#include "core/encoding.hpp"
#include "core/error.hpp"
#include "registry/auth.hpp"
#include "support/test_support.hpp"

#include <functional>
#include <mutex>
#include <sys/stat.h>

namespace fs = std::filesystem;
using ferry::registry::AuthEnvironment;
using ferry::registry::Challenge;
using ferry::registry::Credentials;
using ferry::registry::find_credentials;
using ferry::registry::parse_challenges;
using ferry::registry::ScopeSet;
using ferry::registry::TokenCache;

namespace {

using ferry::test::CaptureLog;

std::vector<Challenge> parse_ok(std::string_view field) {
  auto challenges = parse_challenges(field);
  REQUIRE_MESSAGE(challenges.has_value(), "did not parse: " << std::string(field));
  return *challenges;
}

// An environment whose only credentials file is `file` (as $REGISTRY_AUTH_FILE) and
// whose PATH is `path`.
// The file is made owner-only, as docker and podman write it (ferry refuses one with
// secrets that others may read).
AuthEnvironment env_with(const fs::path& file, const fs::path& path = {}) {
  std::error_code ec;
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write, ec);
  return AuthEnvironment{.registry_auth_file = file.string(), .docker_config = {}, .home = {}, .path = path.string()};
}

// A fake `docker-credential-NAME` in `bin`: it records the server URL it was given in
// `bin/NAME.asked` and prints `answer` (exit status `status`).
void write_helper(const fs::path& bin, const std::string& name, const std::string& answer, int status = 0) {
  const fs::path script = bin / ("docker-credential-" + name);
  ferry::test::write_file(script, "#!/bin/sh\n"
                                  "test \"$1\" = get || exit 3\n"
                                  "cat > '" +
                                      (bin / (name + ".asked")).string() +
                                      "'\n"
                                      "cat <<'EOF'\n" +
                                      answer + "\nEOF\nexit " + std::to_string(status) + "\n");
  REQUIRE(::chmod(script.c_str(), 0755) == 0);
}

std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const ferry::core::Error& e) {
    return std::string(e.what()) + "\n" + e.hint();
  }
  FAIL("no exception");
  return {};
}

} // namespace

TEST_SUITE("registry") {

TEST_CASE("parse_challenges reads a Bearer challenge with quoted parameters") {
  const auto challenges =
      parse_ok(R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push")");
  REQUIRE(challenges.size() == 1);
  CHECK(challenges[0].scheme == "bearer");
  CHECK(challenges[0].param("realm") == "https://auth.docker.io/token");
  CHECK(challenges[0].param("service") == "registry.docker.io");
  CHECK(challenges[0].param("scope") == "repository:a/b:pull,push");
  CHECK(challenges[0].param("error").empty());
}

TEST_CASE("parse_challenges unescapes quoted strings") {
  const auto challenges = parse_ok(R"(Basic realm="say \"hi\", \\ ok")");
  REQUIRE(challenges.size() == 1);
  CHECK(challenges[0].param("realm") == R"(say "hi", \ ok)");
}

TEST_CASE("parse_challenges is case-insensitive for schemes and parameter names") {
  const auto challenges = parse_ok(R"(BEARER Realm="x", SERVICE=reg)");
  REQUIRE(challenges.size() == 1);
  CHECK(challenges[0].scheme == "bearer");
  CHECK(challenges[0].param("realm") == "x");
  CHECK(challenges[0].param("service") == "reg");
}

TEST_CASE("parse_challenges splits several challenges in one field") {
  SUBCASE("parameters after each scheme") {
    const auto challenges = parse_ok(R"(Basic realm="one", Bearer realm="two",service="s", error="invalid_token")");
    REQUIRE(challenges.size() == 2);
    CHECK(challenges[0].scheme == "basic");
    CHECK(challenges[0].param("realm") == "one");
    CHECK(challenges[0].params.size() == 1);
    CHECK(challenges[1].scheme == "bearer");
    CHECK(challenges[1].param("realm") == "two");
    CHECK(challenges[1].param("error") == "invalid_token");
  }
  SUBCASE("a scheme without parameters, a token68 and extra commas") {
    const auto challenges = parse_ok("Negotiate, , Newauth abc==, Basic realm=x");
    REQUIRE(challenges.size() == 3);
    CHECK(challenges[0].scheme == "negotiate");
    CHECK(challenges[0].params.empty());
    CHECK(challenges[1].scheme == "newauth");
    CHECK(challenges[1].token68 == "abc==");
    CHECK(challenges[2].param("realm") == "x");
  }
}

TEST_CASE("parse_challenges allows white space around '='") {
  const auto challenges = parse_ok("Bearer realm = \"r\" ,\tservice=\"s\"");
  REQUIRE(challenges.size() == 1);
  CHECK(challenges[0].param("realm") == "r");
  CHECK(challenges[0].param("service") == "s");
}

TEST_CASE("parse_challenges rejects malformed fields") {
  for (const char* field : {
           "",                                     // nothing
           "   ",                                  // nothing but space
           R"(Bearer realm="unterminated)",        // open quote
           "Bearer realm=",                        // no value
           "Bearer realm=,service=x",              // no value before the comma
           R"(Bearer realm="a" service="b")",      // no comma between parameters
           R"(Bearer realm="a", realm="b")",       // repeated parameter
           R"(="x")",                              // no scheme
           R"(Bearer realm="a\)",                  // escape at the end
           "Bearer realm=a b",                     // garbage after a value
       }) {
    CAPTURE(field);
    CHECK_FALSE(parse_challenges(field).has_value());
  }
}

TEST_CASE("find_auth_file prefers REGISTRY_AUTH_FILE, then DOCKER_CONFIG, then HOME") {
  ferry::test::TestDir dir;
  const fs::path auth_file = dir / "auth.json";
  const fs::path docker_config = dir / "docker-config";
  const fs::path home = dir / "home";
  ferry::test::write_file(auth_file, "{}");
  ferry::test::write_file(docker_config / "config.json", "{}");
  ferry::test::write_file(home / ".docker/config.json", "{}");
  AuthEnvironment env{.registry_auth_file = auth_file.string(),
                      .docker_config = docker_config.string(),
                      .home = home.string(),
                      .path = {}};
  CHECK(ferry::registry::find_auth_file(env) == auth_file);
  SUBCASE("a missing REGISTRY_AUTH_FILE gives way to DOCKER_CONFIG") {
    env.registry_auth_file = (dir / "missing.json").string();
    CHECK(ferry::registry::find_auth_file(env) == docker_config / "config.json");
  }
  SUBCASE("without both, the home directory's file") {
    env.registry_auth_file.clear();
    env.docker_config.clear();
    CHECK(ferry::registry::find_auth_file(env) == home / ".docker/config.json");
  }
  SUBCASE("nothing at all") {
    env = AuthEnvironment{};
    CHECK_FALSE(ferry::registry::find_auth_file(env).has_value());
  }
}

TEST_CASE("find_credentials takes the user from the precedence winner only") {
  ferry::test::TestDir dir;
  const auto entry = [](const std::string& user) {
    return R"({"auths":{"reg.example":{"auth":")" + ferry::core::base64_encode(user + ":pw") + R"("}}})";
  };
  ferry::test::write_file(dir / "auth.json", entry("from-auth-file"));
  ferry::test::write_file(dir / "dc/config.json", entry("from-docker-config"));
  ferry::test::write_file(dir / "home/.docker/config.json", entry("from-home"));
  for (const char* file : {"auth.json", "dc/config.json", "home/.docker/config.json"}) {
    fs::permissions(dir / file, fs::perms::owner_read | fs::perms::owner_write);
  }
  ferry::core::NullLog log;
  AuthEnvironment env{.registry_auth_file = (dir / "auth.json").string(),
                      .docker_config = (dir / "dc").string(),
                      .home = (dir / "home").string(),
                      .path = {}};
  CHECK(find_credentials("reg.example", env, log)->username == "from-auth-file");
  env.registry_auth_file.clear();
  CHECK(find_credentials("reg.example", env, log)->username == "from-docker-config");
  env.docker_config.clear();
  CHECK(find_credentials("reg.example", env, log)->username == "from-home");
}

TEST_CASE("find_credentials decodes the auth field") {
  ferry::test::TestDir dir;
  ferry::test::write_file(dir / "auth.json", R"({"auths":{"reg.example:5000":{"auth":")" +
                                                 ferry::core::base64_encode("alice:pa:ss") + R"("}}})");
  ferry::core::NullLog log;
  const auto credentials = find_credentials("reg.example:5000", env_with(dir / "auth.json"), log);
  REQUIRE(credentials);
  CHECK(credentials->username == "alice");
  CHECK(credentials->password == "pa:ss"); // split at the first colon only
  CHECK(credentials->identity_token.empty());
  CHECK_FALSE(find_credentials("other.example", env_with(dir / "auth.json"), log).has_value());
}

TEST_CASE("find_credentials reads username and password fields") {
  ferry::test::TestDir dir;
  ferry::test::write_file(dir / "auth.json", R"({"auths":{"reg.example":{"username":"bob","password":"hunter22"}}})");
  ferry::core::NullLog log;
  const auto credentials = find_credentials("reg.example", env_with(dir / "auth.json"), log);
  REQUIRE(credentials);
  CHECK(credentials->username == "bob");
  CHECK(credentials->password == "hunter22");
}

TEST_CASE("find_credentials prefers an identity token to a password") {
  ferry::test::TestDir dir;
  ferry::test::write_file(dir / "auth.json", R"({"auths":{"reg.example":{"auth":")" +
                                                 ferry::core::base64_encode("carol:") +
                                                 R"(","identitytoken":"refresh-me-please"}}})");
  ferry::core::NullLog log;
  const auto credentials = find_credentials("reg.example", env_with(dir / "auth.json"), log);
  REQUIRE(credentials);
  CHECK(credentials->username == "carol");
  CHECK(credentials->password.empty());
  CHECK(credentials->identity_token == "refresh-me-please");
}

TEST_CASE("find_credentials matches the URL forms docker login writes") {
  ferry::test::TestDir dir;
  ferry::core::NullLog log;
  const std::string auth = ferry::core::base64_encode("u:p4ssword");
  SUBCASE("https://host") {
    ferry::test::write_file(dir / "auth.json", R"({"auths":{"https://reg.example":{"auth":")" + auth + R"("}}})");
    CHECK(find_credentials("reg.example", env_with(dir / "auth.json"), log).has_value());
  }
  SUBCASE("https://host/v1/") {
    ferry::test::write_file(dir / "auth.json", R"({"auths":{"https://reg.example/v1/":{"auth":")" + auth + R"("}}})");
    CHECK(find_credentials("reg.example", env_with(dir / "auth.json"), log).has_value());
  }
  SUBCASE("Docker Hub's index URL for docker.io") {
    ferry::test::write_file(dir / "auth.json",
                            R"({"auths":{"https://index.docker.io/v1/":{"auth":")" + auth + R"("}}})");
    CHECK(find_credentials("docker.io", env_with(dir / "auth.json"), log).has_value());
    CHECK(find_credentials("registry-1.docker.io", env_with(dir / "auth.json"), log).has_value());
  }
  SUBCASE("docker.io for the index host") {
    ferry::test::write_file(dir / "auth.json", R"({"auths":{"docker.io":{"auth":")" + auth + R"("}}})");
    CHECK(find_credentials("index.docker.io", env_with(dir / "auth.json"), log).has_value());
  }
  SUBCASE("not a key scoped to a namespace (podman)") {
    ferry::test::write_file(dir / "auth.json", R"({"auths":{"reg.example/team":{"auth":")" + auth + R"("}}})");
    CHECK_FALSE(find_credentials("reg.example", env_with(dir / "auth.json"), log).has_value());
  }
  SUBCASE("not another port") {
    ferry::test::write_file(dir / "auth.json", R"({"auths":{"reg.example:5000":{"auth":")" + auth + R"("}}})");
    CHECK_FALSE(find_credentials("reg.example", env_with(dir / "auth.json"), log).has_value());
  }
}

TEST_CASE("find_credentials asks the credHelpers entry of the host") {
  ferry::test::TestDir dir;
  const fs::path bin = dir / "bin";
  fs::create_directories(bin);
  write_helper(bin, "fake", R"({"ServerURL":"reg.example","Username":"helper-user","Secret":"helper-secret"})");
  ferry::test::write_file(dir / "auth.json", R"({"credHelpers":{"reg.example":"fake"},
      "auths":{"reg.example":{"username":"file-user","password":"file-password"}}})");
  ferry::core::NullLog log;
  const auto credentials = find_credentials("reg.example", env_with(dir / "auth.json", bin), log);
  REQUIRE(credentials);
  CHECK(credentials->username == "helper-user");
  CHECK(credentials->password == "helper-secret");
  CHECK(ferry::test::read_file(bin / "fake.asked") == "reg.example");
  SUBCASE("another host does not use it") {
    CHECK_FALSE(find_credentials("other.example", env_with(dir / "auth.json", bin), log).has_value());
  }
}

TEST_CASE("find_credentials asks the credsStore for Docker Hub by its index URL") {
  ferry::test::TestDir dir;
  const fs::path bin = dir / "bin";
  fs::create_directories(bin);
  write_helper(bin, "store", R"({"Username":"<token>","Secret":"an-identity-token"})");
  ferry::test::write_file(dir / "auth.json", R"({"credsStore":"store","auths":{"https://index.docker.io/v1/":{}}})");
  ferry::core::NullLog log;
  const auto credentials = find_credentials("docker.io", env_with(dir / "auth.json", bin), log);
  REQUIRE(credentials);
  CHECK(credentials->username.empty());
  CHECK(credentials->identity_token == "an-identity-token");
  CHECK(ferry::test::read_file(bin / "store.asked") == "https://index.docker.io/v1/");
}

TEST_CASE("find_credentials treats a helper's \"credentials not found\" as anonymous") {
  ferry::test::TestDir dir;
  const fs::path bin = dir / "bin";
  fs::create_directories(bin);
  write_helper(bin, "empty", "credentials not found in native keychain", 1);
  ferry::test::write_file(dir / "auth.json", R"({"credsStore":"empty"})");
  ferry::core::NullLog log;
  CHECK_FALSE(find_credentials("reg.example", env_with(dir / "auth.json", bin), log).has_value());
}

TEST_CASE("find_credentials reports a failing helper without its output's secrets") {
  ferry::test::TestDir dir;
  const fs::path bin = dir / "bin";
  fs::create_directories(bin);
  write_helper(bin, "broken", "the keyring is locked", 2);
  ferry::test::write_file(dir / "auth.json", R"({"credsStore":"broken"})");
  ferry::core::NullLog log;
  const std::string text = message_of([&] { find_credentials("reg.example", env_with(dir / "auth.json", bin), log); });
  CHECK(ferry::test::contains(text, "docker-credential-broken failed for reg.example: the keyring is locked"));
  CHECK(ferry::test::contains(text, "--password-stdin"));
  SUBCASE("an unreadable answer is an error that does not quote it") {
    write_helper(bin, "garbled", R"({"Username":"u","Secret":"s3cret-value")", 0);
    ferry::test::write_file(dir / "auth.json", R"({"credsStore":"garbled"})");
    const std::string garbled =
        message_of([&] { find_credentials("reg.example", env_with(dir / "auth.json", bin), log); });
    CHECK(ferry::test::contains(garbled, "unreadable answer"));
    CHECK_FALSE(ferry::test::contains(garbled, "s3cret-value"));
  }
}

TEST_CASE("find_credentials warns about a helper missing from PATH and goes on") {
  ferry::test::TestDir dir;
  fs::create_directories(dir / "bin");
  ferry::test::write_file(dir / "auth.json",
                          R"({"credsStore":"desktop","auths":{"reg.example":{"username":"u","password":"p4ss"}}})");
  CaptureLog log;
  const auto credentials = find_credentials("reg.example", env_with(dir / "auth.json", dir / "bin"), log);
  REQUIRE(credentials); // the auths entry still applies
  CHECK(credentials->username == "u");
  CHECK(ferry::test::contains(log.text(), "docker-credential-desktop"));
  CHECK(ferry::test::contains(log.text(), "not on PATH"));
}

TEST_CASE("find_credentials names a malformed file but never its content") {
  ferry::test::TestDir dir;
  const std::string secret = ferry::core::base64_encode("admin:very-secret-password");
  SUBCASE("not JSON") {
    ferry::test::write_file(dir / "auth.json", R"({"auths":{"reg.example":{"auth":")" + secret + R"("}})");
  }
  SUBCASE("auth is not base64 of user:password") {
    ferry::test::write_file(dir / "auth.json", R"({"auths":{"reg.example":{"auth":"very-secret-password"}}})");
  }
  SUBCASE("auths is not an object") {
    ferry::test::write_file(dir / "auth.json", R"({"auths":["very-secret-password"]})");
  }
  ferry::core::NullLog log;
  try {
    find_credentials("reg.example", env_with(dir / "auth.json"), log);
    FAIL("no exception");
  } catch (const ferry::core::UsageError& e) {
    const std::string text = std::string(e.what()) + e.hint();
    CHECK(ferry::test::contains(text, (dir / "auth.json").string()));
    CHECK_FALSE(ferry::test::contains(text, "very-secret-password"));
    CHECK_FALSE(ferry::test::contains(text, secret));
  }
}

TEST_CASE("ScopeSet reads scopes and tells which cover which") {
  ScopeSet push;
  CHECK(push.add("repository:team/app:push,pull"));
  CHECK(push.add("repository:base/img:pull"));
  CHECK(push.strings() == std::vector<std::string>{"repository:base/img:pull", "repository:team/app:pull,push"});
  ScopeSet pull;
  pull.add("repository:team/app", {"pull"});
  CHECK(push.covers(pull));
  CHECK_FALSE(pull.covers(push));
  SUBCASE("names may hold colons") {
    ScopeSet ported;
    CHECK(ported.add("repository:host:5000/app:pull"));
    CHECK(ported.strings() == std::vector<std::string>{"repository:host:5000/app:pull"});
  }
  SUBCASE("malformed scopes are refused") {
    ScopeSet bad;
    for (const char* scope : {"", "repository", "repository:app", "repository:app:", ":app:pull", "repository:app:pull,"}) {
      CAPTURE(scope);
      CHECK_FALSE(bad.add(scope));
    }
    CHECK(bad.empty());
  }
}

TEST_CASE("TokenCache serves a covering token until it expires") {
  TokenCache cache;
  const auto now = TokenCache::Clock::now();
  ScopeSet pull_push;
  pull_push.add("repository:app", {"pull", "push"});
  ScopeSet pull;
  pull.add("repository:app", {"pull"});
  ScopeSet other;
  other.add("repository:other", {"pull"});
  cache.store(pull_push, "token-1", now + std::chrono::seconds(60));
  CHECK(cache.find(pull, now) == "token-1");
  CHECK(cache.find(pull_push, now) == "token-1");
  CHECK_FALSE(cache.find(other, now).has_value());
  CHECK_FALSE(cache.find(pull, now + std::chrono::seconds(61)).has_value());
  cache.forget("token-1");
  CHECK_FALSE(cache.find(pull, now).has_value());
}

TEST_CASE("parse_token_answer reads token or access_token and the lifetime") {
  auto answer = ferry::registry::parse_token_answer(R"({"token":"t1","expires_in":300,"issued_at":"2026-01-01T00:00:00Z"})");
  REQUIRE(answer);
  CHECK(answer->token == "t1");
  CHECK(answer->expires_in == std::chrono::seconds(300));
  answer = ferry::registry::parse_token_answer(R"({"access_token":"t2"})");
  REQUIRE(answer);
  CHECK(answer->token == "t2");
  CHECK(answer->expires_in == std::chrono::seconds(60)); // the spec's default
  CHECK_FALSE(ferry::registry::parse_token_answer(R"({"expires_in":300})"));
  CHECK_FALSE(ferry::registry::parse_token_answer("not json"));
  CHECK_FALSE(ferry::registry::parse_token_answer(R"({"token":""})"));
}

TEST_CASE("redact_url drops user-info and secret query values") {
  using ferry::registry::redact_url;
  CHECK(redact_url("https://user:pass@reg.example:5000/v2/app/blobs/sha256:ab?digest=sha256:ab") ==
        "https://reg.example:5000/v2/app/blobs/sha256:ab?digest=sha256:ab");
  CHECK(redact_url("https://s3.example/bucket/data?X-Amz-Signature=abc123&X-Amz-Credential=KEY&n=5") ==
        "https://s3.example/bucket/data?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED&n=5");
  CHECK(redact_url("https://auth.example/token?service=reg&scope=repository:a:pull&refresh_token=zzz") ==
        "https://auth.example/token?service=reg&scope=repository:a:pull&refresh_token=REDACTED");
  CHECK(redact_url("http://reg/v2/a/blobs/uploads/u?_state=opaque#frag") == "http://reg/v2/a/blobs/uploads/u?_state=REDACTED");
  CHECK(redact_url("http://reg/v2/?lonetoken") == "http://reg/v2/?REDACTED");
  CHECK(redact_url("http://reg/v2/") == "http://reg/v2/");
}

TEST_CASE("redact_secrets replaces every occurrence of each secret") {
  CHECK(ferry::registry::redact_secrets("a hunter22 b hunter22", {"hunter22", ""}) == "a *** b ***");
  CHECK(ferry::registry::redact_secrets("short pw stays", {"pw"}) == "short pw stays");
}

} // TEST_SUITE
