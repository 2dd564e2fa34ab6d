"""An aiosmtpd next hop for the outbound interop tests (outbound_test.go).

Binds 127.0.0.1 on a free port, prints "READY <port>", then one JSON line
per received message on stdout: from, rcpt, tls, auth (the login or null)
and data (the message as received, latin-1).

usage: outbound_aiosmtpd.py [--tls CERT KEY] [--require-tls]
                            [--auth USER PASSWORD]

--tls offers STARTTLS with that certificate; --require-tls refuses every
command but EHLO/HELO/NOOP/QUIT/STARTTLS before TLS; --auth requires AUTH
(PLAIN or LOGIN, only after TLS) with these credentials before MAIL.
"""
import argparse
import asyncio
import json
import ssl

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Handler:
    async def handle_DATA(self, server, session, envelope):
        login = session.login_data
        if isinstance(login, bytes):
            login = login.decode("utf-8", "replace")
        msg = {
            "from": envelope.mail_from,
            "rcpt": envelope.rcpt_tos,
            "tls": session.ssl is not None,
            "auth": login if session.authenticated else None,
            "data": envelope.original_content.decode("latin-1"),
        }
        print(json.dumps(msg), flush=True)
        return "250 2.0.0 OK"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--require-tls", action="store_true")
    p.add_argument("--auth", nargs=2, metavar=("USER", "PASSWORD"))
    args = p.parse_args()

    ctx = None
    if args.tls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.tls[0], args.tls[1])

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (args.auth is not None and isinstance(auth_data, LoginPassword)
              and auth_data.login == args.auth[0].encode()
              and auth_data.password == args.auth[1].encode())
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    def factory():
        kw = {}
        if args.auth:
            kw = dict(authenticator=authenticate, auth_required=True,
                      auth_require_tls=True)
        return SMTP(Handler(), hostname="peer.example", tls_context=ctx,
                    require_starttls=args.require_tls, **kw)

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(factory, host="127.0.0.1", port=0))
    print("READY", server.sockets[0].getsockname()[1], flush=True)
    loop.run_forever()


if __name__ == "__main__":
    main()
