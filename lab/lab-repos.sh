#!/bin/sh
# The lab's repository servers on the bridge (issue 12): Debian's `git daemon` and `svnserve`,
# each holding a repository `web` seeded with the sample web application (lab/sample-web).
#
# Usage:
#   lab-repos.sh up STATE_DIR ADDRESS     create the repositories once, start both servers on ADDRESS
#   lab-repos.sh down STATE_DIR           stop both servers (the repositories stay until the lab's state goes)
#
# Git: git://ADDRESS/web.git (branch main; pushes allowed), SVN: svn://ADDRESS/web/trunk
# (anyone reads, user `lab` password `lab` commits). Nothing leaves the bridge.
set -eu

here=$(cd "$(dirname "$0")" && pwd)

running() {
  [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

seed_git() {
  bare=$1
  [ -d "$bare" ] && return 0
  git init -q --bare -b main "$bare"
  work=$(mktemp -d)
  git -C "$work" init -q -b main
  cp "$here"/sample-web/* "$work"/
  git -C "$work" add -A
  git -C "$work" -c user.name=lab -c user.email=lab@flotilla.lab commit -q -m "Sample web application"
  git -C "$work" push -q "$bare" main
  rm -rf "$work"
}

seed_svn() {
  repository=$1
  [ -d "$repository" ] && return 0
  svnadmin create "$repository"
  cat > "$repository/conf/svnserve.conf" <<'CONF'
[general]
anon-access = read
auth-access = write
password-db = passwd
realm = flotilla-lab
CONF
  printf '[users]\nlab = lab\n' > "$repository/conf/passwd"
  svn import -q --non-interactive --no-auth-cache --config-dir "$repository/.svn-client" \
    -m "Sample web application" "$here/sample-web" "file://$repository/trunk"
  rm -rf "$repository/.svn-client"
}

# A server of an earlier lab whose state is gone (a crashed run) still holding ADDRESS:PORT is
# stopped; only the lab's bridge address is looked at, so nothing else on the machine is touched.
free_port() {
  for _ in $(seq 40); do
    pids=$(ss -Hltnp src "$1" "sport = :$2" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u)
    [ -n "$pids" ] || return 0
    # shellcheck disable=SC2086
    kill $pids 2>/dev/null || true
    sleep 0.05
  done
}

# Runs a server with every descriptor above 2 closed. An inherited one (such as the end of a
# socket the caller waits on until every holder is gone) would otherwise stay open for as long as
# the server runs, and the caller would wait forever.
without_inherited_descriptors() {
  python3 -c 'import os, sys; os.closerange(3, os.sysconf("SC_OPEN_MAX")); os.execvp(sys.argv[1], sys.argv[1:])' "$@"
}

up() {
  state=$1 address=$2 root=$1/repos
  mkdir -p "$root/git" "$root/svn"
  seed_git "$root/git/web.git"
  seed_svn "$root/svn/web"
  running "$root/git-daemon.pid" || free_port "$address" 9418
  running "$root/svnserve.pid" || free_port "$address" 3690
  if ! running "$root/git-daemon.pid"; then
    without_inherited_descriptors git daemon --detach --reuseaddr --pid-file="$root/git-daemon.pid" --listen="$address" --port=9418 \
      --base-path="$root/git" --export-all --enable=receive-pack "$root/git" </dev/null >/dev/null 2>&1
  fi
  if ! running "$root/svnserve.pid"; then
    without_inherited_descriptors svnserve -d --listen-host "$address" --listen-port 3690 --pid-file "$root/svnserve.pid" -r "$root/svn" \
      </dev/null >/dev/null 2>&1
  fi
  # Both daemonize before they listen: wait (up to 5 s) until they answer.
  for _ in $(seq 100); do
    if git ls-remote "git://$address/web.git" >/dev/null 2>&1 &&
      svn info --non-interactive --no-auth-cache "svn://$address/web/trunk" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.05
  done
  echo "the lab's repository servers do not answer on $address" >&2
  exit 1
}

down() {
  root=$1/repos
  for pidfile in "$root/git-daemon.pid" "$root/svnserve.pid"; do
    if running "$pidfile"; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
    rm -f "$pidfile"
  done
}

case ${1:-} in
  up) up "$2" "$3" ;;
  down) down "$2" ;;
  *) sed -n '2,11p' "$0" >&2; exit 2 ;;
esac
