// The split-bundle writer: plan, hash the pieces, sign, write every volume, rename them
// together.
// SPDX-License-Identifier: Apache-2.0
#include "bundle/volume_writer.hpp"

#include "bundle/tar_writer.hpp"
#include "core/background_sink.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/io.hpp"
#include "oci/media_types.hpp"

#include <cerrno>
#include <set>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace ferry::bundle {

namespace fs = std::filesystem;

namespace {

const BlobSource& source_of(const std::map<core::Digest, BlobSource>& sources, const core::Digest& digest) {
  const auto it = sources.find(digest);
  if (it == sources.end()) {
    throw core::Error(core::ExitCode::failure, "writing volumes: no source for blob " + digest.str());
  }
  return it->second;
}

// Reads every blob that goes in pieces once: each piece's digest into the table, and the
// whole blob checked unless its source was checked already.
void hash_pieces(BundleDescriptor& d, const std::map<core::Digest, BlobSource>& sources, core::ProgressSink& progress) {
  std::uint64_t total = 0;
  for (const auto& b : d.blobs) {
    if (!b.pieces.empty()) total += b.size;
  }
  std::uint64_t done = 0;
  std::vector<char> buffer(core::k_copy_buffer_size);
  for (BlobRecord& b : d.blobs) {
    if (b.pieces.empty()) continue;
    const BlobSource& source = source_of(sources, b.digest);
    core::with_context("hashing the pieces of blob " + b.digest.str() + " from " + source.origin, [&] {
      core::FileSource file(source.file);
      if (source.offset != 0) file.seek(source.offset);
      core::Sha256 whole;
      for (PieceRecord& piece : b.pieces) {
        core::ExactSource exact(file, piece.size, "blob " + b.digest.str() + " in " + core::display(source.file));
        core::Sha256 hash;
        while (const std::size_t n = exact.read(buffer.data(), buffer.size())) {
          hash.update(buffer.data(), n);
          if (!source.checked) whole.update(buffer.data(), n);
          done += n;
          progress.progress({"hash pieces", b.digest.str(), done, total});
        }
        piece.digest = hash.finish();
      }
      if (!source.checked) {
        const core::Digest actual = whole.finish();
        if (actual != b.digest) {
          throw core::IntegrityError("blob " + b.digest.str() + " of " + source.origin + " has digest " + actual.str() +
                                         " (" + core::display(source.file) + ")",
                                     "the source is corrupt or changed while packing; recreate it and pack again");
        }
      }
    });
  }
}

Compression compression_for(const std::string& media_type) {
  return oci::media_type::is_compressed(media_type) ? Compression::fastest : Compression::normal;
}

void sync_directory(const fs::path& dir) {
  core::UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd || ::fsync(fd.get()) != 0) {
    const int err = errno;
    throw core::Error(core::ExitCode::failure, "cannot flush directory " + core::display(dir) + ": " + core::errno_text(err));
  }
}

} // namespace

