#!/usr/bin/env bash
# Records scripts/demo.sh on a terminal (script(1), so ferry draws its progress bars) and
# puts the pack -> sha256sum -> verify -> inspect -> push part into README.md between the
# "terminal-session" markers. What lands there is what ferry printed: each progress bar
# at its last frame, colour removed, and the demo's working directory shown as demo/.
# Usage: scripts/record-terminal.sh   (BUILD_DIR as for demo.sh)
# SPDX-License-Identifier: Apache-2.0
set -euo pipefail
cd "$(dirname "$0")/.."
typescript=$(mktemp)
trap 'rm -f "$typescript"' EXIT
COLUMNS=120 script -qec "./scripts/demo.sh" "$typescript" >/dev/null
python3 - "$typescript" README.md "$PWD/${BUILD_DIR:-build}/demo" <<'PY'
import re
import sys

typescript, readme, work = sys.argv[1:4]
# newline="": a bare "\r" (a progress frame) must stay one, not become a line break.
raw = open(typescript, encoding="utf-8", errors="replace", newline="").read()
lines = []
for line in raw.replace("\r\n", "\n").split("\n"):
    # A progress bar redraws itself after "\r": keep what the terminal shows last.
    frames = [f for f in line.split("\r") if f.strip()]
    line = frames[-1] if frames else ""
    line = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", line)
    lines.append(line.replace(work + "/", "demo/").replace(work, "demo").rstrip())
start = next(i for i, l in enumerate(lines) if l == "== ferry pack")
push = next(i for i, l in enumerate(lines) if l.startswith("== ferry push"))
end = next(i for i in range(push + 1, len(lines)) if lines[i].startswith("== "))
session = "\n".join(lines[start:end]).strip("\n")
text = open(readme, encoding="utf-8").read()
begin_marker, end_marker = "<!-- terminal-session:begin -->", "<!-- terminal-session:end -->"
before, rest = text.split(begin_marker, 1)
_, after = rest.split(end_marker, 1)
block = begin_marker + "\n```text\n" + session + "\n```\n" + end_marker
open(readme, "w", encoding="utf-8").write(before + block + after)
print(f"README.md: {end - start} lines of a real run recorded")
PY
