# Shared by the benchmarks that run registries (sourced, not run): they set `work` (their
# directory) before calling these.
# SPDX-License-Identifier: Apache-2.0

step() { echo "-- $*" >&2; }
seconds() { awk -v s="$1" -v e="$2" 'BEGIN { printf "%.2f", (e - s) / 1e9 }'; }
now() { date +%s%N; }

stop_registry() { # PID
  [ -n "$1" ] || return 0
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# require_free MIB FACTOR: stops unless $work's file system has MIB x FACTOR free.
require_free() {
  local need_kib free_kib
  need_kib=$(awk -v m="$1" -v f="$2" 'BEGIN { printf "%d", m * 1024 * f }')
  free_kib=$(df -Pk "$work" | awk 'NR == 2 { print $4 }')
  if (( free_kib < need_kib )); then
    echo "not enough free disk in $work: $(( free_kib / 1024 )) MiB free, about $(( need_kib / 1024 )) MiB needed" >&2
    exit 1
  fi
}

# start_registry NAME: a plain-HTTP docker-registry on a free 127.0.0.1 port, its files in
# $work/NAME; sets PORT and REGISTRY_PID.
start_registry() {
  local name=$1 code
  local dir="$work/$name"
  mkdir -p "$dir/data"
  for _ in 1 2 3 4 5; do
    PORT=$(shuf -i 20000-45000 -n 1)
    cat > "$dir/config.yml" <<YAML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $dir/data}}
http:
  addr: 127.0.0.1:$PORT
YAML
    docker-registry serve "$dir/config.yml" > "$dir/log" 2>&1 &
    REGISTRY_PID=$!
    for _ in $(seq 50); do
      code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/v2/" || true)
      if [ "$code" = 200 ]; then return; fi
      kill -0 "$REGISTRY_PID" 2>/dev/null || break  # exited: port taken, try another
      sleep 0.1
    done
    stop_registry "$REGISTRY_PID"
  done
  echo "cannot start the $name registry; its log:" >&2; cat "$dir/log" >&2; exit 1
}

# add_blob DIR FILE: moves FILE into DIR's blob store; sets DIGEST (hex) and SIZE.
add_blob() {
  DIGEST=$(sha256sum "$2" | cut -c1-64); SIZE=$(stat -c %s "$2")
  mv "$2" "$1/blobs/sha256/$DIGEST"
}
