// The push stage: composes the bundle reader with the registry client.
// SPDX-License-Identifier: Apache-2.0
#include "image_push.hpp"

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/pipe.hpp"
#include "oci/manifest.hpp"
#include "oci/media_types.hpp"

#include <algorithm>
#include <deque>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <mutex>
#include <optional>
#include <unistd.h>
#include <map>
#include <set>
#include <thread>

namespace ferry {

namespace fs = std::filesystem;

namespace {

std::string chart_tag(std::string version) {
  std::replace(version.begin(), version.end(), '+', '_'); // as Helm stores versions in OCI tags
  return version;
}

bool is_manifest_type(const std::string& media_type) {
  return oci::media_type::is_index(media_type) || oci::media_type::is_manifest(media_type);
}

// Collects a manifest's bytes; hands them over once the reader verified them.
class ManifestSink final : public bundle::EntrySink {
public:
  ManifestSink(std::map<core::Digest, std::string>& into, core::Digest digest) : m_into(into), m_digest(digest) {}
  void write(const char* data, std::size_t size) override { m_bytes.append(data, size); }
  void commit() override { m_into[m_digest] = std::move(m_bytes); }

private:
  std::map<core::Digest, std::string>& m_into;
  core::Digest m_digest;
  std::string m_bytes;
};

// One blob upload running on its own thread, fed through a bounded pipe.
struct Upload {
  core::Pipe pipe;
  std::thread thread;
  std::exception_ptr error;
  std::function<void()> on_done; // run on the reader's thread once the upload finished

  Upload(registry::Client& client, std::string repository, const core::Digest& digest, std::uint64_t size,
         std::function<void()> done)
      : on_done(std::move(done)) {
    thread = std::thread([this, &client, repository = std::move(repository), digest, size] {
      try {
        // The bundle reader verifies these very bytes (and the registry the digest).
        client.push_blob(repository, digest, size, pipe.source(), registry::ContentCheck::trusted);
      } catch (...) {
        error = std::current_exception();
        pipe.abort(error);
      }
    });
  }
  Upload(const Upload&) = delete;
  Upload& operator=(const Upload&) = delete;
  ~Upload() {
    if (thread.joinable()) {
      pipe.abort(); // never finished: stop it
      thread.join();
    }
  }
  // Waits for the upload; rethrows its error; then runs on_done.
  void finish() {
    thread.join();
    if (error) std::rethrow_exception(error);
    on_done();
  }
};

// Uploads whose bytes have all been handed over, still being sent: at most `limit` at a
// time (the oldest is waited for beyond that), so the stream goes on with the next blob
// while earlier ones finish, and memory stays bounded.
class Uploads {
public:
  explicit Uploads(std::size_t limit) : m_limit(std::max<std::size_t>(1, limit)) {}
  void add(std::unique_ptr<Upload> upload) {
    while (m_inflight.size() >= m_limit) finish_oldest();
    m_inflight.push_back(std::move(upload));
  }
  void finish_all() {
    while (!m_inflight.empty()) finish_oldest();
  }

private:
  void finish_oldest() {
    std::unique_ptr<Upload> oldest = std::move(m_inflight.front());
    m_inflight.pop_front();
    oldest->finish();
  }
  std::size_t m_limit;
  std::deque<std::unique_ptr<Upload>> m_inflight;
};

// Uploads an entry to the registry while the reader verifies it: the bytes go through a
// bounded pipe to a thread running the client's upload. The registry itself checks the
// digest when the upload completes, so bytes that fail verification are never stored
// under that digest. commit() hands the running upload to `uploads` and returns: the
// next entry streams while this one finishes.
class UploadSink final : public bundle::EntrySink {
public:
  UploadSink(Uploads& uploads, std::unique_ptr<Upload> upload) : m_uploads(uploads), m_upload(std::move(upload)) {}
  void write(const char* data, std::size_t size) override { m_upload->pipe.sink().write(data, size); }
  void commit() override {
    m_upload->pipe.close();
    m_uploads.add(std::move(m_upload));
  }

private:
  Uploads& m_uploads;
  std::unique_ptr<Upload> m_upload; // destroyed (aborted) here unless committed
};

// An append-only text file: one line per blob, manifest or tag that landed in the
// target ("blob REPO DIGEST", "manifest REPO DIGEST", "tag REPO TAG DIGEST"), "complete"
// at the end. Each line is flushed to disk before the push goes on.
class Journal {
public:
  Journal(const fs::path& file, bool enabled) : m_file(file) {
    if (!enabled) return;
    std::error_code ec;
    fs::create_directories(file.parent_path(), ec);
    if (fs::exists(file)) {
      const std::string text = core::read_file(file, 256u << 20);
      for (std::size_t start = 0; start < text.size();) {
        const std::size_t end = std::min(text.find('\n', start), text.size());
        if (end > start) ++m_previous;
        start = end + 1;
      }
    }
    core::UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!fd) {
      const int err = errno;
      throw core::Error(core::ExitCode::failure, "cannot open the push journal " + core::display(file) + ": " +
                                                     core::errno_text(err),
                        "give a writable directory with --state-dir");
    }
    m_sink.emplace(std::move(fd), core::display(file));
  }
  std::uint64_t previous() const noexcept { return m_previous; }
  void record(const std::string& line) { record_all({line}); }
  // Several lines with one flush (presence checks find many at once).
  void record_all(const std::vector<std::string>& lines) {
    if (!m_sink || lines.empty()) return;
    std::string text;
    for (const auto& line : lines) text += line + "\n";
    std::lock_guard lock(m_mutex);
    m_sink->write(text);
    ::fdatasync(m_sink->fd());
  }

private:
  fs::path m_file;
  std::optional<core::FdSink> m_sink;
  std::uint64_t m_previous = 0;
  std::mutex m_mutex;
};

fs::path journal_path(const PushOptions& options, const std::string& descriptor_bytes) {
  std::string target = options.target.str();
  for (char& c : target) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') c = '_';
  }
  const fs::path dir = options.state_dir.empty() ? default_state_dir() : options.state_dir;
  return dir / ("push-" + std::string(core::sha256_of(descriptor_bytes).hex().substr(0, 16)) + "-" + target + ".journal");
}

