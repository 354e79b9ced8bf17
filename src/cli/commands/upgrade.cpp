// ferry upgrade (being written).
// SPDX-License-Identifier: Apache-2.0
#include "cli/commands/commands.hpp"

namespace ferry::cli {

void add_upgrade(CLI::App&, CommandRun&) {}

} // namespace ferry::cli
