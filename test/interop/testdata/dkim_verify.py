"""Verify the DKIM signatures of messages with dkimpy (Debian python3-dkim).

usage: dkim_verify.py ZONE.json MSG...

ZONE.json maps record names ("s._domainkey.example.com") to TXT data; it
stands in for DNS through dkimpy's dnsfunc hook, so nothing is looked up.
Prints one JSON object per message: {"file", "sigs": [{"d", "s", "a",
"ok"}]}, every DKIM-Signature verified in turn (idx).
"""
import json
import sys

import dkim


def main():
    with open(sys.argv[1]) as f:
        zone = {k.lower().rstrip("."): v for k, v in json.load(f).items()}

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        rec = zone.get(name.lower().rstrip("."))
        return rec.encode() if rec is not None else None

    for path in sys.argv[2:]:
        with open(path, "rb") as f:
            msg = f.read()
        headers, _ = dkim.rfc822_parse(msg)
        sigs = []
        n = sum(1 for k, _ in headers if k.lower() == b"dkim-signature")
        for i in range(n):
            d = dkim.DKIM(msg)
            try:
                ok = bool(d.verify(idx=i, dnsfunc=dnsfunc))
            except dkim.DKIMException as e:
                ok = False
                print("dkimpy: %s: signature %d: %s" % (path, i, e), file=sys.stderr)
            tags = dkim.util.parse_tag_value(
                [v for k, v in headers if k.lower() == b"dkim-signature"][i].replace(b"\r\n", b""))
            sigs.append({"d": tags.get(b"d", b"").decode(), "s": tags.get(b"s", b"").decode(),
                         "a": tags.get(b"a", b"").decode(), "ok": ok})
        print(json.dumps({"file": path, "sigs": sigs}))


if __name__ == "__main__":
    main()