class Pusher {
public:
  Pusher(const PushOptions& options, core::LogSink& log, PushResult& result, Journal& journal)
      : m_options(options), m_log(log), m_result(result), m_journal(journal),
        m_client(options.target.host, options.client, log),
        m_uploads(static_cast<std::size_t>(std::max(1, options.jobs))) {}

  void plan(const bundle::BundleDescriptor& d) {
    for (const auto& image : d.images) {
      const oci::Reference ref = oci::Reference::parse(image.ref);
      const std::string repo = m_options.target.image_repository(ref);
      m_roots.push_back(Root{"image", image.ref, repo, ref.tag().value_or(""), image.digest});
    }
    for (const auto& chart : d.charts) {
      m_roots.push_back(
          Root{"chart", chart.ref, m_options.target.chart_repository(chart.name), chart_tag(chart.version), chart.digest});
    }
    for (const auto& root : m_roots) m_root_repos[root.digest].insert(root.repository);
    for (const auto& b : d.blobs) {
      m_media_types[b.digest] = b.media_type;
      m_sizes[b.digest] = b.size;
      if (is_manifest_type(b.media_type)) ++m_manifest_count;
    }
  }

  std::unique_ptr<bundle::EntrySink> target(const bundle::StreamEntry& entry) {
    if (entry.media_type.empty()) return nullptr; // oci-layout, index.json: verify only
    if (is_manifest_type(entry.media_type)) return std::make_unique<ManifestSink>(m_manifests, entry.digest);
    if (!m_checked) check_presence(); // the first blob: every manifest is known now
    m_needed.erase(entry.digest);
    const std::set<std::string> repos = repositories_of(entry.digest);
    if (repos.empty()) return nullptr; // a file's content: not pushed
    return core::with_context("pushing blob " + entry.digest.str(), [&] { return place_blob(entry, repos); });
  }

  // True once every blob the target lacks has gone by: the rest of the stream is not
  // needed (the bundle's remaining blobs are already in the target). Asked before each
  // entry: as soon as every manifest has been read the presence check runs, so an
  // up-to-date target stops the stream before the first layer is read.
  bool done_with_stream() {
    if (!m_checked && m_manifests.size() == m_manifest_count) check_presence();
    return m_checked && m_needed.empty();
  }

