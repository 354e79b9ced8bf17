// Reading a bundle file's blobs in parallel, one zstd frame per entry (DESIGN §2: each
// entry is its own frame, so a reader can start at any entry).
// SPDX-License-Identifier: Apache-2.0
#include "bundle/bundle_reader.hpp"

#include "bundle/frame_reader.hpp"
#include "bundle/zstd_frames.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "oci/media_types.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

namespace ferry::bundle {

namespace {

bool is_metadata(const StreamEntry& entry) {
  return oci::media_type::is_index(entry.media_type) || oci::media_type::is_manifest(entry.media_type);
}

} // namespace

StreamStats BundleReader::read_entries_parallel(const std::filesystem::path& file, int jobs, const EntryTarget& target,
                                                core::ProgressSink& progress, const std::function<bool()>& stop_early) {
  if (!m_opened) throw core::Error(core::ExitCode::failure, "BundleReader::read_entries_parallel called before open");
  core::FileSource probe(file);
  const std::uint64_t file_size = probe.size();
  const FrameWalker start(probe.fd(), file_size, m_display);
  if (jobs < 2 || !framed_per_entry(file, start, m_display)) return read_entries(target, progress, stop_early);
  FrameWalker walker = start;

  StreamStats stats;
  const std::uint64_t total = m_descriptor.blob_bytes();
  std::mutex mutex; // guards the blob table, `target`, commits, the queue and stats.entries
  std::mutex progress_mutex;
  std::atomic<std::uint64_t> verified_bytes{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::deque<FrameExtent> queue;
  std::condition_variable changed;
  bool walked = false;                 // every frame is queued (or the walk stopped)
  std::optional<FrameExtent> end_frame; // the frame holding the end-of-archive blocks

  std::uint64_t progress_bytes = 0; // guarded by progress_mutex
  auto count = [&](const StreamEntry& entry, std::size_t n) {
    verified_bytes += n;
    // Progress counts blob bytes, as `total` does (not ferry.json, index.json, oci-layout).
    if (entry.path.rfind("blobs/", 0) != 0) return;
    std::lock_guard lock(progress_mutex); // also keeps the reported totals in order
    progress_bytes += n;
    progress.progress({"verify", entry.path, progress_bytes, total});
  };
  // Reads the one entry of `frame` (the caller holds no lock). `index` counts frames
  // from the file's start in the metadata phase (-1 after it, when only layers may
  // come); returns false when the entry is a layer left unread for a worker (metadata
  // phase only).
  auto read_frame = [&](const FrameExtent& frame, int index) -> bool {
    const bool metadata_phase = index >= 0;
    FrameReader reader(file, frame, m_display);
    TarReader& tar = reader.tar();
    const auto tar_entry = tar.next();
    std::unique_lock lock(mutex);
    if (!tar_entry) {
      if (end_frame) throw core::IntegrityError("bundle " + m_display + " has a second end-of-archive frame");
      end_frame = frame;
      return true;
    }
    const bool head_name = tar_entry->path == k_descriptor_path || tar_entry->path == k_signature_path ||
                           (m_volume && tar_entry->path == k_volume_path);
    if (head_name) {
      // Checked by open(); only where they belong, once each.
      const auto at = static_cast<std::size_t>(index);
      if (index < 0 || at >= m_head.size() || m_head[at].first != tar_entry->path) {
        throw core::IntegrityError("bundle " + m_display + " has a second " + tar_entry->path,
                                   "do not use this bundle: something was added after it was signed");
      }
      lock.unlock();
      const std::string bytes = core::read_all(tar.body(), k_max_descriptor_size, tar_entry->path);
      if (bytes != m_head[at].second) {
        throw core::IntegrityError("bundle " + m_display + " changed while it was read (" + tar_entry->path + ")",
                                   "copy the bundle again and do not modify it during the push");
      }
    } else {
      if (metadata_phase) {
        // Peek without claiming: a layer goes to the workers.
        const auto it = m_expected.find(tar_entry->path);
        if (it != m_expected.end() && !it->second.entry.media_type.empty() && !is_metadata(it->second.entry)) {
          return false;
        }
      }
      const StreamEntry& entry = claim(*tar_entry);
      if (!metadata_phase && is_metadata(entry)) {
        throw core::IntegrityError("bundle entry " + entry.path + " is a manifest after the layers",
                                   "this bundle was not written by ferry pack; verify it with `ferry verify`");
      }
      core::with_context("reading bundle entry " + entry.path, [&] {
        std::unique_ptr<EntrySink> sink = target ? target(entry) : nullptr;
        lock.unlock();
        const auto metadata = verify_body(tar, entry, sink.get(), false, [&](std::size_t n) {
          if (failed) throw core::Error(core::ExitCode::failure, "stopped");
          count(entry, n);
        });
        if (tar.next()) {
          throw core::IntegrityError("bundle " + m_display + ": the zstd frame of " + entry.path +
                                         " holds more than that entry",
                                     "this bundle was not written by ferry pack; verify it with `ferry verify`");
        }
        lock.lock();
        if (metadata) learn_children(entry, *metadata);
        if (sink) sink->commit();
        ++stats.entries;
      });
      return true;
    }
    if (tar.next()) {
      throw core::IntegrityError("bundle " + m_display + ": the zstd frame of " + tar_entry->path +
                                 " holds more than that entry");
    }
    return true;
  };

  // True when the entry at `offset` is a layer (a blob that is not a manifest): read from
  // the frame's first block only, so that a stop before the layers never walks one.
  auto layer_at = [&](std::uint64_t offset) {
    try {
      FrameReader reader(file, FrameExtent{offset, file_size - offset}, m_display);
      const auto entry = reader.tar().next();
      if (!entry) return false;
      std::lock_guard lock(mutex);
      const auto it = m_expected.find(entry->path);
      return it != m_expected.end() && !it->second.entry.media_type.empty() && !is_metadata(it->second.entry);
    } catch (const std::exception&) {
      return false; // read_frame reports what is wrong with it
    }
  };

  // The head, the layout and the manifests, here; the first other blob ends this phase.
  bool layers_next = false;
  std::optional<FrameExtent> first_layer; // a layer frame already walked, for the workers
  bool stopped = false;
  int index = 0;
  for (;;) {
    {
      std::lock_guard lock(mutex);
      if (stop_early && stop_early()) {
        stopped = true;
        break;
      }
    }
    if (walker.offset() < file_size && layer_at(walker.offset())) {
      layers_next = true;
      break;
    }
    const auto frame = walker.next();
    if (!frame) break;
    if (!read_frame(*frame, index++)) {
      first_layer = frame;
      layers_next = true;
      break;
    }
  }

  if (layers_next) {
    auto worker = [&] {
      for (;;) {
        FrameExtent frame;
        {
          std::unique_lock lock(mutex);
          changed.wait(lock, [&] { return !queue.empty() || walked || failed; });
          if (failed || queue.empty()) return;
          frame = queue.front();
          queue.pop_front();
          changed.notify_all();
        }
        try {
          read_frame(frame, -1);
        } catch (...) {
          std::lock_guard lock(mutex);
          if (!error) error = std::current_exception();
          failed = true;
          changed.notify_all();
          return;
        }
      }
    };
    std::vector<std::thread> threads;
    auto stop_all = [&] {
      {
        std::lock_guard lock(mutex);
        walked = true;
        changed.notify_all();
      }
      for (auto& t : threads) t.join();
    };
    try {
      for (int t = 0; t < jobs; ++t) threads.emplace_back(worker);
      for (;;) {
        {
          std::unique_lock lock(mutex);
          // A few frames ahead of the workers, no more: the walk reads the file too.
          changed.wait(lock, [&] { return queue.size() < static_cast<std::size_t>(jobs) || failed; });
          if (failed) break;
          // Asked before the next frame is walked: stopping reads nothing more.
          if (stop_early && stop_early()) {
            stopped = true;
            break;
          }
        }
        std::optional<FrameExtent> frame = first_layer ? first_layer : walker.next();
        first_layer.reset();
        if (!frame) break;
        std::lock_guard lock(mutex);
        queue.push_back(*frame);
        changed.notify_all();
      }
    } catch (...) {
      std::lock_guard lock(mutex);
      if (!error) error = std::current_exception();
      failed = true;
    }
    stop_all();
    if (error) std::rethrow_exception(error);
  }

  stats.bytes = verified_bytes;
  if (stopped) {
    stats.complete = false;
    return stats;
  }
  if (!end_frame) {
    throw core::IntegrityError("bundle " + m_display + " has no end-of-archive blocks (it was cut short)",
                               "copy the bundle again from the original media");
  }
  if (end_frame->offset + end_frame->length != file_size) {
    throw core::IntegrityError("bundle " + m_display + " holds data after the end of its archive",
                               "do not use this bundle: something was added after it was signed");
  }
  check_complete();
  return stats;
}

} // namespace ferry::bundle
