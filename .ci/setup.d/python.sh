# The klab Python module's tests (.ci/python): python3 with venv and pip
# (Debian splits venv/ensurepip into python3-venv). No python3-dev: the
# module is built against the stable ABI and not linked to libpython.
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  if command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
  else
    echo "python3 with venv and ensurepip is needed for .ci/python" >&2
  fi
fi