  void push_manifests() {
    m_uploads.finish_all(); // every blob is in place before the first manifest
    for (const auto& root : m_roots) {
      core::with_context("pushing " + root.kind + " " + root.source + " to " + target_ref(root), [&] {
        push_tree(root.repository, root.digest);
        if (!root.tag.empty()) put_tag(root.repository, root.tag, root.digest);
        m_result.artifacts.push_back(PushedArtifact{root.kind, root.source, target_ref(root), root.digest});
      });
    }
  }

private:
  struct Root {
    std::string kind;
    std::string source;
    std::string repository;
    std::string tag;
    core::Digest digest;
  };

  std::string target_ref(const Root& root) const {
    return m_options.target.host + "/" + root.repository + (root.tag.empty() ? "@" + root.digest.str() : ":" + root.tag);
  }

  // The target repositories whose images use `digest`, from the manifests read so far
  // (manifests come first in a bundle stream, so all are known when blobs arrive).
  std::set<std::string> repositories_of(const core::Digest& digest) {
    ensure_graph();
    std::set<std::string> repos;
    std::set<core::Digest> seen;
    std::vector<core::Digest> todo{digest};
    while (!todo.empty()) {
      const core::Digest d = todo.back();
      todo.pop_back();
      if (!seen.insert(d).second) continue;
      if (auto r = m_root_repos.find(d); r != m_root_repos.end()) repos.insert(r->second.begin(), r->second.end());
      if (auto p = m_parents.find(d); p != m_parents.end()) todo.insert(todo.end(), p->second.begin(), p->second.end());
    }
    return repos;
  }

  void ensure_graph() {
    for (const auto& [digest, bytes] : m_manifests) {
      if (m_parsed.count(digest)) continue;
      m_parsed.insert(digest);
      const auto parsed = oci::parse_manifest(bytes, m_media_types[digest], "manifest " + digest.str());
      auto add = [&](const oci::Descriptor& child) {
        m_parents[child.digest].insert(digest);
        m_children[digest].push_back(child.digest);
      };
      if (const auto* m = std::get_if<oci::ImageManifest>(&parsed)) {
        add(m->config);
        for (const auto& l : m->layers) add(l);
      } else {
        for (const auto& c : std::get<oci::ImageIndex>(parsed).manifests) add(c);
      }
    }
  }

