// Node mirror configuration (`ferry values --mirror-config`): for images the values cannot
// reach (init containers a chart hard-codes, images an operator starts at run time), the
// container runtime on every node is told to pull each source registry of the bundle
// from the internal registry instead.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "bundle/descriptor.hpp"
#include "image_push.hpp"

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace ferry {

// containerd: certs.d/<registry>/hosts.toml; k3s: registries.yaml (K3s and RKE2);
// crio: registries.conf.d/50-ferry-mirrors.conf (CRI-O, podman: containers-registries.conf v2).
enum class MirrorKind { containerd, k3s, crio };

// "containerd", "k3s" (or "rke2"), "cri-o" (or "crio"); UsageError naming the choices otherwise.
MirrorKind parse_mirror_kind(std::string_view text);
std::string_view to_string(MirrorKind kind);

struct MirrorConfigOptions {
  PushTarget target;   // the internal registry and its prefix, as `--registry`
  bool plain_http = false; // the internal registry speaks plain HTTP
  std::string ca_file;     // where the internal registry's CA is on the nodes (optional)
  std::string bundle;      // "NAME VERSION", for the comment in each file
};

// One file to write, relative to the output directory.
struct MirrorFile {
  std::filesystem::path path;
  std::string content;
};

// The registries the bundle's images come from ("docker.io", "quay.io",
// "registry.example.com:5000"), sorted, each once.
std::vector<std::string> source_registries(const bundle::BundleDescriptor& descriptor);

// The configuration mapping each of `registries` to the internal registry: an image
// REGISTRY/PATH:TAG is then pulled from TARGET/PREFIX/PATH:TAG, where `ferry push` put it.
std::vector<MirrorFile> mirror_config(MirrorKind kind, const std::vector<std::string>& registries,
                                      const MirrorConfigOptions& options);

} // namespace ferry
