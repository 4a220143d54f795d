"""Flotilla's dependency checker: is each service ready, not merely listening? (SPEC CFG-2)

Flotilla runs this program on the platform and on every target VM of a service profile (sent
over SSH on standard input, so nothing is installed and no password appears in a command line).
It needs only Python 3's standard library. Input, a JSON object on standard input after the
program (see `main`):

    {"timeout": 4.0, "checks": [{"id": "0", "kind": "mysql", "host": "10.77.1.5", "port": 3306,
      "user": "flotilla", "password": "...", "database": "flotilla"}, ...]}

Output, one JSON object on standard output: {"results": [{"id", "connected", "passed", "layer",
"message", "milliseconds"}]}. `layer` names where a failure happened: no_route, port_closed,
timeout, authentication, protocol. Every check runs in its own thread with its own deadline.
"""

import errno
import hashlib
import json
import socket
import struct
import sys
import threading
import time


class CheckFailed(Exception):
    def __init__(self, layer, message):
        super().__init__(message)
        self.layer = layer
        self.message = message


class Peer:
    """One TCP connection with a deadline shared by every read and write."""

    def __init__(self, host, port, deadline):
        self.deadline = deadline
        self.description = "%s:%d" % (host, port)
        try:
            self.sock = socket.create_connection((host, port), timeout=self.remaining())
        except ConnectionRefusedError:
            raise CheckFailed("port_closed", "%s refused the connection (nothing listens on the port)" % self.description)
        except socket.timeout:
            raise CheckFailed("no_route", "no answer from %s within the time limit (no route, or a firewall drops it)" % self.description)
        except OSError as error:
            if error.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL):
                raise CheckFailed("no_route", "no route to %s (%s)" % (self.description, error.strerror))
            raise CheckFailed("no_route", "cannot connect to %s: %s" % (self.description, error))

    def remaining(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise CheckFailed("timeout", "no answer within the time limit")
        return left

    def send(self, data):
        self.sock.settimeout(self.remaining())
        try:
            self.sock.sendall(data)
        except OSError as error:
            raise CheckFailed("protocol", "%s closed the connection: %s" % (self.description, error))

    def receive(self, count, speaking):
        data = b""
        while len(data) < count:
            self.sock.settimeout(self.remaining())
            try:
                chunk = self.sock.recv(count - len(data))
            except socket.timeout:
                raise CheckFailed("timeout", "%s accepted the connection but did not answer as %s in time" % (self.description, speaking))
            except OSError as error:
                raise CheckFailed("protocol", "%s dropped the connection (%s) instead of speaking %s" % (self.description, error, speaking))
            if not chunk:
                raise CheckFailed("protocol", "%s closed the connection without speaking %s" % (self.description, speaking))
            data += chunk
        return data

    def receive_line(self, speaking):
        line = b""
        while not line.endswith(b"\r\n"):
            line += self.receive(1, speaking)
            if len(line) > 4096:
                raise CheckFailed("protocol", "%s sent an over-long line, not %s" % (self.description, speaking))
        return line[:-2]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# Redis: PING (after AUTH when the profile gives a password) must answer PONG.
def check_redis(peer, check):
    speaking = "Redis (RESP)"
    password = check.get("password")
    if password:
        words = [check["user"], password] if check.get("user") else [password]
        peer.send(resp_command(["AUTH"] + words))
        reply = peer.receive_line(speaking)
        if not reply.startswith(b"+OK"):
            raise CheckFailed("authentication", "AUTH refused: %s" % reply[1:].decode("utf-8", "replace"))
    peer.send(resp_command(["PING"]))
    reply = peer.receive_line(speaking)
    if reply.startswith(b"+PONG"):
        return "PING answered PONG"
    text = reply[1:].decode("utf-8", "replace")
    if reply.startswith(b"-NOAUTH") or reply.startswith(b"-WRONGPASS"):
        raise CheckFailed("authentication", "PING refused: %s" % text)
    raise CheckFailed("protocol", "PING answered %s" % (text or "nothing"))


def resp_command(words):
    parts = [b"*%d\r\n" % len(words)]
    for word in words:
        data = word.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


# MySQL / MariaDB: the handshake, login with mysql_native_password, then SELECT 1.
MYSQL_ACCESS_ERRORS = {1044, 1045, 1049, 1130, 1698}
CLIENT_CONNECT_WITH_DB = 0x8
CLIENT_PROTOCOL_41 = 0x200
CLIENT_SECURE_CONNECTION = 0x8000
CLIENT_PLUGIN_AUTH = 0x80000
CLIENT_LONG_PASSWORD = 0x1


def check_mysql(peer, check):
    speaking = "the MySQL protocol"
    sequence, greeting = mysql_read(peer, speaking)
    if greeting[:1] == b"\xff":
        mysql_raise(greeting, "before the login")
    if greeting[:1] != b"\x0a":
        raise CheckFailed("protocol", "%s greeted with protocol %r, not MySQL protocol 10" % (peer.description, greeting[:1]))
    version_end = greeting.index(b"\x00", 1)
    # MariaDB prefixes its version with "5.5.5-" for old clients.
    version = greeting[1:version_end].decode("utf-8", "replace").removeprefix("5.5.5-")
    position = version_end + 1 + 4
    salt = greeting[position : position + 8]
    position += 8 + 1
    capabilities = struct.unpack("<H", greeting[position : position + 2])[0]
    position += 2 + 1 + 2
    capabilities |= struct.unpack("<H", greeting[position : position + 2])[0] << 16
    position += 2
    salt_length = greeting[position]
    position += 1 + 10
    if capabilities & CLIENT_SECURE_CONNECTION:
        part = max(13, salt_length - 8)
        salt += greeting[position : position + part].rstrip(b"\x00")
        position += part
    plugin = "mysql_native_password"
    if capabilities & CLIENT_PLUGIN_AUTH and position < len(greeting):
        plugin = greeting[position:].split(b"\x00", 1)[0].decode("ascii", "replace")
    user = check.get("user") or "root"
    password = check.get("password") or ""
    database = check.get("database")
    flags = CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH
    if database:
        flags |= CLIENT_CONNECT_WITH_DB
    scramble = mysql_native_scramble(password, salt) if plugin == "mysql_native_password" else b""
    response = struct.pack("<IIB", flags, 1 << 24, 33) + b"\x00" * 23
    response += user.encode() + b"\x00" + bytes([len(scramble)]) + scramble
    if database:
        response += database.encode() + b"\x00"
    response += b"mysql_native_password\x00"
    mysql_write(peer, sequence + 1, response)
    sequence, answer = mysql_read(peer, speaking)
    if answer[:1] == b"\xfe":
        name, _, data = answer[1:].partition(b"\x00")
        if name != b"mysql_native_password":
            raise CheckFailed("authentication", "the server asks for the login method %s; the check speaks mysql_native_password"
                              % name.decode("ascii", "replace"))
        mysql_write(peer, sequence + 1, mysql_native_scramble(password, data.rstrip(b"\x00")))
        sequence, answer = mysql_read(peer, speaking)
    if answer[:1] == b"\xff":
        mysql_raise(answer, "at login as %s" % user)
    if answer[:1] != b"\x00":
        raise CheckFailed("protocol", "unexpected answer to the login: %r" % answer[:1])
    mysql_write(peer, 0, b"\x03" + b"SELECT 1, CURRENT_USER(), USER()")
    _, header = mysql_read(peer, speaking)
    if header[:1] == b"\xff":
        mysql_raise(header, "running SELECT 1")
    columns = header[0]
    for _ in range(columns):
        mysql_read(peer, speaking)
    _, end = mysql_read(peer, speaking)
    if end[:1] != b"\xfe":
        raise CheckFailed("protocol", "SELECT 1 answered an unexpected result")
    _, row = mysql_read(peer, speaking)
    values = mysql_row(row, columns)
    mysql_write(peer, 0, b"\x01")
    if values[0] != "1":
        raise CheckFailed("protocol", "SELECT 1 answered %r" % values[0])
    return "%s: logged in, SELECT 1 answered 1 (seen by the server as %s)" % (version, values[2])


def mysql_read(peer, speaking):
    header = peer.receive(4, speaking)
    length = header[0] | header[1] << 8 | header[2] << 16
    return header[3], peer.receive(length, speaking)


def mysql_write(peer, sequence, payload):
    peer.send(struct.pack("<I", len(payload))[:3] + bytes([sequence & 0xFF]) + payload)


def mysql_raise(packet, when):
    code = struct.unpack("<H", packet[1:3])[0]
    message = packet[3:]
    if message[:1] == b"#":
        message = message[6:]
    text = "MySQL error %d %s: %s" % (code, when, message.decode("utf-8", "replace"))
    raise CheckFailed("authentication" if code in MYSQL_ACCESS_ERRORS else "protocol", text)


def mysql_native_scramble(password, salt):
    if not password:
        return b""
    first = hashlib.sha1(password.encode()).digest()
    second = hashlib.sha1(first).digest()
    mix = hashlib.sha1(salt[:20] + second).digest()
    return bytes(a ^ b for a, b in zip(first, mix))


def mysql_row(row, columns):
    values, position = [], 0
    for _ in range(columns):
        first = row[position]
        if first == 0xFB:
            values.append(None)
            position += 1
            continue
        if first < 0xFB:
            length, position = first, position + 1
        elif first == 0xFC:
            length, position = struct.unpack("<H", row[position + 1 : position + 3])[0], position + 3
        else:
            length, position = struct.unpack("<I", row[position + 1 : position + 4] + b"\x00")[0], position + 4
        values.append(row[position : position + length].decode("utf-8", "replace"))
        position += length
    return values


# RabbitMQ: AMQP 0-9-1 connection open (Start, Start-Ok with PLAIN, Tune, Open on the vhost).
AMQP_SPEAKING = "AMQP 0-9-1"


def check_rabbitmq(peer, check):
    peer.send(b"AMQP\x00\x00\x09\x01")
    class_method, payload = amqp_read(peer)
    if class_method != (10, 10):
        raise CheckFailed("protocol", "expected Connection.Start, got method %s" % (class_method,))
    product = amqp_server_product(payload[2:])
    user = check.get("user") or "guest"
    password = check.get("password") or "guest"
    capabilities = amqp_short_string("authentication_failure_close") + b"t\x01"
    client_properties = amqp_short_string("capabilities") + b"F" + struct.pack(">I", len(capabilities)) + capabilities
    start_ok = struct.pack(">I", len(client_properties)) + client_properties
    start_ok += amqp_short_string("PLAIN") + amqp_long_string(b"\x00" + user.encode() + b"\x00" + password.encode())
    start_ok += amqp_short_string("en_US")
    amqp_write(peer, 10, 11, start_ok)
    try:
        class_method, payload = amqp_read(peer)
    except CheckFailed as failure:
        if failure.layer == "protocol":
            raise CheckFailed("authentication", "the server closed the connection after the login as %s" % user)
        raise
    if class_method == (10, 50):
        amqp_raise_close(payload, "at login as %s" % user)
    if class_method != (10, 30):
        raise CheckFailed("protocol", "expected Connection.Tune, got method %s" % (class_method,))
    channel_max, frame_max, _ = struct.unpack(">HIH", payload[:8])
    amqp_write(peer, 10, 31, struct.pack(">HIH", channel_max, frame_max, 0))
    vhost = check.get("vhost") or "/"
    amqp_write(peer, 10, 40, amqp_short_string(vhost) + amqp_short_string("") + b"\x00")
    class_method, payload = amqp_read(peer)
    if class_method == (10, 50):
        amqp_raise_close(payload, "opening vhost %s" % vhost)
    if class_method != (10, 41):
        raise CheckFailed("protocol", "expected Connection.Open-Ok, got method %s" % (class_method,))
    amqp_write(peer, 10, 50, struct.pack(">H", 200) + amqp_short_string("check done") + struct.pack(">HH", 0, 0))
    return "%s: connection open on vhost %s as %s" % (product, vhost, user)


def amqp_read(peer):
    while True:
        header = peer.receive(7, AMQP_SPEAKING)
        if header[:4] == b"AMQP":
            peer.receive(1, AMQP_SPEAKING)
            raise CheckFailed("protocol", "the server wants another AMQP version: %r" % header)
        kind, _, size = struct.unpack(">BHI", header)
        payload = peer.receive(size + 1, AMQP_SPEAKING)[:-1]
        if kind == 1:
            return struct.unpack(">HH", payload[:4]), payload[4:]
        # Heartbeats and other frames before the answer are skipped.


def amqp_write(peer, class_id, method_id, arguments):
    payload = struct.pack(">HH", class_id, method_id) + arguments
    peer.send(struct.pack(">BHI", 1, 0, len(payload)) + payload + b"\xce")


def amqp_raise_close(payload, when):
    code = struct.unpack(">H", payload[:2])[0]
    text = payload[3 : 3 + payload[2]].decode("utf-8", "replace")
    layer = "authentication" if code in (403, 530) else "protocol"
    raise CheckFailed(layer, "the server closed the connection %s: %d %s" % (when, code, text))


def amqp_server_product(table_and_more):
    """The server's product and version from Connection.Start's server-properties, best effort."""
    try:
        size = struct.unpack(">I", table_and_more[:4])[0]
        table, position, found = table_and_more[4 : 4 + size], 0, {}
        while position < len(table):
            key_length = table[position]
            key = table[position + 1 : position + 1 + key_length].decode()
            position += 1 + key_length
            kind = table[position : position + 1]
            position += 1
            if kind == b"S":
                length = struct.unpack(">I", table[position : position + 4])[0]
                found[key] = table[position + 4 : position + 4 + length].decode("utf-8", "replace")
                position += 4 + length
            elif kind == b"F":
                position += 4 + struct.unpack(">I", table[position : position + 4])[0]
            elif kind == b"t":
                position += 1
            else:
                break
        return ("%s %s" % (found.get("product", "AMQP server"), found.get("version", ""))).strip()
    except (IndexError, struct.error, UnicodeDecodeError):
        return "AMQP server"


def amqp_short_string(text):
    data = text.encode()
    return bytes([len(data)]) + data


def amqp_long_string(data):
    return struct.pack(">I", len(data)) + data


# MongoDB: the `ping` command (OP_MSG on the admin database) must answer ok: 1.
def check_mongo(peer, check):
    speaking = "the MongoDB wire protocol"
    command = bson_document([(b"\x10", "ping", struct.pack("<i", 1)), (b"\x02", "$db", bson_string("admin"))])
    body = struct.pack("<I", 0) + b"\x00" + command
    peer.send(struct.pack("<iiii", 16 + len(body), 1, 0, 2013) + body)
    length, _, _, opcode = struct.unpack("<iiii", peer.receive(16, speaking))
    if opcode != 2013 or not 21 <= length <= 16 * 1024 * 1024:
        raise CheckFailed("protocol", "answered with MongoDB opcode %d, not OP_MSG" % opcode)
    reply = bson_fields(peer.receive(length - 16, speaking)[5:])
    if reply.get("ok") == 1:
        return "ping answered ok: 1"
    message = "ping answered %s (code %s)" % (reply.get("errmsg", "not ok"), reply.get("code", "?"))
    raise CheckFailed("authentication" if reply.get("code") in (13, 18) else "protocol", message)


def bson_string(text):
    data = text.encode() + b"\x00"
    return struct.pack("<i", len(data)) + data


def bson_document(elements):
    body = b"".join(kind + key.encode() + b"\x00" + value for kind, key, value in elements) + b"\x00"
    return struct.pack("<i", 4 + len(body)) + body


def bson_fields(document):
    """The top-level numbers and strings of a BSON document (what a ping reply holds)."""
    fixed = {0x07: 12, 0x08: 1, 0x09: 8, 0x0A: 0, 0x11: 8, 0x12: 8, 0x13: 16}
    fields, position, end = {}, 4, struct.unpack("<i", document[:4])[0] - 1
    while position < end:
        kind = document[position]
        key_end = document.index(b"\x00", position + 1)
        key = document[position + 1 : key_end].decode("utf-8", "replace")
        position = key_end + 1
        if kind == 0x01:
            fields[key] = struct.unpack("<d", document[position : position + 8])[0]
            position += 8
        elif kind == 0x10:
            fields[key] = struct.unpack("<i", document[position : position + 4])[0]
            position += 4
        elif kind == 0x02:
            size = struct.unpack("<i", document[position : position + 4])[0]
            fields[key] = document[position + 4 : position + 3 + size].decode("utf-8", "replace")
            position += 4 + size
        elif kind in (0x03, 0x04):
            position += struct.unpack("<i", document[position : position + 4])[0]
        elif kind == 0x05:
            position += 5 + struct.unpack("<i", document[position : position + 4])[0]
        elif kind in fixed:
            position += fixed[kind]
        else:
            break
    return fields


# NFS: the server's mount daemon (found through the portmapper on port 111) lists the export.
def check_nfs(peer, check):
    speaking = "ONC RPC"
    host = peer.description.rsplit(":", 1)[0]
    portmapper = Peer(host, 111, peer.deadline)
    try:
        reply = rpc_call(portmapper, 100000, 2, 3, struct.pack(">IIII", 100005, 3, 6, 0), speaking)
    finally:
        portmapper.close()
    mount_port = struct.unpack(">I", reply[:4])[0]
    if mount_port == 0:
        raise CheckFailed("protocol", "the portmapper on %s knows no mount daemon (mountd) over TCP" % host)
    mountd = Peer(host, mount_port, peer.deadline)
    try:
        reply = rpc_call(mountd, 100005, 3, 5, b"", speaking)
    finally:
        mountd.close()
    exports, position = [], 0
    while struct.unpack(">I", reply[position : position + 4])[0] == 1:
        size = struct.unpack(">I", reply[position + 4 : position + 8])[0]
        exports.append(reply[position + 8 : position + 8 + size].decode("utf-8", "replace"))
        position += 8 + (size + 3) // 4 * 4
        while struct.unpack(">I", reply[position : position + 4])[0] == 1:
            size = struct.unpack(">I", reply[position + 4 : position + 8])[0]
            position += 8 + (size + 3) // 4 * 4
        position += 4
    wanted = check.get("export")
    if wanted and wanted not in exports:
        raise CheckFailed("protocol", "%s does not export %s (exports: %s)" % (host, wanted, ", ".join(exports) or "none"))
    if not exports:
        raise CheckFailed("protocol", "%s exports nothing" % host)
    return "exports %s" % ", ".join(exports)


def rpc_call(peer, program, version, procedure, arguments, speaking):
    call = struct.pack(">IIIIIIIIII", 0x464C5431, 0, 2, program, version, procedure, 0, 0, 0, 0) + arguments
    peer.send(struct.pack(">I", 0x80000000 | len(call)) + call)
    reply = b""
    while True:
        mark = struct.unpack(">I", peer.receive(4, speaking))[0]
        reply += peer.receive(mark & 0x7FFFFFFF, speaking)
        if mark & 0x80000000:
            break
    _, message_type, reply_state = struct.unpack(">III", reply[:12])
    verifier_length = struct.unpack(">I", reply[16:20])[0]
    position = 20 + (verifier_length + 3) // 4 * 4
    if message_type != 1 or reply_state != 0 or struct.unpack(">I", reply[position : position + 4])[0] != 0:
        raise CheckFailed("protocol", "RPC program %d refused the call" % program)
    return reply[position + 4 :]


# Any other TCP service: the port accepts a connection.
def check_tcp(peer, check):
    return "%s accepted the connection" % peer.description


KINDS = {
    "redis": check_redis,
    "mysql": check_mysql,
    "rabbitmq": check_rabbitmq,
    "mongo": check_mongo,
    "nfs": check_nfs,
    "tcp": check_tcp,
}


def run_one(check, timeout, results):
    started = time.monotonic()
    result = {"id": check["id"], "connected": False, "passed": False, "layer": None, "message": ""}
    peer = None
    try:
        peer = Peer(check["host"], int(check["port"]), started + timeout)
        result["connected"] = True
        speak = KINDS.get(check["kind"])
        if speak is None or check.get("port_only"):
            result["message"] = check_tcp(peer, check)
        else:
            result["message"] = speak(peer, check)
        result["passed"] = True
    except CheckFailed as failure:
        result["layer"], result["message"] = failure.layer, failure.message
    except Exception as error:  # a malformed answer must fail this check, not the whole run
        result["layer"], result["message"] = "protocol", "unreadable answer: %s" % error
    finally:
        if peer is not None:
            peer.close()
    result["milliseconds"] = int((time.monotonic() - started) * 1000)
    results.append(result)


def main(plan):
    timeout = float(plan.get("timeout", 4.0))
    results = []
    threads = [threading.Thread(target=run_one, args=(check, timeout, results)) for check in plan["checks"]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout + 1)
    json.dump({"results": results}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(json.loads(sys.stdin.readline()))