  // HEAD for every (repository, blob) pair of the bundle, `jobs` at a time; blobs that
  // some repository lacks are what the stream is still needed for.
  void check_presence() {
    m_checked = true;
    ensure_graph();
    std::vector<std::pair<std::string, core::Digest>> pairs;
    for (const auto& [digest, media_type] : m_media_types) {
      if (is_manifest_type(media_type)) continue;
      for (const auto& repo : repositories_of(digest)) pairs.emplace_back(repo, digest);
    }
    std::vector<char> present(pairs.size(), 0);
    std::atomic<std::size_t> next{0};
    std::mutex mutex;
    std::exception_ptr error;
    auto worker = [&] {
      for (;;) {
        const std::size_t i = next++;
        if (i >= pairs.size()) return;
        try {
          present[i] = m_client.blob_exists(pairs[i].first, pairs[i].second) ? 1 : 0;
        } catch (...) {
          std::lock_guard lock(mutex);
          if (!error) error = std::current_exception();
          next = pairs.size();
          return;
        }
      }
    };
    std::vector<std::thread> pool;
    const std::size_t threads = std::min<std::size_t>(static_cast<std::size_t>(std::max(1, m_options.jobs)), pairs.size());
    for (std::size_t t = 1; t < threads; ++t) pool.emplace_back(worker);
    if (threads > 0) worker();
    for (auto& t : pool) t.join();
    if (error) std::rethrow_exception(error);
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      if (present[i]) {
        m_present.insert(pairs[i]);
      } else {
        m_needed.insert(pairs[i].second);
      }
    }
    // Blobs every repository already has are counted (and journalled) here: the stream
    // may stop before they would go by.
    std::set<core::Digest> counted;
    for (const auto& [repo, digest] : pairs) {
      if (m_needed.count(digest) || !counted.insert(digest).second) continue;
      ++m_result.blobs_present;
      m_result.bytes_present += m_sizes[digest];
    }
    if (!m_options.dry_run) {
      std::vector<std::string> lines;
      for (const auto& [repo, digest] : m_present) lines.push_back("blob " + repo + " " + digest.str());
      m_journal.record_all(lines);
    }
  }

  std::unique_ptr<bundle::EntrySink> place_blob(const bundle::StreamEntry& entry, const std::set<std::string>& repos) {
    std::vector<std::string> have;
    std::vector<std::string> lack;
    for (const auto& repo : repos) (m_present.count({repo, entry.digest}) ? have : lack).push_back(repo);
    if (lack.empty()) return nullptr; // counted by check_presence()
    if (m_options.dry_run) {
      // A real push would mount what another repository has (when the registry allows).
      // (Counts assume the registry mounts; one that refuses gets copies instead.)
      if (have.empty()) {
        ++m_result.blobs_uploaded;
        m_result.bytes_uploaded += entry.size;
        m_result.blobs_mounted += lack.size() - 1;
      } else {
        m_result.blobs_mounted += lack.size();
      }
      return nullptr;
    }
    if (!have.empty()) {
      // Already in the target under another repository: mount it, no bytes move.
      std::vector<std::string> still;
      for (const auto& repo : lack) {
        if (m_client.mount_blob(repo, entry.digest, have.front())) {
          ++m_result.blobs_mounted;
          m_journal.record("blob " + repo + " " + entry.digest.str());
        } else {
          still.push_back(repo);
        }
      }
      if (still.empty()) return nullptr;
      lack = std::move(still);
    }
    const std::string first = lack.front();
    std::vector<std::string> others(lack.begin() + 1, lack.end());
    const core::Digest digest = entry.digest;
    const std::uint64_t size = entry.size;
    auto upload = std::make_unique<Upload>(m_client, first, digest, size, [this, first, others, digest, size] {
      ++m_result.blobs_uploaded;
      m_result.bytes_uploaded += size;
      m_journal.record("blob " + first + " " + digest.str());
      for (const auto& repo : others) {
        if (m_client.mount_blob(repo, digest, first)) {
          ++m_result.blobs_mounted;
        } else {
          copy_within_target(first, repo, digest, size);
        }
        m_journal.record("blob " + repo + " " + digest.str());
      }
    });
    return std::make_unique<UploadSink>(m_uploads, std::move(upload));
  }

  // When a registry refuses cross-repository mounts, the blob is read back from where it
  // was just uploaded and pushed again (the bundle stream has moved on).
  void copy_within_target(const std::string& from, const std::string& to, const core::Digest& digest, std::uint64_t size) {
    core::Pipe pipe;
    std::exception_ptr upload_error;
    std::thread upload([&] {
      try {
        m_client.push_blob(to, digest, size, pipe.source());
      } catch (...) {
        upload_error = std::current_exception();
        pipe.abort(upload_error);
      }
    });
    try {
      m_client.get_blob(from, digest, size, pipe.sink());
      pipe.close();
    } catch (...) {
      pipe.abort(std::current_exception());
      upload.join();
      throw;
    }
    upload.join();
    if (upload_error) std::rethrow_exception(upload_error);
    ++m_result.blobs_uploaded;
    m_result.bytes_uploaded += size;
  }

  void push_tree(const std::string& repo, const core::Digest& digest) {
    auto bytes = m_manifests.find(digest);
    if (bytes == m_manifests.end()) return; // a blob, not a manifest
    for (const auto& child : m_children[digest]) push_tree(repo, child);
    if (!m_pushed.insert({repo, digest}).second) return;
    const auto existing = m_client.head_manifest(repo, digest.str());
    if (existing) {
      ++m_result.manifests_present;
      return;
    }
    if (m_options.dry_run) {
      ++m_result.manifests_pushed;
      return;
    }
    m_client.put_manifest(repo, digest.str(), m_media_types[digest], bytes->second);
    ++m_result.manifests_pushed;
    m_journal.record("manifest " + repo + " " + digest.str());
  }

  void put_tag(const std::string& repo, const std::string& tag, const core::Digest& digest) {
    const auto existing = m_client.head_manifest(repo, tag);
    if (existing && existing->digest == digest) return;
    if (m_options.dry_run) return;
    if (existing) m_log.info(repo + ":" + tag + " moves from " + existing->digest.str() + " to " + digest.str());
    m_client.put_manifest(repo, tag, m_media_types[digest], m_manifests.at(digest));
    m_journal.record("tag " + repo + " " + tag + " " + digest.str());
  }

  const PushOptions& m_options;
  core::LogSink& m_log;
  PushResult& m_result;
  Journal& m_journal;
  registry::Client m_client;
  Uploads m_uploads; // declared after m_client: destroyed (aborted) before it
  std::vector<Root> m_roots;
  std::map<core::Digest, std::set<std::string>> m_root_repos;
  std::map<core::Digest, std::string> m_media_types;
  std::map<core::Digest, std::uint64_t> m_sizes;
  std::map<core::Digest, std::string> m_manifests;
  std::set<core::Digest> m_parsed;
  std::map<core::Digest, std::set<core::Digest>> m_parents;
  std::map<core::Digest, std::vector<core::Digest>> m_children;
  std::set<std::pair<std::string, core::Digest>> m_pushed;
  bool m_checked = false;
  std::size_t m_manifest_count = 0; // manifests and indexes in the blob table
  std::set<std::pair<std::string, core::Digest>> m_present; // (repository, blob) in the target
  std::set<core::Digest> m_needed;                          // blobs some repository lacks
};

} // namespace

