// The isolated-side inputs of values, check and upgrade: a bundle's releases with their
// chart archives (read without decompressing the images), and each release's overlay.
// SPDX-License-Identifier: Apache-2.0
#include "isolated.hpp"

#include "bundle/bundle_reader.hpp"
#include "bundle/frame_reader.hpp"
#include "bundle/signing.hpp"
#include "bundle/tar_reader.hpp"
#include "bundle/zstd_frames.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/io.hpp"
#include "check.hpp"
#include "oci/reference.hpp"

#include <exception>
#include <map>
#include <optional>
#include <set>

namespace ferry {

namespace fs = std::filesystem;

namespace {

std::string blob_path(const core::Digest& digest) { return "blobs/sha256/" + std::string(digest.hex()); }

// The wanted chart archives, by blob path.
struct Wanted {
  core::Digest digest;
  std::uint64_t size = 0;
  std::string chart; // "charts/NAME:VERSION", for messages
  std::optional<std::string> bytes;
};

void check_archive(const Wanted& wanted, const std::string& bytes, const std::string& display) {
  const core::Digest actual = core::sha256_of(bytes);
  if (actual != wanted.digest || bytes.size() != wanted.size) {
    throw core::IntegrityError("bundle entry " + blob_path(wanted.digest) + " (chart " + wanted.chart + ") has digest " +
                                   actual.str() + " and " + std::to_string(bytes.size()) + " bytes, expected " +
                                   wanted.digest.str() + " and " + std::to_string(wanted.size) + " bytes",
                               "the file changed after it was signed; run `ferry verify " + display +
                                   "`, then copy the bundle again");
  }
}

// Walks the frames, peeks at each entry's header and reads only the chart archives.
void read_framed(core::FileSource& file, bundle::FrameWalker walker, const std::string& display,
                 std::map<std::string, Wanted>& wanted) {
  std::size_t left = wanted.size();
  while (left > 0) {
    const auto frame = walker.next();
    if (!frame) break;
    bundle::FrameReader reader(file.path(), *frame, display);
    const auto entry = reader.tar().next();
    if (!entry) continue;
    const auto it = wanted.find(entry->path);
    if (it == wanted.end() || it->second.bytes) continue;
    core::with_context("reading bundle entry " + entry->path, [&] {
      if (entry->type != bundle::EntryType::regular) {
        throw core::IntegrityError("bundle entry " + entry->path + " is not a regular file");
      }
      std::string bytes = core::read_all(reader.tar().body(), it->second.size + 1, entry->path);
      check_archive(it->second, bytes, display);
      it->second.bytes = std::move(bytes);
    });
    --left;
  }
}

// Any other bundle: front to back, each entry verified by the reader, stopping once the
// charts were seen.
void read_sequential(bundle::BundleReader& reader, std::map<std::string, Wanted>& wanted) {
  class Capture final : public bundle::EntrySink {
  public:
    explicit Capture(Wanted& wanted) : m_wanted(wanted) {}
    void write(const char* data, std::size_t size) override { m_bytes.write(data, size); }
    void commit() override { m_wanted.bytes = m_bytes.take(); }

  private:
    Wanted& m_wanted;
    core::StringSink m_bytes;
  };
  std::size_t left = wanted.size();
  core::NullProgress progress;
  reader.read_entries(
      [&](const bundle::StreamEntry& entry) -> std::unique_ptr<bundle::EntrySink> {
        const auto it = wanted.find(entry.path);
        if (it == wanted.end() || it->second.bytes) return nullptr;
        --left;
        return std::make_unique<Capture>(it->second);
      },
      progress, [&] { return left == 0; });
}

// The bundle image a declared chart image names: by ref, else by source, normalised.
std::optional<std::string> bundle_image_for(const bundle::BundleDescriptor& descriptor, const std::string& declared) {
  for (const auto& image : descriptor.images) {
    if (image.ref == declared || image.source == declared) return image.ref;
  }
  std::optional<oci::Reference> wanted;
  try {
    wanted = oci::Reference::parse(declared);
  } catch (const core::Error&) {
    return std::nullopt;
  }
  for (const auto& image : descriptor.images) {
    try {
      if (oci::Reference::parse(image.ref) == *wanted) return image.ref;
    } catch (const core::Error&) {
    }
  }
  return std::nullopt;
}

} // namespace

LoadedBundle load_bundle_releases(const fs::path& path, const TrustOptions& trust, core::LogSink& log) {
  bundle::TrustedKeys keys;
  const bundle::SignaturePolicy policy = load_trust(trust, keys, log);
  const std::string display = core::display(path);
  return core::with_context("reading the releases of " + display, [&] {
    core::FileSource in(path);
    bundle::BundleReader reader(in, display);
    reader.open(keys, policy);
    LoadedBundle loaded;
    loaded.descriptor = reader.descriptor();
    loaded.signature = reader.signature();
    loaded.descriptor_digest = core::sha256_of(reader.descriptor_bytes()).str();

    std::map<std::string, Wanted> wanted;
    for (BundleRelease& release : bundle_releases(loaded.descriptor)) {
      const bundle::ChartRecord* chart = nullptr;
      std::vector<std::string> names;
      for (const auto& c : loaded.descriptor.charts) {
        names.push_back(c.name);
        if (c.name == release.chart) chart = &c;
      }
      if (!chart) {
        const std::string near = core::suggest(release.chart, names);
        throw core::UsageError("release '" + release.name + "' uses chart '" + release.chart + "', which bundle " +
                                   display + " does not carry",
                               near.empty() ? "pack the bundle again with the chart under `charts:`"
                                            : "did you mean '" + near + "'? fix the release's `chart:` and pack again");
      }
      const bundle::BlobRecord* blob = loaded.descriptor.find_blob(chart->archive_digest);
      if (!blob) {
        throw core::IntegrityError("chart " + chart->ref + " names archive " + chart->archive_digest.str() +
                                   ", which is not in the blob table of " + display);
      }
      wanted.emplace(blob_path(chart->archive_digest), Wanted{chart->archive_digest, blob->size, chart->ref, std::nullopt});
      ReleaseInputs inputs;
      inputs.chart = *chart;
      for (const auto& declared : chart->images) {
        if (auto ref = bundle_image_for(loaded.descriptor, declared)) {
          inputs.chart_images.push_back(*ref);
        } else {
          log.warning("chart " + chart->name + " declares image " + declared + ", which bundle " + display +
                      " does not carry");
        }
      }
      inputs.release = std::move(release);
      loaded.releases.push_back(std::move(inputs));
    }
    if (wanted.empty()) return loaded;

    // The frames are read through their own handle: `in` stays where the reader left it,
    // for the front-to-back read.
    core::FileSource frames(path);
    const bundle::FrameWalker walker(frames.fd(), frames.size(), display);
    if (bundle::framed_per_entry(path, walker, display)) {
      read_framed(frames, walker, display, wanted);
    } else {
      read_sequential(reader, wanted);
    }
    for (const auto& [entry, w] : wanted) {
      if (!w.bytes) {
        throw core::IntegrityError("bundle " + display + " lacks entry " + entry + " (the archive of chart " + w.chart +
                                       ") that its ferry.json lists",
                                   "the bundle was cut short or altered; copy it again and run `ferry verify`");
      }
    }
    for (auto& inputs : loaded.releases) {
      inputs.chart_archive = *wanted.at(blob_path(inputs.chart.archive_digest)).bytes;
    }
    return loaded;
  });
}

std::vector<values::KnownImage> bundle_images(const bundle::BundleDescriptor& descriptor) {
  std::vector<values::KnownImage> out;
  out.reserve(descriptor.images.size());
  for (const auto& image : descriptor.images) out.push_back({image.ref, image.digest.str()});
  return out;
}

values::Result release_overlay(const ReleaseInputs& inputs, const PushTarget& target,
                               const std::vector<values::KnownImage>& images, bool pin_digests,
                               const std::vector<std::string>& site_values, const std::vector<std::string>& site_names) {
  const std::string what = "release " + inputs.release.name + " (chart " + inputs.chart.ref + ")";
  const std::string defaults = values::chart_values(inputs.chart_archive, what);
  std::vector<std::string> docs;
  std::vector<std::string> names;
  for (const auto& carried : inputs.release.values) {
    docs.push_back(carried.content);
    names.push_back(carried.file + " (bundle values of release " + inputs.release.name + ")");
  }
  for (std::size_t i = 0; i < site_values.size(); ++i) {
    docs.push_back(site_values[i]);
    names.push_back(i < site_names.size() ? site_names[i] : "site values " + std::to_string(i + 1) + " of release " +
                                                                inputs.release.name);
  }
  const std::string effective = values::coalesce(defaults, docs, names);

  values::Options options;
  options.target = values::Target{target.host, target.prefix};
  options.images_given = true;
  options.pin_digests = pin_digests;
  options.rules = inputs.release.rules;
  if (inputs.chart_images.empty()) {
    options.images = images;
  } else {
    const std::set<std::string> declared(inputs.chart_images.begin(), inputs.chart_images.end());
    for (const auto& image : images) {
      if (declared.count(image.ref)) options.images.push_back(image);
    }
  }
  return values::rewrite(effective, options, what);
}

ValuesResult write_release_overlays(const ValuesOptions& options, core::LogSink& log) {
  LoadedBundle loaded = load_bundle_releases(options.bundle, options.trust, log);
  ValuesResult result;
  result.descriptor = loaded.descriptor;
  result.signature = loaded.signature;
  const std::vector<values::KnownImage> images = bundle_images(loaded.descriptor);
  for (const ReleaseInputs& inputs : loaded.releases) {
    const std::string& name = inputs.release.name;
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
      throw core::UsageError("release name '" + name + "' of bundle " + core::display(options.bundle) +
                             " cannot name an overlay file");
    }
    core::with_context("computing the image overlay of release " + name, [&] {
      const std::string site = set_values_yaml(inputs.release.set, false);
      ReleaseValues rv;
      rv.name = name;
      rv.namespace_name = inputs.release.namespace_name;
      rv.chart = inputs.chart.name + " " + inputs.chart.version;
      rv.overlay_file = options.out_dir / (name + ".yaml");
      rv.result = release_overlay(inputs, options.target, images, options.pin_digests, {site},
                                  {"set: of release " + name});
      result.releases.push_back(std::move(rv));
    });
  }
  std::error_code ec;
  fs::create_directories(options.out_dir, ec);
  if (ec || !fs::is_directory(options.out_dir)) {
    throw core::UsageError("cannot create the output directory " + core::display(options.out_dir) +
                               (ec ? ": " + ec.message() : std::string(": it is not a directory")),
                           "give another directory with -o");
  }
  for (const auto& rv : result.releases) core::write_file_atomic(rv.overlay_file, rv.result.overlay_yaml);
  return result;
}

} // namespace ferry
