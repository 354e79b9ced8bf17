// Site values (DESIGN §4 step 4): what the operator supplies at upgrade time, never
// carried in the bundle — --values REL=FILE, --set REL:KEY=VALUE, --set-file REL:KEY=FILE,
// --reuse-values — checked against the releases' required keys, written for helm into
// private files, and compared with the image overlay.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "core/log.hpp"
#include "releases.hpp"
#include "upgrade.hpp"
#include "values/rewrite.hpp"

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace ferry {

// The site value flags, as given (each in command-line order).
struct SiteValueOptions {
  // (Default member initialisers keep designated initialisation warning-free.)
  std::vector<std::string> values = {};   // --values REL=FILE
  std::vector<std::string> set = {};      // --set REL:KEY=VALUE[,KEY=VALUE…] (Helm's --set syntax after REL:)
  std::vector<std::string> set_file = {}; // --set-file REL:KEY=FILE[,KEY=FILE…] (the value is the file's content)
  bool reuse_values = false;              // start from the live release's values (`helm get values`)
};

// Whether --reuse-values may run helm to read the live values (not in --plan, which runs
// nothing).
enum class LiveValues { read, skip };

// One release's site values. The YAML members hold site secrets: they go to helm through
// write_release_values() and must never reach a log, a report or --output json.
struct SiteValues {
  std::string release;
  std::string namespace_name;
  // The manifest's non-empty `set:` entries (typed as helm --set types them), as a values
  // file applied right after the bundle's values files; "{}\n" when there are none.
  std::string bundle_set_yaml = "{}\n";
  // --reuse-values: what `helm get values REL -n NS -o yaml` printed; nullopt when not
  // asked, when the release does not exist yet, or when it was not read (LiveValues::skip).
  std::optional<std::string> live_yaml;
  bool live_skipped = false;                // reuse_values with LiveValues::skip
  std::vector<std::filesystem::path> files; // --values, in order
  std::vector<std::string> file_yamls;      // their contents (parallel to files)
  // --set, then --set-file (helm's order), applied over everything below them, as a
  // values file holding only the keys they set (a list they index is written whole, as
  // helm replaces lists); "{}\n" when none.
  std::string set_yaml = "{}\n";
  std::vector<std::string> set_keys;      // keys given with --set, as written
  std::vector<std::string> set_file_keys; // keys given with --set-file, as written
  std::vector<std::string> required;      // the release's required keys (`set:` with an empty value)
  std::vector<std::string> missing;       // required keys the site left empty

  // The site's documents over the bundle's values files, lowest first (bundle set, live
  // values, site files, --set), and names for messages (never contents): what
  // release_overlay() takes as site_values / site_names.
  std::vector<std::string> documents() const;
  std::vector<std::string> names() const;
};

// Reads the site value flags for `releases` (the bundle's, in order; `what` names the
// bundle in messages): one SiteValues per release, same order. Each --set/--set-file key
// path is Helm's (`a.b`, `list[0].name`, `\.` for a dot inside a key; `KEY={a,b}` a list);
// --set values are typed as helm types them (true/false, null, integers without a leading
// zero; everything else a string), --set-file values are strings. With reuse_values and
// LiveValues::read, `helm get values` runs for each release (the kube flags of `tools`);
// an absent release has no live values. Fills `missing` (required keys not given a
// non-empty value by live values, site files or --set) without throwing for them: see
// require_site_values(). UsageError, naming the flag and key (never a value): a release
// not in the bundle (with a suggestion), bad syntax, an unreadable or invalid values
// file, --set-file naming a file that cannot be read. Error (exit 5) when helm cannot
// read a release that exists.
std::vector<SiteValues> resolve_site_values(const std::vector<BundleRelease>& releases, const SiteValueOptions& options,
                                            const KubeTools& tools, LiveValues live, const std::string& what,
                                            core::LogSink& log);

// UsageError listing every missing required key of every release, or nothing. Keys that
// live values (not read: LiveValues::skip) might still supply are only logged as
// warnings.
void require_site_values(const std::vector<SiteValues>& sites, core::LogSink& log);

// A key the image overlay sets that the site's values (live, files, --set) also set, to
// another value: the overlay wins. The values are shown: the overlay only sets image
// locations, which are not secret.
struct OverlayOverride {
  std::string key; // "global.imageRegistry", "sidecars[0].image"
  std::string site_value;
  std::string overlay_value;
};

std::vector<OverlayOverride> overlay_overrides(const SiteValues& site, const values::Result& overlay);

// Every path the site's values (live, files, --set) hold, maps and lists included, as
// values::Change and values::Skipped write paths ("a.b", "list[0].image"): a report shows
// the value at such a path only where the overlay overrides it.
std::set<std::string> site_paths(const SiteValues& site);

// Writes a release's values files for helm into `dir` (a private directory the caller
// removes afterwards), each with mode 0600, and returns the -f list in precedence order:
// the bundle's values files, the bundle's set, live values, the site's files (used where
// they are, never copied or changed), --set/--set-file, then `overlay_yaml` last. Empty
// documents ("{}\n") are left out.
std::vector<std::filesystem::path> write_release_values(const BundleRelease& release, const SiteValues& site,
                                                        const std::string& overlay_yaml,
                                                        const std::filesystem::path& dir);

// Helm's --set over `base_yaml` (the values below it): `assignments` in helm's syntax
// ("a.b=1,list[0].name=x,tags={a,b}"), each typed as helm types it, applied in order; the
// result holds only the keys set (a list they index written whole). "{}\n" when nothing
// is set. UsageError naming `flag` and the key (never a value) for bad syntax: an empty
// key, a key without '=', an unclosed or non-numeric index, an index above 65536.
std::string helm_set(const std::string& base_yaml, const std::string& assignments, const std::string& flag);

} // namespace ferry
