# Sourced by .ci/run (bash): makes sure the machine has what the tests need, installing Debian
# packages only when something is missing, so a run on a prepared machine costs a few psql calls.
#
#   ensure_postgres   a server answering $QUEUECTL_TEST_PG_URL (exported), plus initdb/pg_ctl for
#                     the tests' private servers; falls back from "answers" to "start the installed
#                     cluster" to "apt-get install postgresql".
#   ensure_chromium   /usr/bin/chromium (Debian's package) for the browser tests.
#   ensure_net_tools  ip (iproute2), unshare and nsenter (util-linux) for the netns tests.
#
# Each prints one line saying what it uses, or one "!! …" line saying what is wrong, and returns
# non-zero then. Knobs (for .ci's own tests and for machines that must not be changed):
#   QUEUECTL_TEST_PG_URL     use this server; only checked, never started or installed
#   QUEUECTL_CI_PG_PORT      the local port to look at (default 5432)
#   QUEUECTL_CI_NO_INSTALL=1 never run apt-get or create a cluster: fail instead

ci_apt_updated=0

# ci_as_root CMD...: runs CMD as root (directly, or through passwordless sudo).
ci_as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    echo "!! need root (or passwordless sudo) to run: $*" >&2
    return 1
  fi
}

# ci_apt_install PKG...: noninteractive install; the log is shown only when it fails.
ci_apt_install() {
  if [ "${QUEUECTL_CI_NO_INSTALL:-0}" = 1 ]; then
    echo "!! $* missing and QUEUECTL_CI_NO_INSTALL=1: install it (apt-get install $*)" >&2
    return 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "!! $* missing and there is no apt-get: install it by hand" >&2
    return 1
  fi
  local log
  log=$(mktemp)
  echo "== installing Debian packages: $*"
  if [ "$ci_apt_updated" = 0 ]; then
    ci_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$log" 2>&1 ||
      { tail -20 "$log"; echo "!! apt-get update failed" >&2; rm -f "$log"; return 1; }
    ci_apt_updated=1
  fi
  ci_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "$@" >"$log" 2>&1 ||
    { tail -20 "$log"; echo "!! apt-get install $* failed" >&2; rm -f "$log"; return 1; }
  rm -f "$log"
}

# ci_pg_bindir: the directory holding initdb and pg_ctl (PATH first, then Debian's layout).
ci_pg_bindir() {
  local initdb dir
  if initdb=$(command -v initdb 2>/dev/null); then
    dirname "$(readlink -f "$initdb")"
    return 0
  fi
  # Debian keeps the server binaries per major version; take the newest.
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && echo "$dir"
}

# ci_pg_try URL: prints the server version when URL accepts a query, else psql's error (status 1).
ci_pg_try() {
  PGCONNECT_TIMEOUT=5 psql -X -w -q -A -t -v ON_ERROR_STOP=1 -d "$1" -c 'show server_version' 2>&1
}

# ci_pg_cluster PORT: "version name status" of the installed Debian cluster on PORT, if any.
ci_pg_cluster() {
  command -v pg_lsclusters >/dev/null 2>&1 || return 1
  pg_lsclusters -h 2>/dev/null | awk -v port="$1" '$3 == port { print $1, $2, $4; found = 1 }
    END { exit !found }' | head -1
}

# ci_pg_trust_local VERSION NAME: lets the cluster we installed accept postgres@127.0.0.1 without
# a password (Debian's default asks for one over TCP). Only ever done to a cluster installed here.
ci_pg_trust_local() {
  local hba="/etc/postgresql/$1/$2/pg_hba.conf"
  grep -q '^# queuectl CI' "$hba" 2>/dev/null && return 0
  ci_as_root sh -c "{ printf '%s\n' '# queuectl CI: trust local TCP for the tests' \
    'host all all 127.0.0.1/32 trust' 'host all all ::1/128 trust'; cat '$hba'; } > '$hba.new' &&
    chown --reference='$hba' '$hba.new' && chmod --reference='$hba' '$hba.new' &&
    mv '$hba.new' '$hba'"
}

