#!/usr/bin/env bash
# Installs what `make demo` (or, with "test", `make test`) needs on a Debian
# machine, and only what is missing. Checks the Go toolchain.
#
#   scripts/deps.sh              # pl dev: runc, nftables, iproute2, ssh client, ...
#   scripts/deps.sh test         # the test suite: the above plus PostgreSQL, sshd, ...
#   scripts/deps.sh --list [test]  # print the table below (package, then programs)
#
# Every host program the Go code runs (exec.Command, exec.LookPath) or
# copies into an image is named here beside the Debian package it comes
# from; cmd/pl/hostdeps_test.go checks that against the source and, where
# dpkg exists, with `dpkg -S`. A new program the code runs goes here first.
# An entry whose "package" is build:<dir> is not a Debian package: deps.sh
# builds it from the Go module in <dir> (pinned by its go.mod and go.sum)
# and installs it at the path named (see build_runsc below).
set -euo pipefail

# "package program-or-path ...": what pl dev and pl node run.
run=(
  "runc runc"
  # gVisor slivers (slice tag runtime=runsc): a pinned gVisor built from
  # the Go module proxy, not Debian's runsc (0.0~20221219), which refuses
  # every network namespace on Linux >= 6.x (docs/slivers.md).
  "build:third_party/runsc /usr/local/bin/runsc"
  "nftables nft"
  "iproute2 ip tc"
  "openssh-client ssh scp sftp"
  "openssh-sftp-server /usr/lib/openssh/sftp-server" # copied into the default image: scp, sftp, pl copy
  "rsync /usr/bin/rsync"                             # copied into the default image
  "busybox-static /bin/busybox"                      # the default image's userland
  "tini /usr/bin/tini-static"                        # every sliver's init (bind-mounted)
  "btrfs-progs mkfs.btrfs btrfs"                     # sliver disk quotas
  "mount mount"
  "coreutils cp sleep /usr/bin/nohup" # nohup: copied into the default image (busybox has none)
  "libc-bin ldd"
  "util-linux nsenter"
  "xfsprogs" "e2fsprogs"
  "xmlsec1 xmlsec1" # PLC's GENI slice authority and aggregate: sign and verify SFA credentials
  "bash bash" # pl bench plcapi --original runs the original's start script
  # for the commands pl dev prints for the user to try
  "iputils-ping ping" "traceroute traceroute" "curl" "ca-certificates"
)
# What the test suite runs on top.
test=(
  "postgresql /usr/lib/postgresql/*/bin/initdb /usr/lib/postgresql/*/bin/pg_ctl" # store tests: a throwaway cluster
  "openssh-server /usr/sbin/sshd"    # the ssh baseline benchmark
  "openssh-client ssh-keygen"
  "python3 python3"                  # PLCAPI's own Python scripts and xmlrpc.client
  "tmux tmux"                        # terminal tests of ssh sessions
  "gcc gcc" "libc6-dev"              # go test -race needs cgo
  "dash /bin/sh"                     # fake sliver runtimes run sessions on the host
  "dpkg dpkg dpkg-query"             # cmd/pl/hostdeps_test.go reads this table (with bash)
  "chromium chromium"                # the portal's browser test (chromedp)
  "openssl openssl"                  # GENI tests: certificate chains made outside our code
  "libxml2-utils xmllint"            # GENI tests: RSpec documents against the v3 schemas
  "haproxy haproxy"                  # PLC replicas behind a load balancer (docs/replicas.md)
)

entries=("${run[@]}")
mode=install
for a in "$@"; do
  case $a in
    --list) mode=list ;;
    test) entries+=("${test[@]}") ;;
    *) echo "deps: unknown argument $a (usage: deps.sh [--list] [test])" >&2; exit 2 ;;
  esac
done

if [[ $mode == list ]]; then
  printf '%s\n' "${entries[@]}"
  exit 0
fi

missing=()
builds=()
for e in "${entries[@]}"; do
  p=${e%% *}
  if [[ $p == build:* ]]; then
    builds+=("$e")
    continue
  fi
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

# build_runsc DIR DEST: builds gVisor's runsc from the module in DIR (its
# go.mod pins gvisor.dev/gvisor; go.sum checks what the proxy serves)
# unless DEST already reports that version. Static (CGO_ENABLED=0): a
# dynamically linked runsc cannot re-exec itself inside its own chroot.
build_runsc() {
  local dir=$1 dest=$2 want tmp
  want=$(awk '$1 == "gvisor.dev/gvisor" {print $2}' "$dir/go.mod")
  if [[ -x $dest ]] && [[ $("$dest" --version 2>/dev/null | head -1) == "runsc version $want" ]]; then
    return
  fi
  echo "deps: building gVisor runsc $want into $dest (a few minutes)"
  tmp=$(mktemp -d)
  (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath \
    -ldflags "-X gvisor.dev/gvisor/runsc/version.version=$want" -o "$tmp/runsc" gvisor.dev/gvisor/runsc)
  "${sudo[@]}" install -D -m 0755 "$tmp/runsc" "$dest"
  rm -rf "$tmp"
}
root=$(cd "$(dirname "$0")/.." && pwd)
for e in "${builds[@]}"; do
  read -r p dest _ <<<"$e"
  case ${p#build:} in
    third_party/runsc) build_runsc "$root/third_party/runsc" "$dest" ;;
    *) echo "deps: no recipe for $p" >&2; exit 1 ;;
  esac
done
echo "deps: ok ($(go version))"
