"""An HTTPS front for a plain HTTP server, as nginx would be in production: ClientTests uses it
to check that flotctl trusts a private certificate authority only when given its file.

Usage: tls_relay.py PORT UPSTREAM_URL CERTIFICATE_PEM KEY_PEM
"""
import http.server
import ssl
import sys
import urllib.error
import urllib.request

port, upstream, certificate, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
HOP_BY_HOP = {"connection", "transfer-encoding", "content-length", "host"}


class Relay(http.server.BaseHTTPRequestHandler):
    def relay(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {name: value for name, value in self.headers.items() if name.lower() not in HOP_BY_HOP}
        request = urllib.request.Request(upstream + self.path, data=body, method=self.command, headers=headers)
        try:
            answer = urllib.request.urlopen(request)
        except urllib.error.HTTPError as error:
            answer = error
        data = answer.read()
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = relay

    def log_message(self, format, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Relay)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(certificate, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
