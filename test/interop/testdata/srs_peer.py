"""A receiving MTA for the SRS interop test (srs_test.go) that evaluates SPF
with pyspf (Debian python3-spf), the way a real destination would.

Binds HOST on a free port, prints "READY <port>", then one JSON line per
received message on stdout: from, rcpt, peer (the client's IP), helo,
data (latin-1) and spf: for the MAIL FROM and for each --check address,
pyspf's check2 result ("pass", "fail", ...) for the client's IP.

DNS comes from the loopback test server given with --dns HOST:PORT
(pyspf's pydns backend, its defaults pointed there), never the internet.

usage: srs_peer.py --host HOST --dns HOST:PORT [--check ADDR ...]
"""
import argparse
import asyncio
import json

import spf
from aiosmtpd.smtp import SMTP


def point_dns(hostport):
    host, port = hostport.rsplit(":", 1)
    try:
        import DNS  # pydns, what pyspf uses when dnspython is absent
        DNS.defaults["server"] = [host]
        DNS.defaults["port"] = int(port)
    except ImportError:
        pass
    try:
        import dns.resolver  # dnspython, pyspf's first choice
        r = dns.resolver.Resolver(configure=False)
        r.nameservers = [host]
        r.port = int(port)
        dns.resolver.default_resolver = r
    except ImportError:
        pass


class Handler:
    def __init__(self, checks):
        self.checks = checks

    async def handle_DATA(self, server, session, envelope):
        ip = session.peer[0]
        helo = session.host_name or ""
        results = {}
        for sender in [envelope.mail_from] + self.checks:
            res, _ = spf.check2(i=ip, s=sender, h=helo, timeout=5)
            results[sender] = res
        msg = {
            "from": envelope.mail_from,
            "rcpt": envelope.rcpt_tos,
            "peer": ip,
            "helo": helo,
            "spf": results,
            "data": envelope.original_content.decode("latin-1"),
        }
        print(json.dumps(msg), flush=True)
        return "250 2.0.0 OK"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", required=True)
    p.add_argument("--dns", required=True)
    p.add_argument("--check", action="append", default=[])
    args = p.parse_args()
    point_dns(args.dns)

    def factory():
        return SMTP(Handler(args.check), hostname="peer.example")

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(factory, host=args.host, port=0))
    print("READY", server.sockets[0].getsockname()[1], flush=True)
    loop.run_forever()


if __name__ == "__main__":
    main()
