"""A real SMTP peer for internal/client's tests: aiosmtpd with STARTTLS
(required before MAIL and AUTH), AUTH PLAIN/LOGIN for user/secret, and
SMTPUTF8. Binds 127.0.0.1 on a free port, prints "READY <port>", then one
JSON line per received message on stdout.

usage: aiosmtpd_peer.py CERTFILE KEYFILE
"""
import asyncio
import json
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Handler:
    async def handle_DATA(self, server, session, envelope):
        msg = {
            "from": envelope.mail_from,
            "rcpt": envelope.rcpt_tos,
            "options": envelope.mail_options,
            "tls": session.ssl is not None,
            "data": envelope.original_content.decode("latin-1"),
        }
        print(json.dumps(msg), flush=True)
        return "250 2.0.0 OK"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login == b"user" and auth_data.password == b"secret")
    # handled=False: aiosmtpd then sends its own 535 on failure.
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


def main():
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(sys.argv[1], sys.argv[2])

    def factory():
        return SMTP(Handler(), hostname="mx.test", tls_context=ctx,
                    require_starttls=True, enable_SMTPUTF8=True,
                    authenticator=authenticate, auth_require_tls=True)

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(factory, host="127.0.0.1", port=0))
    print("READY", server.sockets[0].getsockname()[1], flush=True)
    loop.run_forever()


if __name__ == "__main__":
    main()
