#!/bin/sh
# The "init" of one lab guest.
#
# Stage "boot" runs as PID 1 of a fresh PID namespace, inside the guest's network, UTS and
# mount namespaces (lab-host.sh starts it through `ip netns exec ... unshare`). It builds the
# guest's root — an overlay whose lower layer is the machine's / and whose upper layer is the
# guest's own directory — with a private /proc, /sys, /dev, /run and /tmp, pivots into it,
# drops the capabilities that would let root reach the machine (mount, modules, devices),
# and continues as stage "run" inside the guest: network through ifupdown, sshd, the role's
# services, /etc/rc.local, then reaps orphans until it is killed (power off).
#
# Usage: guest-init.sh boot STATE_DIR
#   STATE_DIR holds upper/ and work/ (the overlay), root/ (the mount point) and seed/
#   (hostname, interfaces, resolv.conf, role, user, password.hash, authorized_keys, sudo),
#   written by the lab supervisor from the VM's metadata and applied to the guest on its first
#   boot; the password hash is deleted from the seed once applied.
set -eu

lab_lib=/usr/local/lib/flotilla-lab

log() { printf '%s guest-init: %s\n' "$(date -u +%H:%M:%S.%N | cut -c1-12)" "$*"; }

# Device nodes a Linux userland expects; nothing that reaches the machine's disks.
make_dev() {
  dev=$1
  mount -t tmpfs -o mode=0755,nosuid,size=64k tmpfs "$dev"
  mknod -m 666 "$dev/null" c 1 3
  mknod -m 666 "$dev/zero" c 1 5
  mknod -m 666 "$dev/full" c 1 7
  mknod -m 666 "$dev/random" c 1 8
  mknod -m 666 "$dev/urandom" c 1 9
  mknod -m 666 "$dev/tty" c 5 0
  mkdir -m 755 "$dev/pts" "$dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$dev/pts"
  ln -s pts/ptmx "$dev/ptmx"
  mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$dev/shm"
  ln -s /proc/self/fd "$dev/fd"
  ln -s /proc/self/fd/0 "$dev/stdin"
  ln -s /proc/self/fd/1 "$dev/stdout"
  ln -s /proc/self/fd/2 "$dev/stderr"
}

# Writes the guest's own /etc/shadow (a copy in the upper layer): the metadata's hash for its
# user, and every other password the machine's shadow holds locked, so none of them logs in.
# Without a hash the user has no password but is not locked ("*"): sshd without PAM refuses
# even key logins to a locked ("!") account, and cloud-init's lock_passwd is false.
set_password_hashes() {
  shadow=$1 user=$2 hash=$3
  awk -F: -v OFS=: -v user="$user" -v hash="$hash" '
    $1 == user { $2 = (hash != "" ? hash : "*") }
    $1 != user && $2 !~ /^[*!]/ { $2 = "*" }
    { print }' "$shadow" > "$shadow.new"
  chmod 640 "$shadow.new"
  chown root:shadow "$shadow.new" 2>/dev/null || true
  mv "$shadow.new" "$shadow"
}

