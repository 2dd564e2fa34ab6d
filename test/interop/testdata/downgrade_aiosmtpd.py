"""An aiosmtpd next hop without 8BITMIME for downgrade_test.go.

Binds HOST on a free port, prints "READY <port>", then one JSON line per
received message: from, rcpt, mail_options (MAIL's parameters), data (as
received, latin-1) and what Python's email module decodes from it: the
Subject and From, and every leaf part (walking into multipart and
message/rfc822) with its content type, transfer encoding and decoded
payload (base64 of the octets).

usage: downgrade_aiosmtpd.py HOST [--keep-8bitmime]
       downgrade_aiosmtpd.py --decode FILE   (one JSON line for a stored message)
"""
import asyncio
import base64
import email
import email.policy
import json
import sys

from aiosmtpd.smtp import SMTP


class Handler:
    def __init__(self, keep):
        self.keep = keep

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return [r for r in responses if self.keep or "8BITMIME" not in r]

    async def handle_DATA(self, server, session, envelope):
        out = decode(envelope.original_content)
        out.update({"from": envelope.mail_from, "rcpt": envelope.rcpt_tos,
                    "mail_options": envelope.mail_options})
        print(json.dumps(out), flush=True)
        return "250 2.0.0 OK"


def decode(raw):
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    parts = []
    for p in msg.walk():
        if p.is_multipart():
            continue
        parts.append({
            "type": p.get_content_type(),
            "cte": str(p.get("Content-Transfer-Encoding", "")),
            "payload": base64.b64encode(p.get_payload(decode=True) or b"").decode(),
            "filename": p.get_filename(),
        })
    return {"data": raw.decode("latin-1"), "subject": str(msg["Subject"]),
            "header_from": str(msg["From"]), "parts": parts}


def main():
    if sys.argv[1] == "--decode":
        with open(sys.argv[2], "rb") as f:
            print(json.dumps(decode(f.read())))
        return
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(
        lambda: SMTP(Handler("--keep-8bitmime" in sys.argv[2:]), hostname="no8bit.example"), host=sys.argv[1], port=0))
    print("READY", server.sockets[0].getsockname()[1], flush=True)
    loop.run_forever()


if __name__ == "__main__":
    main()
