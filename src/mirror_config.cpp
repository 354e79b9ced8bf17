// containerd hosts.toml, K3s/RKE2 registries.yaml and containers-registries.conf mirrors.
// SPDX-License-Identifier: Apache-2.0
#include "mirror_config.hpp"

#include "core/error.hpp"
#include "oci/reference.hpp"

#include <yaml-cpp/yaml.h>

#include <set>

namespace ferry {

namespace {

// A TOML basic string: quotes, backslashes and control characters escaped.
std::string toml_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
    case '"': out += "\\\""; break;
    case '\\': out += "\\\\"; break;
    case '\n': out += "\\n"; break;
    case '\t': out += "\\t"; break;
    default:
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        char buffer[8];
        std::snprintf(buffer, sizeof buffer, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
        out += buffer;
      } else {
        out += c;
      }
    }
  }
  return out + "\"";
}

std::string header(const MirrorConfigOptions& options, std::string_view what, std::string_view comment) {
  return std::string(comment) + " Written by ferry for bundle " + options.bundle + ": " + std::string(what) + "\n" +
         std::string(comment) + " Images are pulled from " + options.target.str() + ", where `ferry push` put them.\n";
}

// Where containerd asks the registry itself when no mirror has an image.
std::string upstream_server(const std::string& registry) {
  return registry == "docker.io" ? "https://registry-1.docker.io" : "https://" + registry;
}

MirrorFile containerd_hosts(const std::string& registry, const MirrorConfigOptions& options) {
  const std::string scheme = options.plain_http ? "http://" : "https://";
  // With a prefix the mirror's API root is /v2/PREFIX: override_path makes containerd use
  // the path as given (it appends /<repository>/manifests/<ref> to it).
  const std::string host = options.target.prefix.empty() ? scheme + options.target.host
                                                         : scheme + options.target.host + "/v2/" + options.target.prefix;
  std::string text = header(options, "the mirror of " + registry + " for containerd.", "#");
  text += "# Install as /etc/containerd/certs.d/" + registry + "/hosts.toml (config_path = \"/etc/containerd/certs.d\").\n";
  text += "server = " + toml_string(upstream_server(registry)) + "\n\n";
  text += "[host." + toml_string(host) + "]\n";
  text += "  capabilities = [\"pull\", \"resolve\"]\n";
  if (!options.target.prefix.empty()) text += "  override_path = true\n";
  if (!options.ca_file.empty() && !options.plain_http) text += "  ca = " + toml_string(options.ca_file) + "\n";
  return {std::filesystem::path("certs.d") / registry / "hosts.toml", text};
}

MirrorFile k3s_registries(const std::vector<std::string>& registries, const MirrorConfigOptions& options) {
  YAML::Emitter out;
  out << YAML::BeginMap << YAML::Key << "mirrors" << YAML::Value << YAML::BeginMap;
  for (const auto& registry : registries) {
    out << YAML::Key << registry << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "endpoint" << YAML::Value << YAML::BeginSeq
        << std::string(options.plain_http ? "http://" : "https://") + options.target.host << YAML::EndSeq;
    if (!options.target.prefix.empty()) {
      // K3s rewrites the repository before it asks the endpoint.
      out << YAML::Key << "rewrite" << YAML::Value << YAML::BeginMap << YAML::Key << "^(.*)$" << YAML::Value
          << options.target.prefix + "/$1" << YAML::EndMap;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
  if (!options.ca_file.empty() && !options.plain_http) {
    out << YAML::Key << "configs" << YAML::Value << YAML::BeginMap << YAML::Key << options.target.host << YAML::Value
        << YAML::BeginMap << YAML::Key << "tls" << YAML::Value << YAML::BeginMap << YAML::Key << "ca_file"
        << YAML::Value << options.ca_file << YAML::EndMap << YAML::EndMap << YAML::EndMap;
  }
  out << YAML::EndMap;
  std::string text = header(options, "registry mirrors for K3s and RKE2.", "#");
  text += "# Install as /etc/rancher/k3s/registries.yaml (RKE2: /etc/rancher/rke2/registries.yaml), then restart the "
          "service.\n";
  text += out.c_str();
  text += "\n";
  return {"registries.yaml", text};
}

MirrorFile crio_registries(const std::vector<std::string>& registries, const MirrorConfigOptions& options) {
  std::string text = header(options, "registry mirrors for CRI-O and podman (containers-registries.conf v2).", "#");
  text += "# Install as /etc/containers/registries.conf.d/50-ferry-mirrors.conf.\n";
  if (!options.ca_file.empty() && !options.plain_http) {
    text += "# The internal registry's CA goes to /etc/containers/certs.d/" + options.target.host + "/ca.crt.\n";
  }
  const std::string location = options.target.str();
  for (const auto& registry : registries) {
    text += "\n[[registry]]\n";
    text += "prefix = " + toml_string(registry) + "\n";
    text += "location = " + toml_string(registry) + "\n\n";
    text += "[[registry.mirror]]\n";
    text += "location = " + toml_string(location) + "\n";
    if (options.plain_http) text += "insecure = true\n";
  }
  return {std::filesystem::path("registries.conf.d") / "50-ferry-mirrors.conf", text};
}

} // namespace

MirrorKind parse_mirror_kind(std::string_view text) {
  if (text == "containerd") return MirrorKind::containerd;
  if (text == "k3s" || text == "rke2") return MirrorKind::k3s;
  if (text == "cri-o" || text == "crio") return MirrorKind::crio;
  throw core::UsageError("--mirror-config '" + std::string(text) + "' is not a known runtime",
                         "give containerd, k3s (also for RKE2) or cri-o");
}

std::string_view to_string(MirrorKind kind) {
  switch (kind) {
  case MirrorKind::containerd: return "containerd";
  case MirrorKind::k3s: return "k3s";
  case MirrorKind::crio: return "cri-o";
  }
  return "containerd";
}

std::vector<std::string> source_registries(const bundle::BundleDescriptor& descriptor) {
  std::set<std::string> found;
  for (const auto& image : descriptor.images) found.insert(oci::Reference::parse(image.ref).registry());
  return {found.begin(), found.end()};
}

std::vector<MirrorFile> mirror_config(MirrorKind kind, const std::vector<std::string>& registries,
                                      const MirrorConfigOptions& options) {
  std::vector<MirrorFile> files;
  switch (kind) {
  case MirrorKind::containerd:
    for (const auto& registry : registries) files.push_back(containerd_hosts(registry, options));
    break;
  case MirrorKind::k3s: files.push_back(k3s_registries(registries, options)); break;
  case MirrorKind::crio: files.push_back(crio_registries(registries, options)); break;
  }
  return files;
}

} // namespace ferry
