// ferry keygen: a new signing key pair.
// SPDX-License-Identifier: Apache-2.0
#include "bundle/signing.hpp"
#include "cli/commands/commands.hpp"
#include "cli/output.hpp"
#include "cli/render.hpp"
#include "core/fs.hpp"
#include "core/secret.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <memory>

namespace ferry::cli {

void add_keygen(CLI::App& app, CommandRun& run) {
  struct Flags {
    std::string out;
    std::string type = "ed25519";
    std::string passphrase_file;
  };
  auto flags = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand("keygen", "Create a signing key pair: NAME.key (private, mode 0600) and NAME.pub");
  cmd->add_option("--out", flags->out, "Path and base name of the key files (NAME.key, NAME.pub)")->required();
  cmd->add_option("--type", flags->type, "Key type: ed25519 (default, reproducible bundles) or ecdsa-p256 (FIPS, cosign)")
      ->type_name("TYPE:{ed25519,ecdsa-p256}");
  cmd->add_option("--passphrase-file", flags->passphrase_file,
                  "Encrypt the private key with the passphrase in this file (or set FERRY_KEY_PASSPHRASE)");
  cmd->callback([flags, &run] {
    run = [flags](Output& out) {
      const bundle::KeyType type = bundle::parse_key_type(flags->type);
      std::optional<std::string> passphrase = read_passphrase(flags->passphrase_file);
      const core::WipeOnExit wipe_passphrase(passphrase);
      bundle::KeyPairPem pair = bundle::generate_key_pair(type, passphrase);
      const core::WipeOnExit wipe_private_pem(pair.private_pem);
      const std::string key_path = flags->out + ".key";
      const std::string pub_path = flags->out + ".pub";
      core::AtomicFile key_file(key_path, 0600, core::Overwrite::no);
      core::AtomicFile pub_file(pub_path, 0644, core::Overwrite::no);
      key_file.sink().write(pair.private_pem);
      pub_file.sink().write(pair.public_pem);
      const bundle::PublicKey pub = bundle::PublicKey::from_pem(pair.public_pem, pub_path);
      pub_file.commit();
      key_file.commit();
      if (out.json()) {
        print_json(out, {{"privateKey", key_path}, {"publicKey", pub_path}, {"type", std::string(bundle::to_string(type))},
                         {"keyId", pub.key_id()}, {"encrypted", passphrase.has_value()}});
        return;
      }
      out.result("private key  " + key_path + " (mode 0600" + (passphrase ? ", encrypted" : ", NOT encrypted") + ")");
      out.result("public key   " + pub_path);
      out.result("type         " + std::string(bundle::to_string(type)));
      out.result("key id       " + pub.key_id());
      out.result("Give " + pub_path + " to the operators and tell them the key id through a separate channel.");
    };
  });
}

} // namespace ferry::cli
