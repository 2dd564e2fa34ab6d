"""An aiosmtpd next hop with LIMITS (RFC 9422) for limits_test.go.

usage: limits_peer.py HOST RCPTMAX MAILMAX

Advertises "LIMITS RCPTMAX=n MAILMAX=m" in its EHLO reply and enforces
both: a RCPT past RCPTMAX in one transaction gets 452 4.5.3 (RFC 9422
§4.2, RFC 5321 §4.5.3.1.10), a MAIL past MAILMAX on one connection gets
421 and the connection is closed (§4.1). Binds HOST on a free port,
prints "READY <port>", then one JSON line per event: {"event": "connect",
"conn": n}, {"event": "data", "conn": n, "txn": k, "rcpt": [...]} for
every message taken, and {"event": "452"|"421", "conn": n} for every
refusal.
"""
import asyncio
import json
import sys

from aiosmtpd.smtp import SMTP


def emit(**ev):
    print(json.dumps(ev), flush=True)


class Handler:
    def __init__(self, rcptmax, mailmax):
        self.limits = "LIMITS RCPTMAX=%d MAILMAX=%d" % (rcptmax, mailmax)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        responses.insert(len(responses) - 1, "250-" + self.limits)
        return responses

    async def handle_DATA(self, server, session, envelope):
        emit(event="data", conn=server.conn, txn=server.txns, rcpt=envelope.rcpt_tos)
        return "250 2.0.0 OK"


class LimitsSMTP(SMTP):
    count = 0  # connections so far, shared by the instances of one server

    def __init__(self, handler, rcptmax, mailmax, **kw):
        super().__init__(handler, **kw)
        LimitsSMTP.count += 1
        self.conn, self.txns = LimitsSMTP.count, 0
        self.rcptmax, self.mailmax = rcptmax, mailmax
        emit(event="connect", conn=self.conn)

    async def smtp_MAIL(self, arg):
        if self.session.host_name and not self.envelope.mail_from and self.txns >= self.mailmax:
            emit(event="421", conn=self.conn)
            await self.push("421 4.7.0 too many transactions in this session (MAILMAX)")
            self._handler_coroutine.cancel()
            self.transport.close()
            return
        had = self.envelope.mail_from
        await super().smtp_MAIL(arg)
        if not had and self.envelope.mail_from:
            self.txns += 1

    async def smtp_RCPT(self, arg):
        if self.envelope.mail_from and len(self.envelope.rcpt_tos) >= self.rcptmax:
            emit(event="452", conn=self.conn)
            await self.push("452 4.5.3 too many recipients (RCPTMAX)")
            return
        await super().smtp_RCPT(arg)


def main():
    host, rcptmax, mailmax = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    handler = Handler(rcptmax, mailmax)
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(
        lambda: LimitsSMTP(handler, rcptmax, mailmax, hostname="limits.example"), host=host, port=0))
    print("READY", server.sockets[0].getsockname()[1], flush=True)
    loop.run_forever()


if __name__ == "__main__":
    main()
