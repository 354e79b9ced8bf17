// ferry lock: resolve a bundle manifest into its lock file without downloading a layer.
// SPDX-License-Identifier: Apache-2.0
#include "lock.hpp"
#include "pack.hpp"

#include "cli/commands/commands.hpp"
#include "cli/commands/registry_flags.hpp"
#include "cli/output.hpp"
#include "cli/render.hpp"
#include "core/fs.hpp"

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <memory>

namespace ferry::cli {

void add_lock(CLI::App& app, CommandRun& run) {
  struct Flags {
    std::string manifest;
    std::string output;
    RegistryFlags registry;
    std::vector<std::string> mirrors;
    std::vector<std::string> platforms;
    std::string helm;
  };
  auto flags = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand("lock", "Resolve a bundle manifest into its lock file (no layer is downloaded)");
  cmd->add_option("-f,--file", flags->manifest, "Bundle manifest (YAML, see manifests/), a Hauler manifest (kinds Images, Charts, Files) or a plain image list")->required();
  cmd->add_option("-o,--out", flags->output,
                  "Lock file to write (default MANIFEST.lock.json beside the manifest: NAME.lock.json for NAME.yaml)");
  add_registry_flags(*cmd, flags->registry, "source registries and chart repositories");
  cmd->add_option("--mirror", flags->mirrors, "Pull REGISTRY's images through a mirror: REGISTRY=HOST[:PORT][/PREFIX]");
  cmd->add_option("--platform", flags->platforms,
                  "Keep only this platform of multi-platform images, os/arch[/variant] (repeatable)");
  cmd->add_option("--helm", flags->helm, "helm used to render charts with `images: auto` (default: helm from $PATH)");
  cmd->footer("Every tag is resolved to its digest (and each platform's), every chart constraint to an exact\n"
              "version, archive URL and digest, every file to its digest, as `ferry pack` would; manifests,\n"
              "configs and charts are read, layers are not. `ferry pack --locked` then packs exactly this.");
  cmd->callback([flags, &run] {
    run = [flags](Output& out) {
      PackOptions options;
      options.manifest = flags->manifest;
      options.dry_run = true;
      options.helm = flags->helm;
      options.pull.client = client_options(flags->registry);
      options.pull.jobs = flags->registry.jobs;
      for (const auto& m : flags->mirrors) options.pull.mirrors.push_back(Mirror::parse(m));
      for (const auto& p : flags->platforms) options.platforms.push_back(oci::Platform::parse(p));
      const PackResult r = pack(options, out, out);
      out.finish_progress();
      const std::filesystem::path file =
          flags->output.empty() ? lock_path_for(flags->manifest) : std::filesystem::path(flags->output);
      core::write_file_atomic(file, to_json(r.lock));
      if (out.json()) {
        print_json(out, {{"lockFile", file.string()},
                         {"images", r.lock.images.size()},
                         {"charts", r.lock.charts.size()},
                         {"files", r.lock.files.size()}});
        return;
      }
      out.result(fmt::format("wrote {}: {} images, {} charts, {} files", file.string(), r.lock.images.size(),
                             r.lock.charts.size(), r.lock.files.size()));
    };
  });
}

} // namespace ferry::cli
