# klab-tcp-repair's live tests and the tcp-repair experiment need iproute2
# (ip netns, veth), nftables (the network lock) and tcpdump (the peer's
# capture). Sourced by .ci/run; quick when already installed.
if ! command -v ip >/dev/null || ! command -v nft >/dev/null || ! command -v tcpdump >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 nftables tcpdump >/dev/null
  else
    echo "tcp-repair: not root; ip, nft and tcpdump not installed (live tests will skip)"
  fi
fi
