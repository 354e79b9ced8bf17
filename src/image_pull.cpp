// Registry sources for pack: a BlobAccess over a registry client, and parallel fetching.
// SPDX-License-Identifier: Apache-2.0
#include "image_pull.hpp"

#include "bundle/descriptor.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "oci/media_types.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <map>
#include <set>
#include <stdexcept>
#include <thread>

namespace ferry {

Mirror Mirror::from(const std::string& registry, const std::string& target) {
  if (registry.empty() || target.empty() || target.find("://") != std::string::npos) {
    throw core::UsageError("mirror '" + registry + "=" + target + "' is not REGISTRY=HOST[:PORT][/PREFIX]",
                           "for example --mirror docker.io=harbor.example.com/dockerhub");
  }
  Mirror m;
  m.registry = registry == "index.docker.io" ? "docker.io" : registry;
  const registry::Location location = registry::Location::split(target);
  m.host = location.host;
  m.prefix = location.prefix;
  return m;
}

Mirror Mirror::parse(const std::string& text) {
  const auto eq = text.find('=');
  if (eq == std::string::npos) {
    throw core::UsageError("mirror '" + text + "' is not REGISTRY=HOST[:PORT][/PREFIX]",
                           "for example --mirror docker.io=harbor.example.com/dockerhub");
  }
  return from(text.substr(0, eq), text.substr(eq + 1));
}

// The blobs of one repository: manifests and configs are read (from the store when it
// has them, else downloaded, and kept in the store); everything else is only queued.
class ImagePuller::Access final : public oci::BlobAccess {
public:
  Access(ImagePuller& puller, Source source) : m_puller(puller), m_source(std::move(source)) {}

  std::string read_blob(const oci::Descriptor& d, std::string_view what) override {
    if (d.size > bundle::k_max_metadata_blob_size) {
      throw core::IntegrityError(std::string(what) + " is " + std::to_string(d.size) + " bytes, more than the limit of " +
                                 std::to_string(bundle::k_max_metadata_blob_size) + " for manifests and configs");
    }
    oci::BlobStore& store = m_puller.m_store;
    std::string bytes;
    if (store.contains(d.digest)) {
      const std::filesystem::path file = store.path(d.digest);
      bytes = core::read_file(file, bundle::k_max_metadata_blob_size);
      if (bytes.size() != d.size || core::sha256_of(bytes) != d.digest) {
        throw core::IntegrityError(std::string(what) + " stored in " + core::display(file) + " has digest " +
                                       core::sha256_of(bytes).str() + " (" + std::to_string(bytes.size()) +
                                       " bytes), expected " + d.digest.str() + " (" + std::to_string(d.size) + " bytes)",
                                   "the stored copy is damaged: delete " + core::display(file) + " and run the command again");
      }
      if (!m_puller.m_verified.count(d.digest)) m_puller.count_reused(d);
    } else {
      if (oci::media_type::is_index(d.media_type) || oci::media_type::is_manifest(d.media_type)) {
        // By digest: the client checks the bytes hash to it.
        bytes = m_source.client->get_manifest(m_source.repository, d.digest.str()).bytes;
      } else {
        core::StringSink sink;
        m_source.client->get_blob(m_source.repository, d.digest, d.size, sink);
        bytes = sink.take();
      }
      if (bytes.size() != d.size || core::sha256_of(bytes) != d.digest) {
        throw core::IntegrityError(std::string(what) + " from " + m_source.display + " does not match its descriptor (" +
                                   d.digest.str() + ", " + std::to_string(d.size) + " bytes)");
      }
      m_puller.count_fetched(d.size);
      store.put_bytes(bytes);
    }
    m_puller.m_verified.insert(d.digest);
    return bytes;
  }

