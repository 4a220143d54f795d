#!/bin/sh
# Restarts the sample web application from this release; Flotilla's restart command for the
# lab's web role is `sh restart.sh` (run in the deploy directory's `current`).
here=$(cd "$(dirname "$0")" && pwd -P)
pidfile="$here/../../web.pid"
port=${PORT:-8000}
if [ -f "$pidfile" ]; then
  old=$(cat "$pidfile")
  kill "$old" 2>/dev/null || true
  # The new server binds the same port: wait (up to 3 s) until the old one has let go of it.
  for _ in $(seq 60); do kill -0 "$old" 2>/dev/null || break; sleep 0.05; done
fi
setsid python3 "$here/app.py" "$port" </dev/null >/dev/null 2>&1 &
echo $! > "$pidfile"
