"""The dependency checker's MongoDB ping against a small OP_MSG server (the lab has no real
mongod; Redis, MariaDB and RabbitMQ are checked against real servers by DependencyCheckLabTests),
and its failure layers for a closed port and a peer that does not speak the protocol."""

import os
import socket
import struct
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import servicecheck  # noqa: E402


def serve_once(handler):
    """A loopback listener that hands its first connection to `handler`; returns the port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def accept():
        connection, _ = listener.accept()
        with connection:
            handler(connection)
        listener.close()

    threading.Thread(target=accept, daemon=True).start()
    return listener.getsockname()[1]


def read_exactly(connection, count):
    data = b""
    while len(data) < count:
        chunk = connection.recv(count - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def mongo_server(reply_fields):
    """Answers one OP_MSG `ping` with a document of (BSON type, key, encoded value)."""

    def handle(connection):
        length, request_id, _, opcode = struct.unpack("<iiii", read_exactly(connection, 16))
        body = read_exactly(connection, length - 16)
        assert opcode == 2013 and b"ping" in body and b"admin" in body
        document = servicecheck.bson_document(reply_fields)
        reply = struct.pack("<I", 0) + b"\x00" + document
        connection.sendall(struct.pack("<iiii", 16 + len(reply), 7, request_id, 2013) + reply)

    return handle


def run(check):
    results = []
    servicecheck.run_one(dict({"id": "0", "host": "127.0.0.1"}, **check), 2.0, results)
    return results[0]


class MongoPingTests(unittest.TestCase):
    def test_ok_passes(self):
        port = serve_once(mongo_server([(b"\x01", "ok", struct.pack("<d", 1.0))]))
        result = run({"kind": "mongo", "port": port})
        self.assertTrue(result["passed"], result)
        self.assertIn("ok: 1", result["message"])

    def test_unauthorized_is_authentication(self):
        fields = [
            (b"\x01", "ok", struct.pack("<d", 0.0)),
            (b"\x02", "errmsg", servicecheck.bson_string("command ping requires authentication")),
            (b"\x10", "code", struct.pack("<i", 13)),
        ]
        port = serve_once(mongo_server(fields))
        result = run({"kind": "mongo", "port": port})
        self.assertFalse(result["passed"])
        self.assertEqual(result["layer"], "authentication")
        self.assertIn("requires authentication", result["message"])

    def test_a_listener_that_closes_is_a_protocol_failure(self):
        port = serve_once(lambda connection: None)
        result = run({"kind": "mongo", "port": port})
        self.assertTrue(result["connected"])
        self.assertEqual(result["layer"], "protocol")


class LayerTests(unittest.TestCase):
    def test_a_closed_port_is_port_closed(self):
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        result = run({"kind": "redis", "port": port})
        self.assertFalse(result["connected"])
        self.assertEqual(result["layer"], "port_closed")

    def test_silence_after_connecting_is_a_timeout(self):
        port = serve_once(lambda connection: connection.recv(1024) and threading.Event().wait(3))
        results = []
        servicecheck.run_one({"id": "0", "host": "127.0.0.1", "kind": "redis", "port": port}, 0.5, results)
        self.assertEqual(results[0]["layer"], "timeout")


if __name__ == "__main__":
    unittest.main()
