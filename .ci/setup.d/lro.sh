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