  oci::BlobRef locate(const oci::Descriptor& d) override {
    ImagePuller& p = m_puller;
    const std::filesystem::path file = p.m_store.path(d.digest);
    if (p.m_verified.count(d.digest) || p.m_queue.count(d.digest)) return oci::BlobRef{d, file, 0, oci::Checked::yes};
    if (p.m_reused.count(d.digest)) return oci::BlobRef{d, file, 0, oci::Checked::no};
    if (const auto size = p.m_store.size_of(d.digest)) {
      if (*size == d.size) {
        // Not read here: the consumer hashes it while it copies it (one read).
        p.count_reused(d);
        return oci::BlobRef{d, file, 0, oci::Checked::no};
      }
      // A blob store never renames a file of the wrong size in (BlobStore), so this one
      // was damaged afterwards; a new download would not replace it (same name).
      p.m_log.warning(core::display(file) + " holds " + std::to_string(*size) + " bytes, not the " +
                      std::to_string(d.size) + " of " + d.digest.str() + ": removed, downloading it again");
      std::error_code ignored;
      std::filesystem::remove(file, ignored);
    }
    p.m_queue.emplace(d.digest, Pending{m_source, d});
    p.count_fetched(d.size);
    return oci::BlobRef{d, file, 0, oci::Checked::yes};
  }

private:
  ImagePuller& m_puller;
  Source m_source;
};

void ImagePuller::count_reused(const oci::Descriptor& d) {
  if (!m_reused.insert(d.digest).second) return;
  ++m_stats.reused_blobs;
  m_stats.reused_bytes += d.size;
}

void ImagePuller::count_fetched(std::uint64_t size) {
  ++m_stats.fetched_blobs;
  m_stats.fetched_bytes += size;
}

ImagePuller::ImagePuller(PullOptions options, oci::BlobStore& store, core::LogSink& log)
    : m_options(std::move(options)), m_store(store), m_log(log) {
  if (m_options.jobs < 1) throw core::UsageError("-j must be at least 1");
}

registry::Client& ImagePuller::client_for(const std::string& host) {
  auto it = m_clients.find(host);
  if (it == m_clients.end()) {
    it = m_clients.emplace(host, std::make_unique<registry::Client>(host, m_options.client, m_log)).first;
  }
  return *it->second;
}

ImagePuller::Source ImagePuller::source_for(const oci::Reference& ref) {
  for (const auto& m : m_options.mirrors) {
    if (m.registry == ref.registry()) {
      const std::string repository = m.prefix.empty() ? ref.repository() : m.prefix + "/" + ref.repository();
      return Source{&client_for(m.host), repository, ref.name() + " (through mirror " + m.host + ")"};
    }
  }
  return Source{&client_for(ref.registry()), ref.repository(), ref.name()};
}

oci::ResolvedImage ImagePuller::resolve(const oci::Reference& ref, const oci::PlatformFilter& filter) {
  Source source = source_for(ref);
  // A digest in the reference wins over its tag: that is what the user pinned.
  const std::string wanted = ref.digest() ? ref.digest()->str() : *ref.tag();
  const registry::ManifestData root = source.client->get_manifest(source.repository, wanted);
  if (ref.digest() && root.digest != *ref.digest()) {
    throw core::IntegrityError("registry " + source.client->endpoint() + " returned manifest " + root.digest.str() +
                               " for " + ref.str());
  }
  if (!m_verified.count(root.digest)) {
    count_fetched(root.bytes.size());
    m_store.put_bytes(root.bytes);
    m_verified.insert(root.digest);
  }
  const oci::Descriptor descriptor{root.media_type, root.digest, root.bytes.size(), {}, {}, {}, {}};
  Access access(*this, source);
  oci::ResolvedImage resolved = oci::walk_image(access, descriptor, filter, m_store, ref.str(), m_log);
  resolved.ref_name = ref.str();
  return resolved;
}

void ImagePuller::skip(const std::set<core::Digest>& digests) {
  for (const auto& digest : digests) {
    if (const auto it = m_queue.find(digest); it != m_queue.end()) {
      --m_stats.fetched_blobs;
      m_stats.fetched_bytes -= it->second.descriptor.size;
      m_queue.erase(it);
    } else if (m_reused.count(digest) && !m_verified.count(digest)) {
      // Located in the store, never read: it will not be read now either.
      if (const auto size = m_store.size_of(digest)) {
        --m_stats.reused_blobs;
        m_stats.reused_bytes -= *size;
      }
      m_reused.erase(digest);
    }
  }
}

std::uint64_t ImagePuller::queued_bytes() const {
  std::uint64_t total = 0;
  for (const auto& [digest, pending] : m_queue) total += pending.descriptor.size;
  return total;
}

ImagePuller::Queued ImagePuller::queued() const {
  Queued q;
  for (const auto& [digest, pending] : m_queue) {
    ++q.blobs;
    q.bytes += pending.descriptor.size;
    q.largest = std::max(q.largest, pending.descriptor.size);
  }
  return q;
}

// The download threads share this: the work list, what is done, the first error.
struct ImagePuller::Fetch {
  std::vector<const Pending*> work;
  std::uint64_t total = 0;
  std::atomic<std::size_t> next{0};
  std::atomic<std::uint64_t> done_bytes{0};
  std::atomic<bool> stop{false};
  std::mutex mutex; // guards `done`, `error` and the progress sink
  std::condition_variable changed;
  std::set<core::Digest> done;
  std::exception_ptr error;
  std::vector<std::thread> threads;
  // With an order: offsets[i] = bytes of work[0..i); the consumer is at `consumer_at`
  // (it waits for work[consumer_at]); a download starts only while it is less than
  // `ahead` bytes beyond the consumer, so the store never holds much that is written but
  // not yet consumed (its pages would otherwise be written back to disk, competing with
  // the consumer's own writes).
  std::vector<std::uint64_t> offsets;
  std::map<core::Digest, std::size_t> index;
  std::size_t consumer_at = 0;
  std::uint64_t ahead = 0; // 0: no limit