ensure_postgres() {
  local port="${QUEUECTL_CI_PG_PORT:-5432}" url out cluster version name state installed=0

  # The tests' private servers need the server binaries, whichever server answers on the port.
  if [ -z "$(ci_pg_bindir)" ] || ! command -v psql >/dev/null 2>&1; then
    ci_apt_install postgresql || return 1
    installed=1
  fi

  if [ -n "${QUEUECTL_TEST_PG_URL:-}" ]; then
    # Chosen by whoever runs CI: use it as it is, never start or install anything for it.
    if out=$(ci_pg_try "$QUEUECTL_TEST_PG_URL"); then
      echo "== postgres: QUEUECTL_TEST_PG_URL answers (server $out)"
      return 0
    fi
    echo "!! postgres: QUEUECTL_TEST_PG_URL does not answer: $(echo "$out" | head -1)" >&2
    return 1
  fi

  url="postgres://postgres@127.0.0.1:$port/postgres"
  if ! out=$(ci_pg_try "$url"); then
    if [ "$installed" = 0 ] && pg_isready -q -h 127.0.0.1 -p "$port" 2>/dev/null; then
      # Something we did not install answers but refuses us: not ours to reconfigure.
      echo "!! postgres: a server answers on 127.0.0.1:$port but refuses $url:" \
        "$(echo "$out" | head -1); set QUEUECTL_TEST_PG_URL to a URL it accepts" >&2
      return 1
    fi
    cluster=$(ci_pg_cluster "$port")
    if [ -z "$cluster" ] && [ "${QUEUECTL_CI_NO_INSTALL:-0}" != 1 ]; then
      # No cluster on the port: install the package (its postinst creates "main"), or create
      # one when the package is there but its cluster was dropped or uses another port.
      if [ "$installed" = 0 ] && ! command -v pg_createcluster >/dev/null 2>&1; then
        ci_apt_install postgresql || return 1
      fi
      installed=1
      cluster=$(ci_pg_cluster "$port")
      if [ -z "$cluster" ]; then
        version=$(basename "$(dirname "$(ci_pg_bindir)")")
        name=main
        [ -d "/etc/postgresql/$version/main" ] && name="queuectl_$port"
        echo "== creating PostgreSQL cluster $version/$name on port $port"
        ci_as_root pg_createcluster -p "$port" "$version" "$name" >/dev/null || return 1
        cluster="$version $name down"
      fi
    fi
    if [ -z "$cluster" ]; then
      echo "!! postgres: nothing answers on 127.0.0.1:$port and no cluster is installed for that" \
        "port: start one (pg_ctlcluster VERSION main start) or set QUEUECTL_TEST_PG_URL" >&2
      return 1
    fi
    read -r version name state <<<"$cluster"
    if [ "$installed" = 1 ]; then
      ci_pg_trust_local "$version" "$name" || return 1
      if [ "$state" = online ]; then
        ci_as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$name" reload >/dev/null ||
          return 1
      fi
    fi
    if [ "$state" != online ]; then
      echo "== starting PostgreSQL cluster $version/$name"
      out=$(ci_as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start 2>&1) ||
        { echo "$out"; echo "!! postgres: cluster $version/$name did not start" >&2; return 1; }
    fi
    if ! out=$(ci_pg_try "$url"); then
      echo "!! postgres: cluster $version/$name runs but $url fails: $(echo "$out" | head -1);" \
        "set QUEUECTL_TEST_PG_URL to a URL it accepts" >&2
      return 1
    fi
  fi
  export QUEUECTL_TEST_PG_URL="$url"
  echo "== postgres: $url (server $out)"
}

ensure_chromium() {
  if [ ! -x /usr/bin/chromium ]; then
    # fonts-liberation is only a Recommends: without it screenshots may lack the usual faces.
    ci_apt_install chromium fonts-liberation || return 1
  fi
  [ -x /usr/bin/chromium ] || { echo "!! /usr/bin/chromium missing after install" >&2; return 1; }
  echo "== chromium: /usr/bin/chromium"
}

# The shells whose completion scripts the tests load (tests/cli/completions_test.ts).
ensure_shells() {
  local missing=() shell
  for shell in zsh fish; do command -v "$shell" >/dev/null 2>&1 || missing+=("$shell"); done
  [ "${#missing[@]}" -eq 0 ] || ci_apt_install "${missing[@]}" || return 1
}

ensure_net_tools() {
  command -v ip >/dev/null 2>&1 || ci_apt_install iproute2 || return 1
  local tool
  for tool in unshare nsenter; do
    command -v "$tool" >/dev/null 2>&1 || ci_apt_install util-linux || return 1
  done
}
