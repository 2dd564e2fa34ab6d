"""REQUIRETLS (RFC 8689) against smtpkit with Python's smtplib: MAIL FROM
with the REQUIRETLS parameter in plaintext (must be refused), then after
STARTTLS (must be accepted) and one message to RCPT. Prints one JSON
object: the EHLO keywords before and after TLS and every reply.

usage: requiretls_smtplib.py HOST PORT CAFILE SERVERNAME RCPT MESSAGEFILE
"""
import json
import smtplib
import ssl
import sys


def main():
    host, port, cafile, servername, rcpt, msgfile = sys.argv[1:7]
    out = {}
    s = smtplib.SMTP(host, int(port), local_hostname="client.b.example", timeout=20)
    s.ehlo()
    out["ehlo_plain"] = sorted(s.esmtp_features)
    # smtplib adds the option as given: "MAIL FROM:<a@b.example> REQUIRETLS".
    code, text = s.mail("a@b.example", ["REQUIRETLS"])
    out["mail_plain"] = [code, text.decode()]
    s.rset()
    ctx = ssl.create_default_context(cafile=cafile)
    s._host = servername  # the name to verify and send as SNI
    s.starttls(context=ctx)
    s.ehlo()
    out["ehlo_tls"] = sorted(s.esmtp_features)
    code, text = s.mail("a@b.example", ["REQUIRETLS"])
    out["mail_tls"] = [code, text.decode()]
    code, text = s.rcpt(rcpt)
    out["rcpt"] = [code, text.decode()]
    with open(msgfile, "rb") as f:
        code, text = s.data(f.read())
    out["data"] = [code, text.decode()]
    s.quit()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
