"""A real SMTP peer for internal/client's tests: aiosmtpd with STARTTLS
(required before MAIL and AUTH), AUTH PLAIN/LOGIN for user/secret, and
SMTPUTF8. Binds HOST (default 127.0.0.1) on a free port, prints
"READY <port>", then one JSON line per received message on stdout.

With --requiretls the peer also speaks REQUIRETLS (RFC 8689), which
aiosmtpd does not implement: the keyword is added to the EHLO reply inside
TLS only, and the MAIL parameter is accepted (it shows in "options").

usage: aiosmtpd_peer.py CERTFILE KEYFILE [HOST] [--requiretls]
"""
import asyncio
import json
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Handler:
    def __init__(self, requiretls=False):
        self.requiretls = requiretls

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.requiretls and session.ssl is not None:
            responses.insert(-1, "250-REQUIRETLS")
        return responses

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


class RequireTLSSMTP(SMTP):
    """aiosmtpd's SMTP with the REQUIRETLS MAIL parameter accepted inside
    TLS (refused 530 5.7.10 outside, as RFC 8689 wants)."""

    def _getparams(self, params):
        result = super()._getparams(params)
        if result is not None and "REQUIRETLS" in result:
            if result.pop("REQUIRETLS") is not True or self._tls_protocol is None:
                return None  # aiosmtpd answers 501 syntax error
        return result


def main():
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(sys.argv[1], sys.argv[2])
    rest = sys.argv[3:]
    requiretls = "--requiretls" in rest
    hosts = [a for a in rest if not a.startswith("--")]
    host = hosts[0] if hosts else "127.0.0.1"
    cls = RequireTLSSMTP if requiretls else SMTP

    def factory():
        return cls(Handler(requiretls), hostname="mx.test", tls_context=ctx,
                   require_starttls=True, enable_SMTPUTF8=True,
                   authenticator=authenticate, auth_require_tls=True)

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(factory, host=host, port=0))
    print("READY", server.sockets[0].getsockname()[1], flush=True)
    loop.run_forever()


if __name__ == "__main__":
    main()
