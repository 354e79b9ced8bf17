// ferry inventory: what the internal registry holds, as a receipt for `pack --base`.
// SPDX-License-Identifier: Apache-2.0
#include "inventory.hpp"

#include "cli/commands/commands.hpp"
#include "cli/commands/registry_flags.hpp"
#include "cli/output.hpp"
#include "cli/render.hpp"
#include "core/error.hpp"
#include "core/secret.hpp"

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <ctime>
#include <memory>
#include <string>
#include <vector>

namespace ferry::cli {

void add_inventory(CLI::App& app, CommandRun& run) {
  struct Flags {
    std::string registry;
    std::vector<std::string> repos;
    std::vector<std::string> bundles;
    std::string output;
    std::string key;
    std::string passphrase_file;
    RegistryFlags connection;
  };
  auto flags = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand("inventory", "List what the internal registry holds, as a receipt for `pack --base`");
  cmd->add_option("--registry", flags->registry, "The registry: HOST[:PORT][/PREFIX], as given to push")->required();
  cmd->add_option("--repos", flags->repos,
                  "Repositories to list, as paths under the prefix (library/nginx, charts/demo); default: those of "
                  "--bundle, else the registry's catalog under the prefix");
  cmd->add_option("--bundle", flags->bundles,
                  "List the repositories push gave this bundle's images and charts (a .tar.zst or one volume; "
                  "repeatable)");
  cmd->add_option("-o,--out", flags->output, "Receipt to write (RECEIPT.json)")->required();
  cmd->add_option("--key", flags->key,
                  "Sign the receipt with this private key (RECEIPT.json.sig beside it, as ferry.json.sig)");
  cmd->add_option("--passphrase-file", flags->passphrase_file,
                  "File holding the key's passphrase (or set FERRY_KEY_PASSPHRASE)");
  add_registry_flags(*cmd, flags->connection, "the registry");
  cmd->footer("Every tag of each repository is read, manifests walked (indexes too), and every config and layer\n"
              "HEAD-checked: the receipt lists only what the registry really has. Carry it out of the air gap and\n"
              "pack against it: `ferry pack --base RECEIPT.json` (docs/differential.md). `created` comes from\n"
              "SOURCE_DATE_EPOCH when set, else from the clock.");
  cmd->callback([flags, &run] {
    run = [flags](Output& out) {
      InventoryOptions options;
      options.registry = PushTarget::parse(flags->registry);
      options.repositories = flags->repos;
      options.bundles = {flags->bundles.begin(), flags->bundles.end()};
      options.client = client_options(flags->connection);
      options.jobs = flags->connection.jobs;
      options.created = source_date_epoch_env().value_or(static_cast<std::int64_t>(std::time(nullptr)));
      options.tool_version = ferry_version();
      options.output = flags->output;
      options.key = flags->key;
      options.passphrase = read_passphrase(flags->passphrase_file);
      const core::WipeOnExit wipe_passphrase(options.passphrase);
      const InventoryResult r = take_inventory(options, out, out);
      out.finish_progress();
      const bundle::Receipt& receipt = r.receipt;
      std::size_t manifests = 0;
      std::size_t tags = 0;
      for (const auto& repo : receipt.repositories) {
        manifests += repo.manifests.size();
        tags += repo.tags.size();
      }
      if (out.json()) {
        nlohmann::json problems = nlohmann::json::array();
        for (const auto& p : receipt.problems) {
          problems.push_back({{"repository", p.repository}, {"reference", p.reference}, {"problem", p.problem}});
        }
        print_json(out, {{"receipt", r.receipt_path.string()},
                         {"signature", r.signature_path.empty() ? nlohmann::json() : nlohmann::json(r.signature_path.string())},
                         {"signer", receipt.signer ? nlohmann::json(receipt.signer->key_id) : nlohmann::json()},
                         {"registry", receipt.registry},
                         {"created", receipt.created},
                         {"repositoriesFrom", r.repositories_from},
                         {"repositories", receipt.repositories.size()},
                         {"tags", tags},
                         {"manifests", manifests},
                         {"blobs", receipt.blobs.size()},
                         {"blobBytes", r.blob_bytes},
                         {"problems", problems}});
        return;
      }
      out.result(fmt::format("wrote {}{}", r.receipt_path.string(),
                             r.signature_path.empty() ? std::string(" (unsigned)")
                                                      : fmt::format(" and {} (signed by {} key {})", r.signature_path.string(),
                                                                    receipt.signer->algorithm, receipt.signer->key_id)));
      out.result(fmt::format("registry   {} ({} repositories from {})", receipt.registry, receipt.repositories.size(),
                             r.repositories_from));
      out.result(fmt::format("held       {} tags, {} manifests confirmed, {} blobs ({})", tags, manifests,
                             receipt.blobs.size(), human_bytes(r.blob_bytes)));
      if (!receipt.problems.empty()) {
        out.result(fmt::format("problems   {} (not listed as held):", receipt.problems.size()));
        for (const auto& p : receipt.problems) out.result(fmt::format("  {} {}: {}", p.repository, p.reference, p.problem));
      }
    };
  });
}

} // namespace ferry::cli
