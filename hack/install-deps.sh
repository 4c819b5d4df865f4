#!/usr/bin/env bash
# Installs the Debian packages the build and tests need, when missing. Needs root for apt-get.
# Usage: hack/install-deps.sh [lab]
#   lab  also installs what the network-namespace lab (make lab, test/e2e) uses: iproute2,
#        nftables, arping, ndisc6, ping, tcpdump, curl and FRR (installed, never started on the host).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

packages=(git make gcc curl ca-certificates)
if [ "${1:-}" = lab ]; then
  packages+=(iproute2 nftables arping ndisc6 iputils-ping tcpdump frr)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing Debian packages ${missing[*]}: run as root, or apt-get install them"
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # The frr package starts its daemons in the host's network namespace unless policy-rc.d forbids
  # it. The lab runs FRR only inside lab-router, with private directories: forbid starting
  # services during this install, and remove the file again if we created it.
  policy=/usr/sbin/policy-rc.d
  created_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# hack/install-deps.sh: do not start services while installing.\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    created_policy=1
  fi
  status=0
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } || status=$?
  [ -z "$created_policy" ] || rm -f "$policy"
  [ $status = 0 ] || die "apt-get install ${missing[*]} failed"
  # Where systemd runs, keep the host's FRR service from starting at the next boot.
  if [[ " ${missing[*]} " == *" frr "* ]] && [ -d /run/systemd/system ]; then
    systemctl disable --quiet frr 2>/dev/null || true
  fi
fi
command -v go >/dev/null || die "Go is required (https://go.dev/dl); this project pins its version in go.mod"