# First boot of this guest: what cloud-init would do from the VMware guestinfo metadata.
first_boot() {
  root=$1 seed=$2
  mkdir -p "$root/etc/flotilla-lab" "$root/etc/network"
  cp "$seed/hostname" "$root/etc/hostname"
  cp "$seed/interfaces" "$root/etc/network/interfaces"
  rm -f "$root/etc/resolv.conf"
  cp "$seed/resolv.conf" "$root/etc/resolv.conf"
  cp "$seed/role" "$root/etc/flotilla-lab/role"
  name=$(cat "$seed/hostname")
  printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' "$name" > "$root/etc/hosts"
  user=$(cat "$seed/user")
  if ! chroot "$root" getent passwd "$user" >/dev/null; then
    chroot "$root" useradd --create-home --shell /bin/bash "$user"
  fi
  set_password_hashes "$root/etc/shadow" "$user" "$(cat "$seed/password.hash")"
  # Keys are the guest's own business (~/.ssh/authorized_keys): none come from the machine,
  # only those of the metadata (cloud-init's ssh_authorized_keys) for its user.
  rm -rf "$root/root/.ssh"
  if [ -s "$seed/authorized_keys" ]; then
    home=$(chroot "$root" getent passwd "$user" | cut -d: -f6)
    mkdir -p "$root$home/.ssh"
    cp "$seed/authorized_keys" "$root$home/.ssh/authorized_keys"
    chmod 700 "$root$home/.ssh"
    chmod 600 "$root$home/.ssh/authorized_keys"
    chroot "$root" chown -R "$user:" "$home/.ssh"
  fi
  # cloud-init's sudo: the rule for the user, in sudoers.d as cloud-init writes it.
  rm -f "$root/etc/sudoers.d/90-cloud-init-users"
  if [ -s "$seed/sudo" ]; then
    mkdir -p "$root/etc/sudoers.d"
    printf '%s %s\n' "$user" "$(cat "$seed/sudo")" > "$root/etc/sudoers.d/90-cloud-init-users"
    chmod 440 "$root/etc/sudoers.d/90-cloud-init-users"
  fi
  # Nor are the machine's shell start-up files: root gets Debian's defaults, as on a fresh VM
  # (a machine's .bashrc can start programs on every SSH command, e.g. a version manager).
  cp /etc/skel/.bashrc /etc/skel/.profile "$root/root/"
  # The machine's host keys are not the guest's: remove them (a whiteout in the upper layer)
  # and give the guest its own ed25519 key.
  rm -f "$root"/etc/ssh/ssh_host_*
  ssh-keygen -q -t ed25519 -N '' -C "root@$name" -f "$root/etc/ssh/ssh_host_ed25519_key"
  cat > "$root/etc/ssh/sshd_config" <<'EOF'
# Written by the Flotilla lab on first boot.
Port 22
ListenAddress 0.0.0.0
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin yes
PasswordAuthentication yes
PubkeyAuthentication yes
KbdInteractiveAuthentication no
UsePAM no
PrintMotd no
UseDNS no
PidFile /run/sshd.pid
MaxStartups 100:30:200
MaxSessions 64
Subsystem sftp /usr/lib/openssh/sftp-server
AcceptEnv LANG LC_*
EOF
  # The machine's own startup hooks are not the guest's.
  rm -f "$root/etc/rc.local"
  touch "$root/etc/flotilla-lab/first-boot-done"
}

stage_boot() {
  state=$1
  root=$state/root
  [ "$$" = 1 ] || { log "must run as PID 1 of a new PID namespace"; exit 1; }
  mount --make-rprivate /
  mkdir -p "$state/upper" "$state/work" "$root"
  mount -t overlay overlay -o "lowerdir=/,upperdir=$state/upper,workdir=$state/work" "$root"
  # Fresh kernel views for this guest: its own processes, its own network devices.
  mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
  mount --bind "$root/proc/sys" "$root/proc/sys"
  mount --bind "$root/proc/sys/net" "$root/proc/sys/net"
  mount -o remount,bind,ro "$root/proc/sys"
  # Kernel-wide knobs in /proc are read-only (sysrq-trigger would reboot the machine) and
  # kernel internals hidden, as container runtimes do.
  for entry in sysrq-trigger irq bus fs; do
    if [ -e "$root/proc/$entry" ]; then
      mount --bind "$root/proc/$entry" "$root/proc/$entry"
      mount -o remount,bind,ro "$root/proc/$entry"
    fi
  done
  for entry in kcore keys timer_list; do
    if [ -e "$root/proc/$entry" ]; then
      mount --bind /dev/null "$root/proc/$entry"
    fi
  done
  mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
  make_dev "$root/dev"
  mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$root/run"
  mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/tmp"
  # The lab's own state (every guest's upper layer) must stay invisible from inside guests.
  lab_state=$(dirname "$(dirname "$state")")
  if [ -d "$root$lab_state" ]; then
    mount -t tmpfs -o mode=0755,size=4k tmpfs "$root$lab_state"
  fi
  if [ ! -e "$root/etc/flotilla-lab/first-boot-done" ]; then
    first_boot "$root" "$state/seed"
  fi
  # Applied: the lab keeps no copy of the password hash (later boots keep the guest's shadow).
  rm -f "$state/seed/password.hash"
  mkdir -p "$root$lab_lib"
  cp "$(dirname "$0")/guest-init.sh" "$(dirname "$0")/stand-in.py" "$root$lab_lib/"
  hostname "$(cat "$root/etc/hostname")"
  mkdir "$root/run/oldroot"
  cd "$root"
  pivot_root . run/oldroot
  cd /
  umount -l /run/oldroot
  rmdir /run/oldroot
  # From here on root inside the guest cannot mount, load modules, create device nodes or
  # touch raw I/O: its writes can only land in the upper layer.
  exec setpriv --bounding-set -sys_admin,-dac_read_search,-sys_tty_config,-sys_module,-mknod,-sys_rawio,-sys_boot,-sys_time,-mac_admin,-mac_override,-syslog,-audit_control,-sys_pacct,-sys_resource,-lease,-block_suspend,-wake_alarm,-perfmon,-bpf,-checkpoint_restore \
    /bin/sh "$lab_lib/guest-init.sh" run
}

