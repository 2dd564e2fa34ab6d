"""Sign messages with dkimpy (Debian python3-dkim) for authres's DKIM tests
(dkim_test.go).

usage: dkim_sign.py < request.json

request.json: {"message": latin-1 text, "signers": [{"d", "s", "alg"
("rsa-sha256" | "ed25519-sha256"), "key" (RSA: PEM; Ed25519: base64 of
the 32-byte seed, as dknewkey writes it), "canon" ("relaxed/relaxed"...)}]}.
Prints the message with every signature prepended (the last signer's on
top), latin-1. Nothing is looked up: signing needs no DNS.
"""
import json
import sys

import dkim


def main():
    req = json.load(sys.stdin)
    msg = req["message"].encode("latin-1")
    for s in req["signers"]:
        hc, bc = s.get("canon", "relaxed/relaxed").split("/")
        sig = dkim.sign(msg, s["s"].encode(), s["d"].encode(), s["key"].encode(),
                        signature_algorithm=s["alg"].encode(),
                        canonicalize=(hc.encode(), bc.encode()),
                        include_headers=[b"from", b"to", b"subject", b"date"])
        msg = sig + msg
    sys.stdout.write(msg.decode("latin-1"))


if __name__ == "__main__":
    main()
