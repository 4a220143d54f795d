"""A real SMTP server for the Mail tests: aiosmtpd on 127.0.0.1, started by TestSMTPServer.swift.

Every received message is written to DIRECTORY as message-N.eml (the bytes after DATA) and
message-N.json (the envelope and what Python's email parser reads from the message). Every
command line the server reads is logged to DIRECTORY/transcript.log. With TLS, a CA made by
trustme signs the server certificate (127.0.0.1 and localhost); the CA is written to
DIRECTORY/ca.pem for the client to trust. DIRECTORY/ready appears once the server listens.

Senders whose local part starts with "reject" are refused with 553, recipients with 550;
"stall" makes the server sleep before answering RCPT (a server that stops answering); a
message for "refuse-message@..." is refused after DATA with 554. The process exits by
itself when the test process that started it goes away.
"""

import argparse
import asyncio
import email
import email.policy
import json
import logging
import os
import signal
import ssl
import sys
import threading
import time

try:
    import trustme
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP, AuthResult
except ImportError as error:
    sys.exit(f"smtp_test_server.py: {error}; install the PyPI packages in scripts/pip-packages.txt")


class Handler:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if address.split("@")[0].startswith("reject"):
            return f"553 5.7.1 <{address}>: sender refused"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0]
        if local.startswith("reject"):
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        if local.startswith("stall"):
            await asyncio.sleep(60)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if any(recipient.startswith("refuse-message@") for recipient in envelope.rcpt_tos):
            return "554 5.6.0 message refused"
        self.count += 1
        content = envelope.original_content or envelope.content
        message = email.message_from_bytes(content, policy=email.policy.default)
        body = message.get_body(("plain",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "header_names": [name for name, _ in message.items()],
            "from": str(message["From"]),
            "to": str(message["To"]),
            "subject": str(message["Subject"]),
            "date": str(message["Date"]),
            "message_id": str(message["Message-ID"]),
            "content_type": message.get_content_type(),
            "charset": message.get_content_charset(),
            "transfer_encoding": str(message["Content-Transfer-Encoding"]),
            # The parser keeps the wire's CRLF line ends; a reader sees lines.
            "body": body.get_content().replace("\r\n", "\n") if body is not None else None,
            "defects": [type(defect).__name__ for defect in message.defects],
            "authenticated": bool(session.authenticated),
            "tls": server.transport.get_extra_info("ssl_object") is not None,
        }
        base = os.path.join(self.directory, f"message-{self.count}")
        write_atomically(base + ".eml", content)
        write_atomically(base + ".json", json.dumps(record, ensure_ascii=False).encode())
        return "250 2.0.0 OK queued as test-" + str(self.count)


def write_atomically(path, data):
    with open(path + ".part", "wb") as file:
        file.write(data)
    os.rename(path + ".part", path)


class SMTPWithoutEHLO(SMTP):
    """A server from before ESMTP: EHLO is an unknown command."""

    async def smtp_EHLO(self, hostname):
        await self.push("502 5.5.1 EHLO not implemented")


class TestController(Controller):
    def __init__(self, *args, without_ehlo=False, **kwargs):
        self.without_ehlo = without_ehlo
        super().__init__(*args, **kwargs)

    def factory(self):
        server_class = SMTPWithoutEHLO if self.without_ehlo else SMTP
        return server_class(self.handler, **self.SMTP_kwargs)


def make_authenticator(user, password, directory):
    def authenticate(server, session, envelope, mechanism, auth_data):
        success = auth_data.login == user.encode() and auth_data.password == password.encode()
        with open(os.path.join(directory, "auth.log"), "a") as log:
            log.write(f"{mechanism} {'accepted' if success else 'refused'}\n")
        return AuthResult(success=success, handled=False)

    return authenticate


def exit_with_parent():
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--directory", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--security", choices=["none", "starttls", "tls"], default="none")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--auth-without-tls", action="store_true")
    parser.add_argument("--without-ehlo", action="store_true")
    parser.add_argument("--exclude-mechanism", action="append", default=[])
    arguments = parser.parse_args()
    directory = arguments.directory
    # Blocked here, so that every thread started below leaves them to sigwait at the end.
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM, signal.SIGINT])

    transcript = logging.FileHandler(os.path.join(directory, "transcript.log"))
    transcript.setFormatter(logging.Formatter("%(message)s"))
    mail_log = logging.getLogger("mail.log")
    mail_log.addHandler(transcript)
    mail_log.setLevel(logging.INFO)

    options = {"hostname": "127.0.0.1", "port": arguments.port}
    smtp_options = {"auth_require_tls": not arguments.auth_without_tls, "auth_exclude_mechanism": arguments.exclude_mechanism}
    if arguments.user is not None:
        smtp_options["authenticator"] = make_authenticator(arguments.user, arguments.password, directory)
    if arguments.security != "none":
        authority = trustme.CA()
        authority.cert_pem.write_to_path(os.path.join(directory, "ca.pem"))
        certificate = authority.issue_cert("127.0.0.1", "localhost")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        certificate.configure_cert(context)
        if arguments.security == "starttls":
            smtp_options["tls_context"] = context
        else:
            options["ssl_context"] = context
            # aiosmtpd counts only STARTTLS as TLS for AUTH; here every connection is TLS.
            smtp_options["auth_require_tls"] = False

    controller = TestController(Handler(directory), without_ehlo=arguments.without_ehlo, **options, **smtp_options)
    controller.start()
    threading.Thread(target=exit_with_parent, daemon=True).start()
    write_atomically(os.path.join(directory, "ready"), b"")
    signal.sigwait([signal.SIGTERM, signal.SIGINT])
    controller.stop()


if __name__ == "__main__":
    main()