start_stand_in() {
  name=$1; shift
  python3 "$lab_lib/stand-in.py" "$name" "$@" >> "/var/log/flotilla-lab-$name.log" 2>&1 &
}

# Debian's MariaDB, started through its `mysqld` name (so `pgrep -x mysqld` finds it), on all
# addresses, with the lab account `flotilla` / `flotilla` (any host) and schema `flotilla`; no reverse
# DNS (the lab has no resolver, and every login would wait for it). The
# machine's package initialised /var/lib/mysql, which the guest sees through its overlay.
start_mariadb() {
  mkdir -p /run/mysqld
  chown mysql:mysql /run/mysqld
  if [ ! -d /var/lib/mysql/mysql ]; then
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db >> /var/log/flotilla-lab-mysqld.log 2>&1
  fi
  printf '%s\n' "CREATE DATABASE IF NOT EXISTS flotilla;" \
    "CREATE USER IF NOT EXISTS 'flotilla'@'%' IDENTIFIED BY 'flotilla';" \
    "GRANT ALL PRIVILEGES ON *.* TO 'flotilla'@'%';" > /etc/flotilla-lab/mariadb-init.sql
  chmod 644 /etc/flotilla-lab/mariadb-init.sql
  runuser -u mysql -- /usr/sbin/mysqld --datadir=/var/lib/mysql --bind-address=0.0.0.0 --skip-name-resolve \
    --init-file=/etc/flotilla-lab/mariadb-init.sql >> /var/log/flotilla-lab-mysqld.log 2>&1 &
}

# Debian's RabbitMQ (about 6 s to listen on 2 cores), with the lab account `flotilla` /
# `flotilla` on vhost `/`, allowed from other hosts.
start_rabbitmq() {
  mkdir -p /etc/rabbitmq /var/log/rabbitmq
  chown rabbitmq:rabbitmq /var/log/rabbitmq
  printf '%s\n' 'default_user = flotilla' 'default_pass = flotilla' 'loopback_users = none' \
    'listeners.tcp.default = 5672' > /etc/rabbitmq/rabbitmq.conf
  (cd /var/lib/rabbitmq && runuser -u rabbitmq -- /usr/sbin/rabbitmq-server >> /var/log/flotilla-lab-rabbitmq.log 2>&1 &)
}

start_role_services() {
  case $1 in
    redis)
      mkdir -p /run/redis /var/log/redis
      chown redis:redis /run/redis /var/log/redis
      runuser -u redis -- redis-server /etc/redis/redis.conf --bind 0.0.0.0 --protected-mode no \
        --daemonize yes --supervised no
      ;;
    mysql) start_mariadb ;;
    mongo) start_stand_in mongod 27017 ;;
    rabbitmq) start_rabbitmq ;;
    nfs)
      start_stand_in rpcbind 111
      start_stand_in nfsd 2049
      ;;
  esac
}

stage_run() {
  export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  log "booting $(hostname)"
  trap 'exit 0' TERM INT
  mkdir -p /run/network /run/sshd /var/log
  # A reboot keeps the network namespace: start from an unconfigured eth0, as a VM would.
  ip addr flush dev eth0 2>/dev/null || true
  ip link set lo up
  ifup -a || log "ifup failed"
  /usr/sbin/sshd -D -e 2>> /var/log/sshd.log &
  start_role_services "$(cat /etc/flotilla-lab/role)" || log "role services failed"
  if [ -x /etc/rc.local ]; then
    /etc/rc.local || log "rc.local failed"
  fi
  log "up"
  # PID 1 reaps every orphan: `wait` on a child blocks in wait3(), which collects any child.
  while :; do
    sleep 3600 &
    wait $! || true
  done
}

case ${1:-} in
  boot) stage_boot "$2" ;;
  run) stage_run ;;
  *) echo "usage: $0 boot STATE_DIR" >&2; exit 2 ;;
esac
