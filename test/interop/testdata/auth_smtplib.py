#!/usr/bin/python3
"""Drive smtpkit's AUTH with Python's smtplib and print what happened as JSON.

Used by test/interop/auth_test.go; the Go test makes the assertions.

usage: auth_smtplib.py MODE HOST PORT CAFILE --user U --password P
                       [--mech PLAIN|LOGIN] [--no-initial] [--implicit]
                       [--from ADDR] [--to ADDR]... [--msg FILE]

MODE:
  pretls  EHLO in plaintext, then smtplib's login() (which must refuse:
          AUTH is not advertised before TLS), then a raw "AUTH PLAIN <b64>"
          sent with docmd(), then STARTTLS and EHLO to list the mechanisms.
  submit  STARTTLS (or implicit TLS with --implicit), AUTH with login() or,
          with --mech, smtp.auth(MECH, ...) explicitly (--no-initial sends
          no initial response), then the transaction when AUTH succeeded.

The chain is verified against CAFILE and the name against 127.0.0.1, which
the self-signed certificate lists as an IP address.
"""
import argparse
import base64
import json
import smtplib
import ssl
import sys


def reply(pair):
    code, text = pair
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return {"code": code, "text": text}


def error_reply(e):
    return reply((e.smtp_code, e.smtp_error))


def authenticate(s, args):
    """AUTH with login() or the explicit mechanism; returns the reply."""
    try:
        if not args.mech:
            return reply(s.login(args.user, args.password))
        s.user, s.password = args.user, args.password
        handler = {"PLAIN": s.auth_plain, "LOGIN": s.auth_login}[args.mech]
        return reply(s.auth(args.mech, handler, initial_response_ok=not args.no_initial))
    except smtplib.SMTPAuthenticationError as e:
        return error_reply(e)


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
        out["error"] = error_reply(e)
        out["sent"] = False


def pretls(s, args, ctx, out):
    out["ehlo"] = reply(s.ehlo("client.b.example"))
    out["auth_advertised"] = s.has_extn("auth")
    try:
        s.login(args.user, args.password)
        out["login_error"] = None
    except smtplib.SMTPNotSupportedError as e:
        out["login_error"] = type(e).__name__
    except smtplib.SMTPException as e:
        out["login_error"] = type(e).__name__ + ": " + str(e)
    blob = ("\0" + args.user + "\0" + args.password).encode()
    out["raw_auth"] = reply(s.docmd("AUTH", "PLAIN " + base64.b64encode(blob).decode()))
    out["starttls"] = reply(s.starttls(context=ctx))
    out["ehlo_tls"] = reply(s.ehlo("client.b.example"))
    out["auth_tls"] = s.esmtp_features.get("auth", "")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["pretls", "submit"])
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("cafile")
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--mech", choices=["PLAIN", "LOGIN"])
    p.add_argument("--no-initial", action="store_true")
    p.add_argument("--implicit", action="store_true")
    p.add_argument("--from", dest="sender")
    p.add_argument("--to", action="append", default=[])
    p.add_argument("--msg")
    args = p.parse_args()

    ctx = ssl.create_default_context(cafile=args.cafile)

    out = {"mode": args.mode}
    if args.implicit:
        s = smtplib.SMTP_SSL(args.host, args.port, context=ctx, timeout=20)
        out["tls_version"] = s.sock.version()
    else:
        s = smtplib.SMTP(args.host, args.port, timeout=20)
    if args.mode == "pretls":
        pretls(s, args, ctx, out)
    else:
        if not args.implicit:
            out["starttls"] = reply(s.starttls(context=ctx))
            out["tls_version"] = s.sock.version()
        out["ehlo_tls"] = reply(s.ehlo("client.b.example"))
        out["auth_tls"] = s.esmtp_features.get("auth", "")
        out["auth"] = authenticate(s, args)
        if out["auth"]["code"] == 235 and args.msg:
            transaction(s, args, out)
    try:
        out["quit"] = reply(s.quit())
    except smtplib.SMTPServerDisconnected:
        out["quit"] = None
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
