# klab-lro's CLI tests read the captures klab writes back with tshark
# (klab/tests/lro.rs): install Debian's tshark without questions.
if ! command -v tshark >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  # wireshark-common asks whether non-root users may capture; say no.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends tshark
fi
echo "tshark: $(command -v tshark)"
# The host-capture test (klab/tests/lro.rs, issue 18) makes a capture on a
# veth pair between two network namespaces: iproute2 (ip netns, veth),
# ethtool (TSO, GSO and GRO off) and tcpdump. It skips without them or
# without root.
if ! command -v ip >/dev/null || ! command -v ethtool >/dev/null || ! command -v tcpdump >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iproute2 ethtool tcpdump >/dev/null
  else
    echo "lro: not root; ip, ethtool and tcpdump not installed (the host-capture test will skip)"
  fi
fi
