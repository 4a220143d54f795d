#!/usr/bin/env python3
"""Stand-in for a server too heavy for a lab guest (mysqld, mongod, rabbitmq-server, nfsd).

It is NOT the real server: it runs under the real process name (argv[0] and the kernel's
comm, so `pgrep NAME`, `pidof NAME` and `ps -C NAME` find it) and accepts TCP connections on
the real ports, which is what reachability and service checks look at. Connections are
accepted and closed.

Usage: stand-in.py NAME PORT [PORT...]
"""
import ctypes
import os
import selectors
import socket
import sys

PR_SET_NAME = 15
STAND_IN_DIRECTORY = "/run/flotilla-stand-ins"


def take_name(name: str) -> None:
    """Re-exec with argv[0] = name, then set the kernel's comm to name."""
    if os.environ.get("FLOTILLA_STAND_IN") != name:
        os.environ["FLOTILLA_STAND_IN"] = name
        os.execve(sys.executable, [name, os.path.abspath(__file__)] + sys.argv[1:], os.environ)
    libc = ctypes.CDLL(None)
    libc.prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)


def declare_stand_in(name: str, ports: list) -> None:
    """Says on the guest that NAME is a stand-in, so Flotilla's dependency checks run a
    process-and-port check for it (and say so) instead of speaking a protocol it cannot answer."""
    os.makedirs(STAND_IN_DIRECTORY, exist_ok=True)
    with open(os.path.join(STAND_IN_DIRECTORY, name), "w") as marker:
        marker.write(" ".join(str(port) for port in ports) + "\n")


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    name, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
    take_name(name)
    declare_stand_in(name, ports)
    selector = selectors.DefaultSelector()
    for port in ports:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("0.0.0.0", port))
        listener.listen(128)
        selector.register(listener, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select():
            connection, _ = key.fileobj.accept()
            connection.close()


if __name__ == "__main__":
    sys.exit(main())
