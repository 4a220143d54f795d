#!/bin/sh
# Machine-side plumbing of the Flotilla lab: the bridge, each guest's network namespace and
# veth pair, starting and killing a guest's init, and removing everything the lab made.
# The Swift LabSupervisor decides what to do; this script only does it. Everything it makes
# is named flt-* (namespaces, links) or lives under the lab's state directory.
#
# Usage:
#   lab-host.sh bridge-up GATEWAY/PREFIX        create flt-br0 holding the lab's gateway address
#   lab-host.sh start KEY STATE_DIR             boot guest KEY (network namespace flt-KEY)
#   lab-host.sh stop KEY                        kill the guest's processes, link down
#   lab-host.sh remove KEY STATE_DIR            stop, delete its namespace, link and state
#   lab-host.sh status                          one line per guest namespace: KEY running|stopped ADDRESS/PREFIX|-
#   lab-host.sh down STATE_ROOT                 remove every flt-* namespace and link, the bridge and STATE_ROOT
set -eu

bridge=flt-br0
here=$(cd "$(dirname "$0")" && pwd)

valid_key() {
  case $1 in
    ''|*[!a-z0-9-]*) echo "invalid guest key: $1" >&2; exit 2 ;;
  esac
  [ ${#1} -le 11 ] || { echo "guest key too long: $1" >&2; exit 2; }
}

bridge_up() {
  gateway=$1
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    ip link add "$bridge" type bridge
  fi
  ip addr replace "$gateway" dev "$bridge"
  ip link set "$bridge" up
  # Guests talk to the machine and to each other, never beyond: nothing entering from the
  # bridge is forwarded, whatever the machine's global ip_forward says.
  echo 0 > "/proc/sys/net/ipv4/conf/$bridge/forwarding"
  if [ -e "/proc/sys/net/ipv6/conf/$bridge/disable_ipv6" ]; then
    echo 1 > "/proc/sys/net/ipv6/conf/$bridge/disable_ipv6"
  fi
}

guest_pids() {
  ip netns pids "flt-$1" 2>/dev/null || true
}

start() {
  key=$1 state=$2 ns=flt-$1 host_link=flt-$1
  if ! ip netns list | grep -qx "$ns\( .*\)\?"; then
    ip netns add "$ns"
  fi
  # The pair is whole only if the guest has its eth0: a host-side link without it is left over
  # from a namespace being torn down (the kernel does that asynchronously) and goes at once.
  if ! ip -n "$ns" link show eth0 >/dev/null 2>&1; then
    ip link del "$host_link" 2>/dev/null || true
    ip link add "$host_link" type veth peer name eth0 netns "$ns"
  fi
  ip link set "$host_link" master "$bridge"
  ip link set "$host_link" up
  if [ -n "$(guest_pids "$key")" ]; then
    echo "guest $key is already running" >&2
    exit 0
  fi
  mkdir -p "$state"
  # bash closes every descriptor but stdin/out/err: pipes or sockets our caller leaked would
  # otherwise stay open for the guest's whole life (and a caller reading our output would wait).
  # setsid: the guest outlives its supervisor (a restarted supervisor adopts it).
  # --kill-child: killing unshare kills the guest's PID 1, and with it the whole PID namespace.
  bash -c 'for fd in /proc/self/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null; exec "$@"' \
    flt-guest setsid ip netns exec "$ns" unshare --pid --kill-child --uts --mount --propagation private \
    /bin/sh "$here/guest-init.sh" boot "$state" </dev/null >>"$state/console.log" 2>&1 &
}

stop() {
  key=$1
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    pids=$(guest_pids "$key")
    [ -n "$pids" ] || break
    # shellcheck disable=SC2086
    kill -9 $pids 2>/dev/null || true
    sleep 0.05
  done
  if ip link show "flt-$key" >/dev/null 2>&1; then
    ip link set "flt-$key" down
  fi
}

remove() {
  key=$1 state=$2
  stop "$key"
  # The link first: deleting it takes the guest's eth0 at once, while a deleted namespace
  # lets the kernel remove its devices later.
  ip link del "flt-$key" 2>/dev/null || true
  ip netns del "flt-$key" 2>/dev/null || true
  rm -rf "$state"
}

status() {
  for ns in $(ip netns list | awk '{print $1}' | grep '^flt-' || true); do
    key=${ns#flt-}
    state=stopped
    [ -z "$(guest_pids "$key")" ] || state=running
    address=$(ip -n "$ns" -4 -o addr show dev eth0 2>/dev/null | awk '{print $4; exit}')
    echo "$key $state ${address:--}"
  done
}

down() {
  state_root=$1
  for ns in $(ip netns list | awk '{print $1}' | grep '^flt-' || true); do
    key=${ns#flt-}
    stop "$key"
    ip link del "$ns" 2>/dev/null || true
    ip netns del "$ns"
  done
  for link in $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep '^flt-' || true); do
    ip link del "$link" 2>/dev/null || true
  done
  rm -rf "$state_root"
}

command=${1:-}
case $command in
  bridge-up) bridge_up "$2" ;;
  start) valid_key "$2"; start "$2" "$3" ;;
  stop) valid_key "$2"; stop "$2" ;;
  remove) valid_key "$2"; remove "$2" "$3" ;;
  status) status ;;
  down) down "$2" ;;
  *) sed -n '2,14p' "$0" >&2; exit 2 ;;
esac
