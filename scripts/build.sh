#!/usr/bin/env bash
# Builds the pl binary (static, as `make build` and `make demo` do), showing
# progress: a cold build compiles about 300 packages (the Go standard
# library, modernc.org/sqlite, pgx, netlink, x/crypto ...) and takes minutes
# on a small machine, so every package is named as it is compiled, with the
# count and the elapsed time, and a line every 15 s while one compiles.
#
#   scripts/build.sh [OUTPUT]      # default bin/pl
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
out=${1:-bin/pl}
export CGO_ENABLED=0

start=$SECONDS
elapsed() { printf '%d:%02d' $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)); }

if ! $GO list -m all >/dev/null 2>&1; then
  echo "build: downloading Go modules (go mod download)..."
  $GO mod download -x 2>&1 | grep --line-buffered -o 'https://[^ ]*\.zip' | sed -u 's|^|build:   |' || true
  $GO mod download
  echo "build: modules ready after $(elapsed)"
fi
total=$($GO list -deps ./cmd/pl | wc -l)
echo "build: $out from $total packages (compiled ones are listed; a cold build takes minutes)"

n=0 last="" status=0
# go build -v names each package as it compiles it; errors pass through.
while true; do
  if IFS= read -r -t 15 line; then
    if [[ $line =~ ^[A-Za-z0-9._~/-]+$ ]]; then
      n=$((n + 1)) last=$line
      printf 'build: [%3d/%d %s] %s\n' "$n" "$total" "$(elapsed)" "$line"
    else
      printf '%s\n' "$line" >&2
    fi
  elif (($? > 128)); then # timeout: still compiling
    printf 'build: [%3d/%d %s] still compiling%s\n' "$n" "$total" "$(elapsed)" "${last:+ (after $last)}"
  else
    break
  fi
done < <($GO build -v -trimpath -o "$out" ./cmd/pl 2>&1; echo "$?" >"$out.status")
status=$(cat "$out.status" 2>/dev/null || echo 1)
rm -f "$out.status"
if ((status != 0)); then
  echo "build: FAILED after $(elapsed)" >&2
  exit "$status"
fi
echo "build: $out ready after $(elapsed) ($n packages compiled, the rest cached)"
