#!/bin/sh
# Installs a stand-in application service on a lab guest, the way a VM of a web/daemon/celery
# role would have its application installed, for the service configuration tests and benchmark
# (lab guests have no systemd or supervisor). Run on the guest as root:
#   sh -s SERVICE SETTINGS < scripts/lab-app-service.sh
# SERVICE gets /etc/init.d/SERVICE (start|stop|restart|status, pid in /run/SERVICE.pid). Its
# process runs SETTINGS as Python at start, so a settings file that raises stops the service
# from starting, and start then fails. A first SETTINGS is written, and the service started.
set -eu
service=$1 settings=$2
id spider >/dev/null 2>&1 || useradd --system --no-create-home spider
mkdir -p "${settings%/*}"
[ -f "$settings" ] || printf 'STARTED_BY = "lab fixture"\n' > "$settings"
cat > "/etc/init.d/$service" <<EOF
#!/bin/sh
pidfile=/run/$service.pid
start() {
  setsid python3 -c 'import runpy, sys, time; runpy.run_path(sys.argv[1]); time.sleep(10 ** 9)' "$settings" </dev/null >"/var/log/$service.log" 2>&1 &
  echo \$! > \$pidfile
  sleep 1
  kill -0 \$(cat \$pidfile) 2>/dev/null
}
stop() { [ -f \$pidfile ] && kill \$(cat \$pidfile) 2>/dev/null; rm -f \$pidfile; return 0; }
case "\$1" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) [ -f \$pidfile ] && kill -0 \$(cat \$pidfile) 2>/dev/null ;;
  *) exit 2 ;;
esac
EOF
chmod 755 "/etc/init.d/$service"
"/etc/init.d/$service" restart
