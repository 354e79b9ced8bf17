// The push stage: composes the bundle reader with the registry client.
// SPDX-License-Identifier: Apache-2.0
#include "image_push.hpp"

#include "bundle/volume_set.hpp"
#include "bundle/volumes.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/pipe.hpp"
#include "core/secret.hpp"
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
#include <sys/statvfs.h>
#include <unistd.h>
#include <map>
#include <set>
#include <thread>

namespace ferry {

namespace fs = std::filesystem;

std::string chart_tag(std::string version) {
  std::replace(version.begin(), version.end(), '+', '_'); // as Helm stores versions in OCI tags
  return version;
}

namespace {

bool is_manifest_type(const std::string& media_type) {
  return oci::media_type::is_index(media_type) || oci::media_type::is_manifest(media_type);
}


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

// Stages one verified piece of a blob larger than a volume: written beside its final name
// and renamed onto it by commit(), so a staged piece is always a whole, verified one.
class PieceSink final : public bundle::EntrySink {
public:
  PieceSink(fs::path path, std::uint64_t& staged) : m_path(std::move(path)), m_temp(m_path), m_staged(staged) {
    m_temp += ".part";
    core::UniqueFd fd(::open(m_temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd) {
      const int err = errno;
      throw core::Error(core::ExitCode::failure, "cannot create " + core::display(m_temp) + ": " + core::errno_text(err),
                        "give a writable directory with --state-dir");
    }
    m_sink.emplace(std::move(fd), core::display(m_temp));
  }
  ~PieceSink() override {
    if (!m_sink) return;
    m_sink.reset();
    std::error_code ignored;
    fs::remove(m_temp, ignored); // not verified: not kept
  }
  void write(const char* data, std::size_t size) override {
    m_sink->write(data, size);
    m_bytes += size;
  }
  void commit() override {
    m_sink->sync_and_close();
    m_sink.reset();
    if (::rename(m_temp.c_str(), m_path.c_str()) != 0) {
      const int err = errno;
      throw core::Error(core::ExitCode::failure, "cannot rename " + core::display(m_temp) + ": " + core::errno_text(err));
    }
    m_staged += m_bytes;
  }

private:
  fs::path m_path;
  fs::path m_temp;
  std::uint64_t& m_staged;
  std::uint64_t m_bytes = 0;
  std::optional<core::FdSink> m_sink;
};

// The staged pieces of a blob, read one after the other: the blob, never joined on disk.
class PieceChain final : public core::Source {
public:
  explicit PieceChain(std::vector<fs::path> files) : m_files(std::move(files)) {}
  std::size_t read(char* data, std::size_t size) override {
    while (m_next <= m_files.size()) {
      if (m_current) {
        if (const std::size_t n = m_current->read(data, size)) return n;
        m_current.reset();
      }
      if (m_next == m_files.size()) break;
      m_current.emplace(m_files[m_next++]);
    }
    return 0;
  }

private:
  std::vector<fs::path> m_files;
  std::size_t m_next = 0;
  std::optional<core::FileSource> m_current;
};

// An append-only text file: one line per blob, manifest or tag that landed in the
// target ("blob REPO DIGEST", "manifest REPO DIGEST", "tag REPO TAG DIGEST"), "complete"
// at the end. Each line is flushed to disk before the push goes on.
class Journal {
public:
  Journal(const fs::path& file, bool enabled) : m_file(file) {
    if (!enabled) return;
    std::error_code ec;
    core::create_private_directories(file.parent_path(), ec); // 0700: the state is the operator's alone
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

// Where the pieces of blobs larger than a volume wait (a private directory per bundle,
// beside the journals, so that a later run with the other volumes finds them).
fs::path staging_dir(const PushOptions& options, const std::string& descriptor_bytes) {
  const fs::path dir = options.state_dir.empty() ? default_state_dir() : options.state_dir;
  return dir / ("pieces-" + std::string(core::sha256_of(descriptor_bytes).hex().substr(0, 16)));
}

// The staged file of piece `index` of `blob`: <hex>.<NNN>.
fs::path staged_piece(const fs::path& staging, const core::Digest& blob, std::size_t index) {
  char number[16];
  std::snprintf(number, sizeof number, ".%03zu", index);
  return staging / (std::string(blob.hex()) + number);
}

// The pieces the given volumes bring (and are not staged yet) must fit where they wait;
// refused with both numbers before anything is read.
void check_staging_space(const bundle::VolumeSet& set, const fs::path& staging, core::LogSink& log) {
  std::uint64_t needed = 0;
  for (const auto& g : set.given) {
    for (const auto& entry : bundle::volume_entries(set.descriptor, g.volume)) {
      if (!entry.is_piece) continue;
      std::error_code ec;
      const auto have = fs::file_size(staged_piece(staging, entry.blob->digest, entry.piece), ec);
      if (ec || have != entry.size) needed += entry.size;
    }
  }
  if (needed == 0) return;
  std::error_code ec;
  core::create_private_directories(staging, ec);
  if (ec) {
    throw core::Error(core::ExitCode::failure, "cannot create " + core::display(staging) + ": " + ec.message(),
                      "give a writable directory with --state-dir");
  }
  fs::permissions(staging, fs::perms::owner_all, ec); // the pieces are the bundle's bytes: private
  struct statvfs info {};
  if (::statvfs(staging.c_str(), &info) != 0) {
    const int err = errno;
    throw core::Error(core::ExitCode::failure, "cannot read the free space of " + core::display(staging) + ": " +
                                                   core::errno_text(err));
  }
  const std::uint64_t available = static_cast<std::uint64_t>(info.f_bavail) * info.f_frsize;
  log.info("staging: the blobs larger than a volume wait in " + core::display(staging) + " until all their pieces are in; " +
           "these volumes bring " + std::to_string(needed) + " bytes of pieces (" + std::to_string(available) +
           " bytes free there)");
  if (needed > available) {
    throw core::Error(core::ExitCode::failure,
                      "staging the pieces of blobs larger than a volume needs " + std::to_string(needed) + " bytes in " +
                          core::display(staging) + ", which has " + std::to_string(available) + " bytes free",
                      "free " + std::to_string(needed - available) + " bytes there, or give a --state-dir on a larger "
                      "disk; only blobs larger than a volume are staged");
  }
}

class Pusher {
public:
  Pusher(const PushOptions& options, core::LogSink& log, PushResult& result, Journal& journal,
         const bundle::VolumeSet& set, fs::path staging)
      : m_options(options), m_log(log), m_result(result), m_journal(journal), m_set(set),
        m_staging(std::move(staging)), m_client(options.target.host, options.client, log),
        m_uploads(static_cast<std::size_t>(std::max(1, options.jobs))) {}

  void plan(const bundle::BundleDescriptor& d) {
    for (const auto& b : d.blobs) m_records[b.digest] = &b;
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
      if (b.omitted) m_omitted[b.digest] = &b;
    }
    m_result.omitted_blobs = m_omitted.size();
  }

  // The next stream is volume `k` (0 for a one-file bundle): the blobs it brings.
  void begin_volume(std::uint32_t k) {
    m_here.clear();
    m_pending.reset();
    for (const auto& entry : bundle::volume_entries(m_set.descriptor, k)) {
      if (!entry.blob || is_manifest_type(entry.media_type)) continue;
      m_here[entry.blob->digest] = entry.is_piece ? std::optional<std::size_t>(entry.piece) : std::nullopt;
    }
  }

  std::unique_ptr<bundle::EntrySink> target(const bundle::StreamEntry& entry) {
    if (entry.media_type.empty()) return nullptr; // oci-layout, index.json: verify only
    if (is_manifest_type(entry.media_type)) {
      if (m_manifests.count(entry.digest)) return nullptr; // every volume repeats them
      return std::make_unique<bundle::CollectSink>(m_manifests, entry.digest);
    }
    if (!m_checked) check_presence(); // the first blob: every manifest is known now
    const core::Digest blob = entry.piece ? entry.piece->blob : entry.digest;
    m_here.erase(blob);
    if (m_pending) m_pending->erase(blob);
    const std::set<std::string> repos = repositories_of(blob);
    if (repos.empty()) return nullptr; // a file's content: not pushed
    if (entry.piece) return stage_piece(entry, repos);
    if (!m_placed.insert(blob).second) return nullptr; // a blob every volume carries, handled once
    return core::with_context("pushing blob " + entry.digest.str(), [&] { return place_blob(entry, repos); });
  }

  // True once every blob of this stream that the target lacks has gone by: the rest of
  // the stream is not needed (its remaining blobs are already in the target, or staged).
  // Asked before each entry: as soon as every manifest has been read the presence check
  // runs, so an up-to-date target stops the stream before the first layer is read.
  bool done_with_stream() {
    if (!m_checked && m_manifests.size() == m_manifest_count) check_presence();
    if (!m_checked) return false;
    if (!m_pending) {
      // Once per stream: what the target lacks only shrinks while it goes on.
      m_pending.emplace();
      for (const auto& [digest, piece] : m_here) {
        if (m_needed.count(digest) == 0 || lacking(digest).empty()) continue;
        if (piece && staged(digest, *piece)) continue;
        m_pending->insert(digest);
      }
    }
    return m_pending->empty();
  }

  // Blobs larger than a volume whose pieces are all staged now: uploaded from them (one
  // read, hashed on the way), then their pieces removed.
  void join_pieces() {
    m_uploads.finish_all();
    for (const auto& b : m_set.descriptor.blobs) {
      if (b.pieces.empty()) continue;
      const std::vector<std::string> lack = lacking(b.digest);
      if (lack.empty()) {
        remove_pieces(b); // the target has it: staged pieces are of no more use
        continue;
      }
      std::vector<fs::path> files;
      bool complete = true;
      for (std::size_t i = 0; i < b.pieces.size(); ++i) {
        files.push_back(piece_path(b.digest, i));
        complete = complete && (staged(b.digest, i) || (m_options.dry_run && m_seen_pieces.count({b.digest, i})));
      }
      if (!complete) continue;
      if (m_options.dry_run) {
        ++m_result.blobs_uploaded;
        m_result.bytes_uploaded += b.size;
        for (const auto& repo : lack) m_in_target.insert({repo, b.digest});
        continue;
      }
      core::with_context("pushing blob " + b.digest.str() + " from its " + std::to_string(b.pieces.size()) + " pieces in " +
                             core::display(m_staging),
                         [&] {
                           const std::vector<std::string> have = holders(b.digest);
                           std::string from;
                           if (have.empty()) {
                             PieceChain chain(files);
                             try {
                               m_client.push_blob(lack.front(), b.digest, b.size, chain, registry::ContentCheck::hash);
                             } catch (const core::IntegrityError&) {
                               remove_pieces(b); // a staged piece went bad on disk: it must come again
                               throw;
                             }
                             ++m_result.blobs_uploaded;
                             ++m_result.joined_blobs;
                             m_result.bytes_uploaded += b.size;
                             m_journal.record("blob " + lack.front() + " " + b.digest.str());
                             m_in_target.insert({lack.front(), b.digest});
                             from = lack.front();
                           } else {
                             from = have.front();
                           }
                           for (const auto& repo : lack) {
                             if (repo == from) continue;
                             spread(from, repo, b.digest, b.size);
                           }
                         });
      remove_pieces(b);
    }
    std::error_code ignored;
    fs::remove(m_staging, ignored); // only when empty: pieces still waiting keep it
  }

  void push_manifests() {
    m_uploads.finish_all(); // every blob is in place before the first manifest
    if (!m_checked && m_manifests.size() == m_manifest_count) check_presence(); // a stream of manifests only
    ensure_graph();
    for (const auto& root : m_roots) {
      std::set<core::Digest> missing;
      missing_blobs(root.repository, root.digest, missing);
      if (!missing.empty()) {
        m_result.waiting.push_back(waiting_for(root, missing));
        continue;
      }
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

  // The repositories that need `digest` and do not have it (as far as this run knows).
  std::vector<std::string> lacking(const core::Digest& digest) {
    std::vector<std::string> out;
    for (const auto& repo : repositories_of(digest)) {
      if (!m_in_target.count({repo, digest})) out.push_back(repo);
    }
    return out;
  }
  std::vector<std::string> holders(const core::Digest& digest) {
    std::vector<std::string> out;
    for (const auto& repo : repositories_of(digest)) {
      if (m_in_target.count({repo, digest})) out.push_back(repo);
    }
    return out;
  }

  fs::path piece_path(const core::Digest& blob, std::size_t index) const { return staged_piece(m_staging, blob, index); }
  // A piece staged by this run or an earlier one (renamed into place only once verified).
  bool staged(const core::Digest& blob, std::size_t index) const {
    const auto record = m_records.find(blob);
    if (record == m_records.end() || index >= record->second->pieces.size()) return false;
    std::error_code ec;
    const auto size = fs::file_size(piece_path(blob, index), ec);
    return !ec && size == record->second->pieces[index].size;
  }
  void remove_pieces(const bundle::BlobRecord& b) {
    for (std::size_t i = 0; i < b.pieces.size(); ++i) {
      std::error_code ignored;
      fs::remove(piece_path(b.digest, i), ignored);
    }
  }

  std::unique_ptr<bundle::EntrySink> stage_piece(const bundle::StreamEntry& entry, const std::set<std::string>& repos) {
    const bundle::PieceOf& piece = *entry.piece;
    const bool needed = std::any_of(repos.begin(), repos.end(),
                                    [&](const std::string& repo) { return !m_in_target.count({repo, piece.blob}); });
    if (!needed || staged(piece.blob, piece.index)) return nullptr;
    m_seen_pieces.insert({piece.blob, piece.index});
    if (m_options.dry_run) return nullptr;
    return std::make_unique<PieceSink>(piece_path(piece.blob, piece.index), m_result.staged_bytes);
  }

  // Mounts (or, where the registry refuses, copies) a blob the target has in `from` into `to`.
  void spread(const std::string& from, const std::string& to, const core::Digest& digest, std::uint64_t size) {
    if (m_client.mount_blob(to, digest, from)) {
      ++m_result.blobs_mounted;
    } else {
      copy_within_target(from, to, digest, size);
    }
    m_journal.record("blob " + to + " " + digest.str());
    m_in_target.insert({to, digest});
  }

  // The blobs under `digest` (a manifest or index, or a blob) that `repo` lacks.
  void missing_blobs(const std::string& repo, const core::Digest& digest, std::set<core::Digest>& missing) {
    if (m_manifests.count(digest)) {
      for (const auto& child : m_children[digest]) missing_blobs(repo, child, missing);
      return;
    }
    if (!m_in_target.count({repo, digest})) missing.insert(digest);
  }

  WaitingArtifact waiting_for(const Root& root, const std::set<core::Digest>& missing) {
    std::set<std::uint32_t> volumes;
    for (const auto& digest : missing) {
      const auto record = m_records.find(digest);
      if (record == m_records.end()) continue;
      const bundle::BlobRecord& b = *record->second;
      if (b.volume) volumes.insert(*b.volume);
      for (std::size_t i = 0; i < b.pieces.size(); ++i) {
        if (!staged(digest, i) && !m_seen_pieces.count({digest, i})) volumes.insert(b.pieces[i].volume);
      }
    }
    WaitingArtifact w{root.kind, root.source, target_ref(root), {volumes.begin(), volumes.end()}, {}};
    for (const std::uint32_t k : w.volumes) w.volume_names.push_back(m_set.name_of(k));
    return w;
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
      // A named capture: clang before 16 cannot capture a structured binding.
      auto add = [&, &parent = digest](const oci::Descriptor& child) {
        m_parents[child.digest].insert(parent);
        m_children[parent].push_back(child.digest);
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
        m_in_target.insert(pairs[i]);
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
    secure_omitted();
  }

  // A differential bundle's omitted blobs must already be in the target (DESIGN §2). Each
  // repository that needs one and lacks it (HEAD, just done) gets it mounted from one
  // that has it: another repository of this bundle, else one where the base saw it
  // (HEAD-checked first). Any still missing stops the push here, before a manifest is
  // written, naming each blob, the images that need it and the bases. A dry run checks
  // the same and mounts nothing.
  void secure_omitted() {
    if (m_omitted.empty()) return;
    std::vector<std::string> missing;
    std::uint64_t missing_bytes = 0;
    std::set<std::uint32_t> blamed;
    for (const auto& [digest, record] : m_omitted) {
      const std::vector<std::string> lack = lacking(digest);
      if (lack.empty()) continue;
      std::vector<std::string> sources = holders(digest);
      for (const auto& seen : record->omitted->repositories) {
        const std::string repo = m_options.target.prefix.empty() ? seen : m_options.target.prefix + "/" + seen;
        if (std::find(sources.begin(), sources.end(), repo) != sources.end()) continue;
        if (std::find(lack.begin(), lack.end(), repo) != lack.end()) continue; // HEAD said no already
        if (m_client.blob_exists(repo, digest)) sources.push_back(repo);
      }
      std::vector<std::string> still;
      for (const auto& repo : lack) {
        if (sources.empty()) {
          still.push_back(repo);
          continue;
        }
        if (m_options.dry_run) {
          ++m_result.blobs_mounted;
        } else {
          core::with_context("placing omitted blob " + digest.str() + " in " + repo,
                             [&, &blob = digest, blob_size = record->size] {
                               spread(sources.front(), repo, blob, blob_size);
                             });
        }
        ++m_result.omitted_mounted;
        m_in_target.insert({repo, digest});
      }
      if (still.empty()) continue;
      std::string repos;
      for (const auto& r : still) repos += (repos.empty() ? "" : ", ") + r;
      missing.push_back(digest.str() + " (" + std::to_string(record->size) + " bytes), needed by " + users_of(digest) +
                        ", missing in " + repos);
      missing_bytes += record->size;
      blamed.insert(record->omitted->bases.begin(), record->omitted->bases.end());
    }
    if (missing.empty()) return;
    std::string lines;
    for (std::size_t i = 0; i < missing.size() && i < 20; ++i) lines += "\n  " + missing[i];
    if (missing.size() > 20) lines += "\n  and " + std::to_string(missing.size() - 20) + " more";
    std::string bases;
    for (const std::uint32_t k : blamed) {
      if (k < m_set.descriptor.bases.size()) bases += "\n  base: " + bundle::base_text(m_set.descriptor.bases[k]);
    }
    throw core::RegistryError(
        "the target " + m_options.target.str() + " lacks " + std::to_string(missing.size()) + " blob" +
            (missing.size() == 1 ? "" : "s") + " (" + std::to_string(missing_bytes) +
            " bytes) that this differential bundle leaves out because its base said the target had them; no manifest "
            "was pushed:" + lines + bases,
        "the base does not match this registry (a wrong or old receipt, or blobs deleted since): take a new inventory "
        "with `ferry inventory --registry " + m_options.target.str() + "` and pack against it, or pack a full bundle "
        "(without --base)");
  }

  // "image REF, chart REF": the roots whose trees hold `digest`.
  std::string users_of(const core::Digest& digest) {
    std::set<std::string> users;
    std::set<core::Digest> seen;
    std::vector<core::Digest> todo{digest};
    while (!todo.empty()) {
      const core::Digest d = todo.back();
      todo.pop_back();
      if (!seen.insert(d).second) continue;
      for (const auto& root : m_roots) {
        if (root.digest == d) users.insert(root.kind + " " + root.source);
      }
      if (auto p = m_parents.find(d); p != m_parents.end()) todo.insert(todo.end(), p->second.begin(), p->second.end());
    }
    std::string out;
    for (const auto& u : users) out += (out.empty() ? "" : ", ") + u;
    return out.empty() ? std::string("no image") : out;
  }

  std::unique_ptr<bundle::EntrySink> place_blob(const bundle::StreamEntry& entry, const std::set<std::string>& repos) {
    std::vector<std::string> have;
    std::vector<std::string> lack;
    for (const auto& repo : repos) (m_in_target.count({repo, entry.digest}) ? have : lack).push_back(repo);
    if (lack.empty()) return nullptr; // counted by check_presence()
    if (m_options.dry_run) {
      for (const auto& repo : lack) m_in_target.insert({repo, entry.digest});
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
          m_in_target.insert({repo, entry.digest});
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
      m_in_target.insert({first, digest});
      for (const auto& repo : others) spread(first, repo, digest, size);
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

public:
  registry::ClientStats transfer_stats() const { return m_client.stats(); }

private:
  const PushOptions& m_options;
  core::LogSink& m_log;
  PushResult& m_result;
  Journal& m_journal;
  const bundle::VolumeSet& m_set;
  fs::path m_staging; // pieces of blobs larger than a volume, until all are in
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
  std::set<std::pair<std::string, core::Digest>> m_present; // (repository, blob) in the target (HEAD)
  std::set<core::Digest> m_needed;                          // blobs some repository lacked (HEAD)
  // (repository, blob) known to be in the target: HEAD, then what this run put there
  // (a dry run: what it would).
  std::set<std::pair<std::string, core::Digest>> m_in_target;
  std::map<core::Digest, const bundle::BlobRecord*> m_records;
  std::map<core::Digest, const bundle::BlobRecord*> m_omitted; // a differential bundle's, not in any stream
  std::map<core::Digest, std::optional<std::size_t>> m_here; // the current stream's blobs still to come (a piece: which)
  std::optional<std::set<core::Digest>> m_pending;           // of those, what the target still needs
  std::set<core::Digest> m_placed;                           // whole blobs handled by this run
  std::set<std::pair<core::Digest, std::size_t>> m_seen_pieces; // pieces this run read (and staged)
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
  const std::string shown = options.bundles.empty() ? std::string() : core::display(options.bundles.front());
  core::with_context("pushing " + shown + " to " + options.target.str(), [&] {
    const bundle::VolumeSet set = bundle::open_volume_set(options.bundles, keys, policy);
    result.files = given_files(set);
    result.journal = journal_path(options, set.descriptor_bytes);
    result.staging = staging_dir(options, set.descriptor_bytes);
    if (!options.dry_run) check_staging_space(set, result.staging, log);
    Journal journal(result.journal, !options.dry_run);
    result.journal_entries = journal.previous();
    if (journal.previous() > 0) {
      log.info("resuming: the journal " + core::display(result.journal) + " lists " +
               std::to_string(journal.previous()) + " items from an earlier push; each is checked again with HEAD");
    }
    if (set.split) {
      std::string given;
      for (const auto& g : set.given) given += (given.empty() ? "" : ", ") + std::to_string(g.volume);
      log.info("bundle " + set.bundle_text() + ": " + std::to_string(set.count) + " volumes; given: " + given +
               (set.missing.empty() ? std::string() : "; not given: " + set.missing_names()));
    }
    Pusher pusher(options, log, result, journal, set, result.staging);
    pusher.plan(set.descriptor);
    for (const auto& g : set.given) {
      core::with_context(set.split ? "reading volume " + std::to_string(g.volume) + " (" + core::display(g.path) + ")"
                                   : "reading " + core::display(g.path),
                         [&] {
                           core::FileSource in(g.path);
                           bundle::BundleReader reader(in, core::display(g.path));
                           bundle::reopen_volume(set, g, reader, keys, policy);
                           pusher.begin_volume(g.volume);
                           // Layers are read (and uploaded) -j at a time, each from its own zstd frame.
                           const bundle::StreamStats stats = reader.read_entries_parallel(
                               g.path, options.jobs, [&](const bundle::StreamEntry& e) { return pusher.target(e); },
                               progress, [&] { return pusher.done_with_stream(); });
                           result.stats.entries += stats.entries;
                           result.stats.bytes += stats.bytes;
                           result.read_whole_bundle = result.read_whole_bundle && stats.complete;
                           if (!stats.complete) {
                             log.info("the target already holds every remaining blob of " + core::display(g.path) +
                                      ": the rest of it was not read");
                           }
                         });
    }
    result.stats.complete = result.read_whole_bundle;
    pusher.join_pieces();
    pusher.push_manifests();
    result.transfer = pusher.transfer_stats();
    result.descriptor = set.descriptor;
    result.signature = set.signature;
    if (result.waiting.empty()) {
      journal.record("complete");
      return;
    }
    std::set<std::string> volumes;
    std::string images;
    for (const auto& w : result.waiting) {
      volumes.insert(w.volume_names.begin(), w.volume_names.end());
      if (images.size() < 2000) images += (images.empty() ? "" : ", ") + w.kind + " " + w.source;
    }
    std::string names;
    for (const auto& v : volumes) names += (names.empty() ? "" : ", ") + v;
    const std::string what = std::to_string(result.waiting.size()) + " of " +
                             std::to_string(result.waiting.size() + result.artifacts.size()) +
                             " images and charts wait for blobs the target lacks" +
                             (names.empty() ? std::string() : ", in volumes not given (" + names + ")") + ": " + images;
    if (options.partial) {
      log.info("--partial: " + what + "; a push of those volumes completes them");
      return;
    }
    throw core::Error(core::ExitCode::failure, "the push is incomplete: " + what,
                      "push the missing volumes (alone or with the others), or pass --partial to push volume by "
                      "volume as they arrive; what was complete is in the registry");
  });
  return result;
}

} // namespace ferry
