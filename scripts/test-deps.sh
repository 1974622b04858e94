#!/usr/bin/env bash
# Makes sure the programs the tests run for real are installed: `make test`
# calls this first. As root on Debian it installs what is missing with
# apt-get; otherwise it stops and lists the packages to install.
#
# One line per program: "<command to look for> <Debian package>". Add a line
# when a test starts needing a new server or client.
set -euo pipefail
needs=(
  "mktorrent mktorrent"
  "mariadbd mariadb-server"
  "nginx nginx"
  "systemd-socket-activate systemd"
  "prometheus prometheus"
  "promtool prometheus"
  "redis-server redis-server"
  "redis-cli redis-tools"
)

missing=()
for need in "${needs[@]}"; do
  read -r cmd pkg <<<"$need"
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] && continue
  [[ " ${missing[*]} " == *" $pkg "* ]] || missing+=("$pkg") # once, for two programs of one package
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
echo "the tests need these packages; install them first: ${missing[*]}" >&2
echo "  sudo apt-get install -y ${missing[*]}" >&2
exit 1
