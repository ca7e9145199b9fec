#!/usr/bin/env bash
# Installs what `make demo` (or, with "test", `make test`) needs on a Debian
# machine, and only what is missing. Checks the Go toolchain.
#
#   scripts/deps.sh        # pl dev: runc, nftables, iproute2, ssh client, ...
#   scripts/deps.sh test   # the test suite: the above plus PostgreSQL and sshd
set -euo pipefail

pkgs=(runc nftables iproute2 openssh-client rsync busybox-static tini xfsprogs
      e2fsprogs btrfs-progs iputils-ping traceroute curl python3 ca-certificates)
if [[ ${1:-} == test ]]; then
  # PostgreSQL server binaries: the store tests start a throwaway cluster.
  # openssh-server: only the ssh baseline benchmark uses sshd.
  # gcc, libc6-dev: go test -race needs cgo.
  pkgs+=(postgresql openssh-server gcc libc6-dev)
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

sudo=()
if [[ $EUID -ne 0 ]]; then sudo=(sudo); fi

if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi

# The Go toolchain: go.mod names the version; an older go >= 1.21 fetches
# it from the module proxy by itself (GOTOOLCHAIN=auto).
if ! command -v go >/dev/null; then
  for d in /usr/local/go/bin /usr/lib/go/bin "$HOME/go/bin" "$HOME/sdk/go/bin"; do
    if [[ -x $d/go ]]; then
      echo "deps: Go found in $d but not on PATH; run: export PATH=$d:\$PATH" >&2
      exit 1
    fi
  done
  want=$(awk '/^go /{print $2}' "$(dirname "$0")/../go.mod")
  echo "deps: no Go toolchain. Install Go >= 1.21 (go.mod wants $want), e.g.:" >&2
  echo "  curl -fsSL https://go.dev/dl/go$want.linux-amd64.tar.gz | sudo tar -C /usr/local -xz && export PATH=/usr/local/go/bin:\$PATH" >&2
  exit 1
fi
echo "deps: ok ($(go version))"
