// Image discovery for `images: auto` (DESIGN §3): the images a chart needs, from its
// image annotations, its values and its rendered templates, each with how it was found.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::values {

// Where an image was found.
enum class Method { annotation, values, render };

// "annotation", "values", "render".
std::string_view to_string(Method method) noexcept;

// How one image was found.
struct Finding {
  Method method = Method::values;
  // What named it:
  //   annotation: "artifacthub.io/images of redis: redis" (the chart or subchart, the entry's name)
  //   values:     "backend.image.repository (registry/repository map; tag from appVersion of studio)"
  //   render:     "Deployment/studio-backend spec.template.spec.containers[backend].image"
  std::string where;
  std::string release = {}; // values and render: the release whose values were used ("" for a chart's defaults)
  // values: the tag is the chart's appVersion because the values write none (a guess the
  // render may contradict, see Discovery::drop_unconfirmed_guesses()).
  bool tag_guessed = false;
};

// One image a chart's annotation lists.
struct AnnotatedImage {
  std::string annotation; // "artifacthub.io/images" or "helm.sh/images"
  std::string name;       // the entry's `name` ("" when it has none)
  std::string image;      // as written
  std::vector<std::string> platforms; // artifacthub.io/images `platforms` (informative)
  std::string condition;  // helm.sh/images `condition` (informative; the image is listed anyway)
};

struct AnnotatedImages {
  std::vector<AnnotatedImage> images;
  std::vector<std::string> problems; // an annotation that is no YAML list of maps, an entry without `image`
};

// The images of a chart's `artifacthub.io/images` and `helm.sh/images` annotations (each a
// YAML list of maps: artifacthub `{name, image, whitelisted?, platforms?}`, helm.sh (HIP
// draft) `{name, image, condition?, dependency?}`), in that order, entries in document
// order. Other annotations are ignored. Never throws for bad annotation text: a chart
// author's mistake is reported in `problems`, naming `what` and the annotation.
AnnotatedImages parse_image_annotations(const std::map<std::string, std::string>& annotations, const std::string& what);

// One image field of rendered manifests.
struct RenderedImage {
  std::string image;  // as rendered
  std::string object; // "Deployment/studio-backend" (kind/name; "Deployment" when unnamed)
  std::string field;  // "spec.template.spec.containers[backend].image" (list items by name when they have one)
  bool container = false; // a container's `image` (containers, initContainers, ephemeralContainers): must be a reference
};

// The image fields of `manifests` (a multi-document YAML stream, as `helm template`
// prints it): every container's `image` (containers, initContainers and
// ephemeralContainers, wherever a pod template sits: Pod, Deployment, CronJob, …, custom
// resources included), and in any object a string under a key naming an image
// (is_image_key(): `image`, `initImage`, …) that looks like one, or a map under such a
// key holding `repository` (with `registry`, `tag`, `digest` when present). `metadata`
// and `status` are not read. Empty container images are left out. UsageError naming
// `what` when the stream is not YAML.
std::vector<RenderedImage> parse_rendered_images(const std::string& manifests, const std::string& what);

// An image found, normalised, with every way it was found.
struct DiscoveredImage {
  std::string ref; // normalised: "docker.io/library/nginx:1.25"
  std::vector<Finding> found_by;
};

// A reference found that cannot be packed: a templated leftover, not a reference at all.
struct Unresolved {
  std::string text; // as found
  Finding found;
  std::string reason;
};

// What discovery found for one chart, deduplicated: the same image (same registry and
// repository, same tag; digests equal when both have one, or the same digest) found twice
// is one entry with both findings, under the more precise reference (the one with a
// digest).
class Discovery {
public:
  // Adds `text` found as `finding`: normalised (Docker Hub short names as
  // docker.io/library/NAME, "latest" when neither tag nor digest), or, when it is no
  // reference, kept as unresolved.
  void add(const std::string& text, Finding finding);
  void add_unresolved(std::string text, Finding finding, std::string reason);

  // Drops the images whose only findings are values with a tag guessed from appVersion
  // when a render found the same repository under another tag: the templates say which
  // tag they use. Call after every render was added.
  void drop_unconfirmed_guesses();

  const std::vector<DiscoveredImage>& images() const noexcept { return m_images; }
  const std::vector<Unresolved>& unresolved() const noexcept { return m_unresolved; }

private:
  std::vector<DiscoveredImage> m_images;
  std::vector<Unresolved> m_unresolved;
};

// Whether two references name the same image: same registry and repository, and the
// same tag (digests equal when both have one) or the same digest. Texts that do not parse
// are never the same image.
bool same_image(std::string_view a, std::string_view b);

// The annotations of the chart (`chart_tgz`, its archive bytes) and of every subchart
// under charts/ (directories and .tgz, nested): each image they list becomes a finding,
// each problem an unresolved entry. `what` names the chart in messages.
void discover_from_annotations(const std::string& chart_tgz, const std::string& what, Discovery& out);

// A values file of a release, as the bundle carries it.
struct NamedValues {
  std::string name;    // for messages ("values/studio.yaml")
  std::string content; // YAML
};

// The images the release's effective values name: the chart's defaults with its
// subcharts' (under their names or aliases, `global` copied down) and `values` merged over
// them (later files win), as Helm computes them; then the detectors of rewrite() (every
// convention, subcharts included). A map's registry is replaced by the scope's
// `global.imageRegistry` (or `global.image.registry`) when that is set, as bitnami-style
// charts do; a map that writes no tag gets the appVersion of the chart (or subchart) the
// value belongs to, as most charts' templates do (a guess, marked as such). Templated
// or unreadable values become unresolved entries. `release` is recorded in each finding.
// UsageError naming the chart or file for values that do not parse or a chart Helm
// could not load.
void discover_from_values(const std::string& chart_tgz, const std::vector<NamedValues>& values,
                          const std::string& release, const std::string& what, Discovery& out);

// The images of a render (`helm template` output, see parse_rendered_images()): each
// becomes a finding; a container image that is no reference an unresolved entry.
void discover_from_render(const std::string& manifests, const std::string& release, const std::string& what,
                          Discovery& out);

} // namespace ferry::values
