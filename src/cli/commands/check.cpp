// ferry check: render each release of a bundle with helm and its image overlay, and
// require every rendered image to be a bundle image under the internal registry.
// SPDX-License-Identifier: Apache-2.0
#include "check.hpp"

#include "cli/commands/commands.hpp"
#include "cli/commands/trust_flags.hpp"
#include "cli/output.hpp"
#include "cli/render.hpp"

#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <memory>

namespace ferry::cli {

namespace {

struct CheckFlags : TrustFlags {
  std::string bundle;
  std::string registry;
  std::string values_dir;
  std::string helm = "helm";
  SiteValueOptions site;
};

nlohmann::json release_json(const ReleaseCheck& r) {
  nlohmann::json images = nlohmann::json::array();
  for (const auto& i : r.images) {
    images.push_back({{"kind", i.rendered.kind},
                      {"name", i.rendered.name},
                      {"container", i.rendered.container},
                      {"source", i.rendered.source},
                      {"field", i.rendered.field},
                      {"image", i.rendered.image},
                      {"ok", !i.problem},
                      {"problem", i.problem ? nlohmann::json(*i.problem) : nlohmann::json(nullptr)},
                      {"fedBy", i.fed_by},
                      {"hardCoded", i.fed_by.empty()}});
  }
  nlohmann::json feeds = nlohmann::json::array();
  for (const auto& [path, field] : r.feeds) feeds.push_back({{"path", path}, {"field", field}});
  nlohmann::json changes = nlohmann::json::array();
  for (const auto& c : r.changes) {
    changes.push_back({{"path", c.change.path},
                       {"old", c.change.old_value},
                       {"new", c.change.new_value},
                       {"detector", c.change.detector},
                       {"image", c.change.image},
                       {"feedsImage", c.feeds_image}});
  }
  nlohmann::json unprobed = nlohmann::json::array();
  for (const auto& [path, why] : r.unprobed) unprobed.push_back({{"path", path}, {"reason", why}});
  return {{"name", r.name},
          {"namespace", r.namespace_name},
          {"chart", r.chart},
          {"overlay", r.overlay},
          {"placeholders", r.placeholders},
          {"ok", r.ok()},
          {"images", images},
          {"feeds", feeds},
          {"changes", changes},
          {"unprobed", unprobed},
          {"renders", r.renders}};
}

void print_text(const CheckResult& result, Output& out) {
  if (result.releases.empty()) out.result("the bundle has no releases: nothing to check");
  for (const auto& r : result.releases) {
    std::size_t bad = 0;
    for (const auto& i : r.images) bad += i.problem ? 1 : 0;
    out.result(fmt::format("{} (chart {}, overlay {}): {} image{} rendered, {}", r.name, r.chart, r.overlay,
                           r.images.size(), r.images.size() == 1 ? "" : "s",
                           bad == 0 ? std::string("all from the bundle under the registry")
                                    : fmt::format("{} not from the bundle under the registry", bad)));
    if (!r.placeholders.empty()) {
      std::string keys;
      for (const auto& k : r.placeholders) keys += (keys.empty() ? "" : ", ") + k;
      out.result(fmt::format("  placeholder values given for the site keys: {}", keys));
    }
    for (const auto& i : r.images) {
      std::string fed;
      for (const auto& p : i.fed_by) fed += (fed.empty() ? "" : ", ") + p;
      out.result(fmt::format("  {} {}: {}  ({})", i.problem ? "FAIL" : "ok  ", i.rendered.label(),
                             i.rendered.image.empty() ? "\"\"" : i.rendered.image,
                             fed.empty() ? "hard-coded in the chart's templates" : "from " + fed));
      if (i.problem) out.result(fmt::format("       {}", *i.problem));
    }
    for (const auto& c : r.changes) {
      if (!c.feeds_image) {
        out.result(fmt::format("  note: {} was rewritten, but no rendered image takes it (another value wins, or that part of "
                               "the chart is disabled)",
                               c.change.path));
      }
    }
    for (const auto& [path, why] : r.unprobed) {
      out.result(fmt::format("  note: {} could not be traced (helm fails with a sentinel there: {})", path, why));
    }
  }
}

} // namespace

void add_check(CLI::App& app, CommandRun& run) {
  auto flags = std::make_shared<CheckFlags>();
  auto* cmd = app.add_subcommand("check", "Render each release with helm and require every image to come from the "
                                          "internal registry");
  cmd->add_option("bundle", flags->bundle, "Bundle file (.tar.zst)")->required();
  cmd->add_option("--registry", flags->registry, "Internal registry: HOST[:PORT][/PREFIX]")->required();
  add_trust_flags(*cmd, *flags, "Trusted public key; repeat for several (any of them may have signed)");
  cmd->add_option("--values-dir", flags->values_dir,
                  "Overlays written by `ferry values BUNDLE -o DIR` (DIR/RELEASE.yaml); default: computed");
  cmd->add_option("--helm", flags->helm, "helm 3 to render with (a path, or a name in $PATH)");
  cmd->add_option("--values", flags->site.values,
                  "Site values file for a release: RELEASE=FILE (repeatable; rendered below the overlay, as upgrade does)")
      ->allow_extra_args(false);
  cmd->add_option("--set", flags->site.set, "Site value: RELEASE:KEY=VALUE[,KEY=VALUE] in helm's --set syntax (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--set-file", flags->site.set_file, "Site value from a file's content: RELEASE:KEY=FILE (repeatable)")
      ->allow_extra_args(false);
  cmd->footer("Renders `helm template RELEASE CHART -n NS -f <bundle values> -f <overlay>` for each release;\n"
              "every image field (containers, initContainers, ephemeralContainers, any `image:` string)\n"
              "must name a bundle image under the registry, with the bundle's tag or digest. Each image is\n"
              "traced to the values that feed it by rendering again with sentinels in them; an image no\n"
              "value feeds is hard-coded in the chart's templates. Site values (--values, --set, --set-file)\n"
              "render between the bundle's values and the overlay; required keys not given get placeholders.\n"
              "Exit 1 when an image is not from the bundle under the registry.");
  cmd->callback([flags, &run] {
    run = [flags](Output& out) {
      CheckOptions options;
      options.bundle = flags->bundle;
      options.target = PushTarget::parse(flags->registry);
      options.trust = trust_options(*flags);
      options.values_dir = flags->values_dir;
      options.helm = flags->helm;
      options.site_flags = flags->site;
      const CheckResult result = check_bundle(options, out);
      if (out.json()) {
        nlohmann::json releases = nlohmann::json::array();
        for (const auto& r : result.releases) releases.push_back(release_json(r));
        print_json(out, {{"bundle", flags->bundle},
                         {"registry", options.target.str()},
                         {"signature", signature_text(result.signature)},
                         {"ok", result.ok()},
                         {"releases", releases}});
      } else {
        print_text(result, out);
      }
      require_check_passed(result, options.target);
    };
  });
}

} // namespace ferry::cli