fs::path default_state_dir() {
  if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg && *xdg) return fs::path(xdg) / "ferry";
  if (const char* home = std::getenv("HOME"); home && *home) return fs::path(home) / ".local/state/ferry";
  return fs::path(".ferry-state");
}

PushTarget PushTarget::parse(const std::string& text) {
  if (text.find("://") != std::string::npos) {
    throw core::UsageError("--registry '" + text + "' has a scheme; give HOST[:PORT][/PREFIX]",
                           "use --plain-http for a registry without TLS");
  }
  const registry::Location location = registry::Location::split(text);
  PushTarget t{location.host, location.prefix};
  if (t.host.empty()) throw core::UsageError("--registry '" + text + "' names no host", "give HOST[:PORT][/PREFIX]");
  if (!t.prefix.empty()) {
    // The prefix must itself be a valid repository path.
    (void)oci::Reference::parse(t.host + "/" + t.prefix + "/x");
  }
  return t;
}

std::string PushTarget::image_repository(const oci::Reference& source) const {
  return prefix.empty() ? source.repository() : prefix + "/" + source.repository();
}

std::string PushTarget::chart_repository(const std::string& chart) const {
  return prefix.empty() ? "charts/" + chart : prefix + "/charts/" + chart;
}

PushResult push_bundle(const PushOptions& options, core::LogSink& log, core::ProgressSink& progress) {
  bundle::TrustedKeys keys;
  const bundle::SignaturePolicy policy = load_trust(options.trust, keys, log);
  PushResult result;
  result.dry_run = options.dry_run;
  core::with_context("pushing " + core::display(options.bundle) + " to " + options.target.str(), [&] {
    core::FileSource in(options.bundle);
    bundle::BundleReader reader(in, core::display(options.bundle));
    reader.open(keys, policy);
    result.journal = journal_path(options, reader.descriptor_bytes());
    Journal journal(result.journal, !options.dry_run);
    result.journal_entries = journal.previous();
    if (journal.previous() > 0) {
      log.info("resuming: the journal " + core::display(result.journal) + " lists " +
               std::to_string(journal.previous()) + " items from an earlier push; each is checked again with HEAD");
    }
    Pusher pusher(options, log, result, journal);
    pusher.plan(reader.descriptor());
    // Layers are read (and uploaded) -j at a time, each from its own zstd frame.
    result.stats = reader.read_entries_parallel(
        options.bundle, options.jobs, [&](const bundle::StreamEntry& e) { return pusher.target(e); }, progress,
        [&] { return pusher.done_with_stream(); });
    result.read_whole_bundle = result.stats.complete;
    if (!result.stats.complete) {
      log.info("the target already holds every remaining blob: the rest of the bundle was not read");
    }
    pusher.push_manifests();
    journal.record("complete");
    result.descriptor = reader.descriptor();
    result.signature = reader.signature();
  });
  return result;
}

} // namespace ferry
