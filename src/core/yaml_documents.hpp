// Private to .cpp files that already use yaml-cpp: YAML::LoadAll made safe for input
// ferry did not write.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace ferry::core {

// The documents of a YAML stream, as YAML::LoadAll gives them; throws what it throws.
// yaml-cpp's LoadAll never ends on a token no document consumes (a ',' at the top
// level, as in ",\n"): each pass yields a null document and leaves the token, so the
// list grows until memory runs out. The event parser walks the stream first, without
// building nodes, and a document that starts where the previous one did is a
// YAML::ParserException at that place; the stream then has at most one document per token.
inline std::vector<YAML::Node> load_all_documents(const std::string& text) {
  class DocumentStarts final : public YAML::EventHandler {
  public:
    void OnDocumentStart(const YAML::Mark& mark) override { start = mark; }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}
    YAML::Mark start;
  };
  {
    std::istringstream in(text);
    YAML::Parser parser(in);
    DocumentStarts starts;
    std::optional<int> previous;
    while (parser.HandleNextDocument(starts)) {
      if (previous && *previous == starts.start.pos) {
        throw YAML::ParserException(starts.start, "unexpected character: no YAML document can start here");
      }
      previous = starts.start.pos;
    }
  }
  return YAML::LoadAll(text);
}

} // namespace ferry::core
