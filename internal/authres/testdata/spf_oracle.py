"""The SPF oracle for authres's table (spf_test.go): pyspf (Debian
python3-spf) evaluates each case against the loopback test DNS server.

usage: spf_oracle.py HOST:PORT < cases.json

cases.json is a list of {"ip", "sender", "helo"}; prints a JSON list of
pyspf's check2 results, in order. DNS goes to HOST:PORT only (pyspf's
pydns backend, or dnspython when that is what pyspf uses).
"""
import json
import sys

import spf


def point_dns(hostport):
    host, port = hostport.rsplit(":", 1)
    try:
        import DNS  # pydns
        DNS.defaults["server"] = [host]
        DNS.defaults["port"] = int(port)
    except ImportError:
        pass
    try:
        import dns.resolver  # dnspython
        r = dns.resolver.Resolver(configure=False)
        r.nameservers = [host]
        r.port = int(port)
        dns.resolver.default_resolver = r
    except ImportError:
        pass


def main():
    point_dns(sys.argv[1])
    out = []
    for c in json.load(sys.stdin):
        res, _ = spf.check2(i=c["ip"], s=c["sender"], h=c["helo"], timeout=5)
        out.append(res)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
