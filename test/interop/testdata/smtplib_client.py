#!/usr/bin/python3
"""Drive smtpkit with Python's smtplib and print what happened as JSON.

Used by test/interop/python_test.go; the Go test makes the assertions.

usage: smtplib_client.py MODE HOST PORT CAFILE [--from ADDR] [--to ADDR]... [--msg FILE]

MODE:
  plain       EHLO, then MAIL/RCPT/DATA of --msg to every --to, in plaintext
  starttls    EHLO, STARTTLS, EHLO, then the same transaction over TLS
  submission  MAIL before STARTTLS, STARTTLS, EHLO, MAIL again (no AUTH)
  smtps       implicit TLS (SMTP_SSL): EHLO and NOOP
  submit      STARTTLS (or implicit TLS with --implicit), AUTH with --user and
              --password (smtplib picks PLAIN or LOGIN), then the transaction

The certificate chain is verified against CAFILE; the host name is not
(we connect to 127.0.0.1), so the peer certificate's subjectAltName is
reported for the Go side to check.
"""
import argparse
import json
import smtplib
import ssl
import sys


def reply(pair):
    code, text = pair
    return {"code": code, "text": text.decode("utf-8", "replace")}


def tls_info(sock):
    cert = sock.getpeercert()
    return {
        "version": sock.version(),
        "san": [v for (k, v) in cert.get("subjectAltName", ()) if k == "DNS"],
    }


def transaction(s, args, out):
    with open(args.msg, "rb") as f:
        msg = f.read()
    try:
        refused = s.sendmail(args.sender, args.to, msg)
        out["refused"] = {k: reply(v) for k, v in refused.items()}
        out["sent"] = True
    except smtplib.SMTPRecipientsRefused as e:
        out["refused"] = {k: reply(v) for k, v in e.recipients.items()}
        out["sent"] = False
    except smtplib.SMTPResponseException as e:
        out["error"] = {"code": e.smtp_code, "text": e.smtp_error.decode("utf-8", "replace")}
        out["sent"] = False


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["plain", "starttls", "submission", "smtps", "submit"])
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("cafile")
    p.add_argument("--from", dest="sender", default="a@b.example")
    p.add_argument("--to", action="append", default=[])
    p.add_argument("--msg")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--implicit", action="store_true")
    args = p.parse_args()

    ctx = ssl.create_default_context(cafile=args.cafile)
    ctx.check_hostname = False  # chain is verified; the name is checked in Go
    ctx.verify_mode = ssl.CERT_REQUIRED

    out = {"mode": args.mode}
    if args.mode == "smtps" or args.implicit:
        s = smtplib.SMTP_SSL(args.host, args.port, context=ctx, timeout=10)
        out["tls"] = tls_info(s.sock)
    else:
        s = smtplib.SMTP(args.host, args.port, timeout=10)
    out["ehlo"] = reply(s.ehlo("client.b.example"))
    out["features"] = sorted(s.esmtp_features)

    if args.mode == "submission":
        out["mail_plain"] = reply(s.mail(args.sender))
    if args.mode in ("starttls", "submission") or (args.mode == "submit" and not args.implicit):
        out["starttls"] = reply(s.starttls(context=ctx))
        out["tls"] = tls_info(s.sock)
        out["ehlo_tls"] = reply(s.ehlo("client.b.example"))
        out["features_tls"] = sorted(s.esmtp_features)
    if args.mode == "submission":
        out["mail_tls"] = reply(s.mail(args.sender))
        out["rset"] = reply(s.rset())
    if args.mode == "submit":
        try:
            out["auth"] = reply(s.login(args.user, args.password))
        except smtplib.SMTPAuthenticationError as e:
            out["auth"] = {"code": e.smtp_code, "text": e.smtp_error.decode("utf-8", "replace")}
        if out["auth"]["code"] == 235:
            transaction(s, args, out)
    if args.mode in ("plain", "starttls"):
        transaction(s, args, out)
    out["noop"] = reply(s.noop())
    out["quit"] = reply(s.quit())
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
