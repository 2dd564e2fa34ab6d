"""The next hop of cluster_test.go: an aiosmtpd server whose answer after
the data depends on the recipient, as the test asks for it.

usage: cluster_sink.py HOST
    Listens on a free port of HOST and prints "READY <port>". Then each
    recipient's fate is chosen by its local part's prefix:
      ok-*    accepted (250)
      tmp-*   451 4.3.0 at RCPT, every time (deferred)
      perm-*  550 5.1.1 at RCPT (bounced)
      slow-*  accepted after a pause of SLOW seconds before the 250 to the
              data ({"slow_start": Message-ID} is printed when it
              begins): a delivery that is in flight when the test kills
              the node making it
    A line "defer on" / "defer off" on stdin makes every RCPT 451 until it
    is turned off (the sink deferring for a while). Each message accepted
    is one JSON line: {"msgid": Message-ID, "rcpt": [..], "peer": ip}.
"""
import asyncio
import json
import sys

from aiosmtpd.smtp import SMTP

SLOW = 3.0


class Handler:
    def __init__(self):
        self.defer = False

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if self.defer or local.startswith("tmp-"):
            return "451 4.3.0 try again later"
        if local.startswith("perm-"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        msgid = ""
        for line in envelope.content.split(b"\r\n"):
            if not line:
                break
            if line.lower().startswith(b"message-id:"):
                msgid = line.split(b":", 1)[1].strip().decode("ascii", "replace")
        if any(r.split("@", 1)[0].lower().startswith("slow-") for r in envelope.rcpt_tos):
            print(json.dumps({"slow_start": msgid}), flush=True)
            await asyncio.sleep(SLOW)
        # Logged before the 250 goes out: a message the sink logged may
        # still be unacknowledged when the node dies (a duplicate then).
        print(json.dumps({"msgid": msgid, "rcpt": envelope.rcpt_tos, "peer": session.peer[0]}), flush=True)
        return "250 2.0.0 OK"


def main(host):
    loop = asyncio.new_event_loop()
    handler = Handler()
    server = loop.run_until_complete(loop.create_server(
        lambda: SMTP(handler, hostname="sink.example"), host=host, port=0))
    print("READY", server.sockets[0].getsockname()[1], flush=True)

    def on_stdin():
        line = sys.stdin.readline()
        if not line:
            loop.remove_reader(sys.stdin)
            return
        cmd = line.strip()
        if cmd == "defer on":
            handler.defer = True
        elif cmd == "defer off":
            handler.defer = False
        print(json.dumps({"ack": cmd}), flush=True)

    loop.add_reader(sys.stdin, on_stdin)
    loop.run_forever()


if __name__ == "__main__":
    main(sys.argv[1])
