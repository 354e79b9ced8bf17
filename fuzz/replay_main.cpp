// Runs a fuzz target over checked-in inputs without libFuzzer: every regular file of the
// directories given (and files given directly) goes to LLVMFuzzerTestOneInput once, in
// name order, so corpora and reproducers run in the normal test suite with any compiler.
// SPDX-License-Identifier: Apache-2.0
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace fs = std::filesystem;

namespace {

// The inputs under `arg`, sorted. Dot files (.gitkeep) are not inputs. A directory that
// does not exist has none: git keeps no empty directory, and a target may have no
// reproducer yet.
std::vector<fs::path> inputs_of(const fs::path& arg) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (fs::is_regular_file(arg, ec)) return {arg};
  if (!fs::is_directory(arg, ec)) return out;
  for (fs::directory_iterator it(arg, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.empty() && name.front() != '.' && it->is_regular_file(ec)) out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace

int main(int argc, char** argv) {
  std::size_t count = 0;
  for (int i = 1; i < argc; ++i) {
    for (const fs::path& file : inputs_of(argv[i])) {
      std::ifstream in(file, std::ios::binary);
      if (!in) {
        std::fprintf(stderr, "replay: cannot read %s\n", file.string().c_str());
        return 1;
      }
      const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      // Printed before the run: a crash names the input that caused it.
      std::fprintf(stderr, "replay: %s (%zu bytes)\n", file.string().c_str(), bytes.size());
      LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
      ++count;
    }
  }
  if (count == 0) {
    // A corpus that went missing must not pass as a clean replay.
    std::fprintf(stderr, "replay: no inputs found\n");
    return 1;
  }
  std::printf("replay: %zu inputs ran without a crash\n", count);
  return 0;
}
