# devstats' tests compare its counts with git's own (git rev-list, shortlog,
# log --numstat) on repositories they build with the git CLI.
if ! command -v git >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git; }
fi
