#!/usr/bin/python3
"""Open N SMTP connections at once with Python's smtplib and report the greetings.

Used by test/interop/trusted_test.go; the Go test makes the assertions.

usage: trusted_conns.py HOST PORT N SOURCE_IP

Every connection is made from SOURCE_IP and kept open until all N have
been tried, so that they are concurrent as the server sees them. A
greeting other than 220 makes smtplib raise SMTPConnectError; its code
and text are recorded. Prints one JSON object: {"greeted": k, "refused":
[{"code": c, "text": t}, ...]}.
"""
import json
import smtplib
import sys


def main():
    host, port, n, source = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    open_conns, refused = [], []
    for _ in range(n):
        try:
            s = smtplib.SMTP(host, port, timeout=20, source_address=(source, 0))
            open_conns.append(s)
        except smtplib.SMTPConnectError as e:
            refused.append({"code": e.smtp_code, "text": e.smtp_error.decode("utf-8", "replace")})
    greeted = len(open_conns)
    for s in open_conns:
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            s.close()
    print(json.dumps({"greeted": greeted, "refused": refused}))


if __name__ == "__main__":
    main()