  void join() {
    for (auto& t : threads) {
      if (t.joinable()) t.join();
    }
  }
  // Tells every thread to stop, waking those that wait for the consumer.
  void halt() {
    {
      std::lock_guard lock(mutex);
      stop = true;
    }
    changed.notify_all();
  }
};

namespace {

// Passes writes through until the puller stops: a failure elsewhere aborts the
// transfers in flight instead of waiting for them to finish.
class StoppableSink final : public core::Sink {
public:
  StoppableSink(core::Sink& inner, const std::atomic<bool>& stop) : m_inner(inner), m_stop(stop) {}
  void write(const char* data, std::size_t size) override {
    if (m_stop) throw core::Error(core::ExitCode::failure, "download stopped");
    m_inner.write(data, size);
  }
  using core::Sink::write;

private:
  core::Sink& m_inner;
  const std::atomic<bool>& m_stop;
};

} // namespace

ImagePuller::~ImagePuller() {
  if (m_fetch) {
    // Unwinding from a failure elsewhere: stop the downloads rather than finish them.
    m_fetch->halt();
    m_fetch->join();
  }
}

void ImagePuller::start(core::ProgressSink& progress, const std::vector<core::Digest>& order) {
  if (m_fetch) throw std::logic_error("ImagePuller::start called twice");
  m_fetch = std::make_unique<Fetch>();
  Fetch& f = *m_fetch;
  std::set<core::Digest> placed;
  for (const auto& digest : order) {
    const auto it = m_queue.find(digest);
    if (it != m_queue.end() && placed.insert(digest).second) f.work.push_back(&it->second);
  }
  std::vector<const Pending*> rest;
  for (const auto& [digest, pending] : m_queue) {
    if (!placed.count(digest)) rest.push_back(&pending);
  }
  // Largest first: the long transfers start early and the small ones fill the gaps.
  std::stable_sort(rest.begin(), rest.end(),
                   [](const Pending* a, const Pending* b) { return a->descriptor.size > b->descriptor.size; });
  f.work.insert(f.work.end(), rest.begin(), rest.end());
  f.total = queued_bytes();
  if (!order.empty()) {
    std::uint64_t offset = 0;
    for (std::size_t i = 0; i < f.work.size(); ++i) {
      f.offsets.push_back(offset);
      f.index.emplace(f.work[i]->descriptor.digest, i);
      offset += f.work[i]->descriptor.size;
    }
    f.ahead = std::max<std::uint64_t>(m_options.download_ahead, 1);
  }

  auto worker = [this, &f, &progress] {
    for (;;) {
      if (f.stop) return;
      const std::size_t i = f.next++;
      if (i >= f.work.size()) return;
      const Pending& p = *f.work[i];
      if (f.ahead != 0) {
        // The consumer's own blob always goes; others wait until it is near enough.
        std::unique_lock lock(f.mutex);
        f.changed.wait(lock, [&] {
          return f.stop || f.error || i <= f.consumer_at || f.offsets[i] - f.offsets[f.consumer_at] < f.ahead;
        });
        if (f.stop || f.error) return;
      }
      try {
        core::with_context("pulling blob " + p.descriptor.digest.str() + " of " + p.source.display, [&] {
          // get_blob checks the digest of what it writes before it returns.
          auto writer = m_store.begin(oci::BlobStore::Hashing::by_caller);
          StoppableSink sink(*writer, f.stop);
          p.source.client->get_blob(p.source.repository, p.descriptor.digest, p.descriptor.size, sink);
          writer->commit("blob " + p.descriptor.digest.str() + " from " + p.source.display, p.descriptor.digest,
                         p.descriptor.size);
        });
        const std::uint64_t now = f.done_bytes += p.descriptor.size;
        std::lock_guard lock(f.mutex);
        f.done.insert(p.descriptor.digest);
        progress.progress({"pull", p.descriptor.digest.str(), now, f.total});
        f.changed.notify_all();
      } catch (...) {
        std::lock_guard lock(f.mutex);
        // The first failure is the one to report; the others are its consequences.
        if (!f.error) f.error = std::current_exception();
        f.stop = true;
        f.changed.notify_all();
        return;
      }
    }
  };
  const std::size_t threads = std::min<std::size_t>(static_cast<std::size_t>(m_options.jobs), f.work.size());
  try {
    for (std::size_t t = 0; t < threads; ++t) f.threads.emplace_back(worker);
  } catch (...) {
    f.halt();
    f.join();
    throw;
  }
}

void ImagePuller::wait_for(const core::Digest& digest) {
  if (!m_fetch || !m_queue.count(digest)) return;
  Fetch& f = *m_fetch;
  std::unique_lock lock(f.mutex);
  if (const auto at = f.index.find(digest); at != f.index.end() && at->second > f.consumer_at) {
    f.consumer_at = at->second;
    f.changed.notify_all();
  }
  f.changed.wait(lock, [&] { return f.error || f.done.count(digest) != 0; });
  if (f.error) std::rethrow_exception(f.error);
}

void ImagePuller::finish() {
  if (!m_fetch) return;
  m_fetch->join();
  const std::exception_ptr error = m_fetch->error;
  m_fetch.reset();
  m_queue.clear();
  if (error) std::rethrow_exception(error);
}

void ImagePuller::fetch_all(core::ProgressSink& progress) {
  start(progress);
  finish();
}

} // namespace ferry
