#!/usr/bin/python3
"""An aiosmtpd server for `smtpkit probe` interop tests (probe_test.go).

usage: probe_aiosmtpd.py MODE CERTFILE KEYFILE

MODE:
  starttls  STARTTLS offered; AUTH PLAIN/LOGIN only after TLS
  plain     no TLS at all; AUTH PLAIN/LOGIN offered in plaintext
  implicit  TLS from the first byte (like port 465); AUTH after TLS

Binds 127.0.0.1 on a free port and prints "READY <port>". Nobody logs in:
the authenticator refuses everything (the probe sends no credentials).
"""
import asyncio
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult


class Handler:
    async def handle_DATA(self, server, session, envelope):
        return "250 2.0.0 OK"


def refuse(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=False, handled=False)


def main():
    mode, cert, key = sys.argv[1], sys.argv[2], sys.argv[3]
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)

    def factory():
        if mode == "starttls":
            return SMTP(Handler(), hostname="aiosmtpd.test", tls_context=ctx,
                        authenticator=refuse, auth_require_tls=True)
        if mode == "plain":
            return SMTP(Handler(), hostname="aiosmtpd.test",
                        authenticator=refuse, auth_require_tls=False)
        # implicit: the socket is TLS already, but aiosmtpd only counts
        # STARTTLS as TLS for auth_require_tls, so AUTH must be allowed here.
        return SMTP(Handler(), hostname="aiosmtpd.test",
                    authenticator=refuse, auth_require_tls=False)

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(
        factory, host="127.0.0.1", port=0,
        ssl=ctx if mode == "implicit" else None))
    print("READY", server.sockets[0].getsockname()[1], flush=True)
    loop.run_forever()


if __name__ == "__main__":
    main()
