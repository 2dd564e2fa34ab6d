"""Sign messages with dkimpy (Debian python3-dkim) and send them with
smtplib to an mx listener, as an outside sender's server would.

usage: dkim_sign_send.py HOST PORT < JOBS.json

JOBS.json is a list of {"source": IP to connect from, "helo", "from"
(MAIL FROM), "rcpt", "msg" (the message, CRLF), "sign": [{"domain",
"selector", "alg" ("rsa-sha256" | "ed25519-sha256"), "key" (PEM for RSA,
base64 seed for Ed25519)}], "tamper": text appended to the body after
signing, or ""}. Prints one JSON object per job: {"code", "reply"}, the
reply to the end of DATA (or to whatever refused the transaction).
"""
import json
import smtplib
import sys

import dkim


def sign(msg, keys):
    for k in keys:
        sig = dkim.sign(msg, k["selector"].encode(), k["domain"].encode(), k["key"].encode(),
                        signature_algorithm=k["alg"].encode(),
                        include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
        msg = sig + msg
    return msg


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    for job in json.load(sys.stdin):
        msg = sign(job["msg"].encode(), job["sign"] or []) + job["tamper"].encode()
        try:
            with smtplib.SMTP(host, port, local_hostname=job["helo"], source_address=(job["source"], 0), timeout=30) as s:
                s.ehlo()
                s.mail(job["from"])
                code, reply = s.rcpt(job["rcpt"])
                if code == 250:
                    code, reply = s.data(msg)
        except smtplib.SMTPResponseException as e:
            code, reply = e.smtp_code, e.smtp_error
        print(json.dumps({"code": code, "reply": reply.decode(errors="replace")}))


if __name__ == "__main__":
    main()