VolumeWriteResult write_volumes(BundleDescriptor& d, const std::map<core::Digest, BlobSource>& sources,
                                const VolumeWriteOptions& options, const Signer& sign,
                                const std::function<void(const core::Digest&)>& written, core::LogSink& log,
                                core::ProgressSink& progress) {
  VolumeWriteResult result;
  result.plan = plan_volumes(d, options.limit);
  for (const auto& b : d.blobs) {
    if (!b.pieces.empty()) ++result.pieced_blobs;
  }
  log.info("volume plan: " + std::to_string(result.plan.count) + " volumes of at most " + std::to_string(options.limit) +
           " bytes; each repeats " + std::to_string(result.plan.fixed_bytes) + " bytes (at worst) of head and manifests; " +
           std::to_string(result.pieced_blobs) + (result.pieced_blobs == 1 ? " blob" : " blobs") + " in pieces");
  hash_pieces(d, sources, progress);
  const std::string descriptor_json = to_json(d);
  if (descriptor_json.size() > result.plan.descriptor_budget) {
    // The digests filled in have the length of the placeholders: this cannot move.
    throw core::Error(core::ExitCode::failure, "volume plan: ferry.json grew past its planned size");
  }
  const std::string signature = sign(descriptor_json);
  const core::Digest bundle_digest = core::sha256_of(descriptor_json);

  // Which volume writes a blob's last byte: after it the caller may drop the blob.
  std::map<core::Digest, std::uint32_t> last_volume;
  for (const auto& b : d.blobs) {
    if (b.all_volumes) {
      last_volume[b.digest] = result.plan.count - 1;
    } else if (b.volume) {
      last_volume[b.digest] = *b.volume;
    } else if (!b.pieces.empty()) {
      last_volume[b.digest] = b.pieces.back().volume;
    }
  }

  core::TempDir staging(options.output, "volumes");
  std::uint64_t total = 0;
  for (std::uint32_t k = 0; k < result.plan.count; ++k) {
    for (const auto& e : volume_entries(d, k)) total += e.size;
  }
  std::uint64_t done = 0;
  std::vector<fs::path> temporaries;
  for (std::uint32_t k = 0; k < result.plan.count; ++k) {
    const fs::path final_path = volume_path(options.output, k);
    const fs::path temp = staging.path() / final_path.filename();
    core::with_context("writing volume " + core::display(final_path), [&] {
      core::UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
      if (!fd) {
        const int err = errno;
        throw core::Error(core::ExitCode::failure, "cannot create " + core::display(temp) + ": " + core::errno_text(err));
      }
      core::FdSink file(std::move(fd), core::display(temp), core::WriteBehind::yes);
      core::HashingSink hashed(file);
      {
        // Compressing here and hashing + writing on a second thread overlap, as for a
        // one-file bundle.
        core::BackgroundSink background(hashed);
        TarWriter tar(background, {.level = options.level, .mtime = options.mtime});
        auto add_bytes = [&](std::string_view path, const std::string& bytes) {
          tar.add({.path = std::string(path), .size = bytes.size(), .mode = 0644, .compression = Compression::normal},
                  bytes);
        };
        add_bytes(k_descriptor_path, descriptor_json);
        add_bytes(k_signature_path, signature);
        add_bytes(k_volume_path, to_json(VolumeLabel{bundle_digest, k, result.plan.count}));
        for (const VolumeEntry& e : volume_entries(d, k)) {
          if (!e.blob) {
            add_bytes(e.path, e.path == k_layout_marker_path ? options.layout_marker : options.index_json);
            continue;
          }
          const BlobSource& source = source_of(sources, e.blob->digest);
          core::with_context("writing " + e.path + " from " + source.origin, [&] {
            core::FileSource in(source.file);
            if (source.offset + e.offset != 0) in.seek(source.offset + e.offset);
            core::ExactSource exact(in, e.size, "blob " + e.blob->digest.str() + " in " + core::display(source.file));
            const EntryHeader header{.path = e.path, .size = e.size, .mode = 0644, .compression = compression_for(e.media_type)};
            if (source.checked && !e.is_piece) {
              tar.add(header, exact);
              return;
            }
            // Unchecked sources are hashed as they stream (one read); pieces are hashed
            // again, their source read a second time since they were.
            core::HashingSource hashing(exact);
            tar.add(header, hashing);
            const core::Digest actual = hashing.finish();
            if (actual != e.digest) {
              throw core::IntegrityError(e.path + " of " + source.origin + " has digest " + actual.str() + ", expected " +
                                             e.digest.str() + " (" + core::display(source.file) + ")",
                                         "the source changed while packing; pack again");
            }
          });
          done += e.size;
          progress.progress({"pack", e.path, done, total});
          if (written && last_volume[e.blob->digest] == k && (!e.is_piece || e.piece + 1 == e.blob->pieces.size())) {
            written(e.blob->digest);
          }
        }
        tar.finish();
        background.finish();
      }
      file.sync_and_close();
      const std::uint64_t size = hashed.count();
      if (size > options.limit) {
        throw core::Error(core::ExitCode::failure, "volume " + std::to_string(k) + " came out at " + std::to_string(size) +
                                                       " bytes, above the limit of " + std::to_string(options.limit) +
                                                       " (the plan's worst case was " +
                                                       std::to_string(result.plan.worst_case[k]) + ")",
                          "this is a bug in ferry; pack again with a smaller --split and report it");
      }
      result.volumes.push_back(WrittenVolume{final_path, size, hashed.finish()});
      temporaries.push_back(temp);
    });
  }

  // Every volume is complete: now, and only now, they take their names.
  for (std::size_t k = 0; k < temporaries.size(); ++k) {
    if (::rename(temporaries[k].c_str(), result.volumes[k].path.c_str()) != 0) {
      const int err = errno;
      throw core::Error(core::ExitCode::failure, "cannot rename " + core::display(temporaries[k]) + " to " +
                                                     core::display(result.volumes[k].path) + ": " +
                                                     core::errno_text(err));
    }
  }
  const fs::path dir = options.output.has_parent_path() ? options.output.parent_path() : fs::path(".");
  sync_directory(dir);
  std::string lines;
  for (const auto& v : result.volumes) lines += std::string(v.digest.hex()) + "  " + v.path.filename().string() + "\n";
  core::write_file_atomic(options.checksums, lines);
  // Volumes an earlier pack of this name made beyond the new count would read as part of
  // this set (and be refused as foreign): they go.
  for (std::uint32_t k = result.plan.count; k < k_max_volumes; ++k) {
    const fs::path stale = volume_path(options.output, k);
    std::error_code ec;
    if (!fs::is_regular_file(fs::symlink_status(stale, ec))) break;
    if (fs::remove(stale, ec)) log.info("removed " + core::display(stale) + ", left by an earlier pack of this name");
  }
  return result;
}

} // namespace ferry::bundle
