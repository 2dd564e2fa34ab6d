"""Peers and checks for dsn_test.go (RFC 3461).

usage: dsn_peer.py serve HOST [--dsn]
    An aiosmtpd next hop on a free port; prints "READY <port>", then one
    JSON line per message: from, rcpt, mail_options, rcpt_options (the raw
    MAIL and RCPT parameters). With --dsn it advertises DSN and takes the
    DSN parameters (aiosmtpd itself refuses every RCPT parameter).
usage: dsn_peer.py send HOST PORT FROM RCPT
    Python smtplib as the client: MAIL with RET=HDRS ENVID=, RCPT with
    NOTIFY=SUCCESS ORCPT=; prints the EHLO features as JSON.
usage: dsn_peer.py parse FILE
    Python's email module reads a DSN: one JSON line with the Subject, the
    report-type and every field block of the message/delivery-status part.
"""
import asyncio
import email
import email.policy
import json
import smtplib
import sys

from aiosmtpd.smtp import SMTP


class Handler:
    def __init__(self, dsn):
        self.dsn = dsn

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.dsn:
            responses.insert(len(responses) - 1, "250-DSN")
        return responses

    async def handle_DATA(self, server, session, envelope):
        print(json.dumps({"from": envelope.mail_from, "rcpt": envelope.rcpt_tos,
                          "mail_options": envelope.mail_options,
                          "rcpt_options": envelope.rcpt_options}), flush=True)
        return "250 2.0.0 OK"


class DSNSMTP(SMTP):
    """Takes RET, ENVID, NOTIFY and ORCPT: they stay in mail_options and
    rcpt_options as sent, for the test to read."""

    def _getparams(self, params):
        got = super()._getparams(params)
        if got is None:
            return None
        for k in ("RET", "ENVID", "NOTIFY", "ORCPT"):
            got.pop(k, None)
        return got


def serve(host, dsn):
    loop = asyncio.new_event_loop()
    cls = DSNSMTP if dsn else SMTP
    server = loop.run_until_complete(loop.create_server(
        lambda: cls(Handler(dsn), hostname="peer.example"), host=host, port=0))
    print("READY", server.sockets[0].getsockname()[1], flush=True)
    loop.run_forever()


def send(host, port, sender, rcpt):
    with smtplib.SMTP(host, int(port), local_hostname="client.example") as s:
        s.ehlo()
        feats = sorted(s.esmtp_features)
        msg = ("From: <%s>\r\nTo: <%s>\r\nSubject: dsn interop\r\nMessage-ID: <dsn-interop@client.example>\r\n\r\nhello\r\n" % (sender, rcpt))
        s.sendmail(sender, [rcpt], msg, mail_options=["RET=HDRS", "ENVID=interop+2B1"],
                   rcpt_options=["NOTIFY=SUCCESS", "ORCPT=rfc822;orig+2Bbox@client.example"])
    print(json.dumps(feats))


def parse(path):
    with open(path, "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    out = {"subject": str(msg["Subject"]), "report_type": msg.get_param("report-type"), "blocks": [], "parts": []}
    for p in msg.walk():
        out["parts"].append(p.get_content_type())
        if p.get_content_type() == "message/delivery-status":
            # email parses the status part as a list of header blocks.
            for block in p.get_payload():
                out["blocks"].append({k: str(v) for k, v in block.items()})
    print(json.dumps(out))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "serve":
        serve(sys.argv[2], "--dsn" in sys.argv[3:])
    elif cmd == "send":
        send(*sys.argv[2:6])
    else:
        parse(sys.argv[2])
