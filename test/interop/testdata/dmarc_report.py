#!/usr/bin/env python3
"""Reads DMARC aggregate report mails (RFC 7489 section 7.2.1.1) with
Python's email, gzip and xml.etree modules, independently of smtpkit's Go
code, and prints one JSON line per mail: the Subject, the attachment's
type and file name, and what the XML (appendix C) says."""
import email
import email.policy
import gzip
import json
import sys
import xml.etree.ElementTree as ET


def text(el, path):
    found = el.find(path)
    return None if found is None else (found.text or "")


def report(path):
    with open(path, "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    out = {"subject": str(msg["Subject"]), "from": str(msg["From"]), "parts": []}
    for part in msg.walk():
        out["parts"].append(part.get_content_type())
        if part.get_content_type() != "application/gzip":
            continue
        out["filename"] = part.get_filename()
        root = ET.fromstring(gzip.decompress(part.get_payload(decode=True)))
        out["root"] = root.tag
        out["version"] = text(root, "version")
        md = root.find("report_metadata")
        out["org_name"] = text(md, "org_name")
        out["email"] = text(md, "email")
        out["report_id"] = text(md, "report_id")
        out["begin"] = int(text(md, "date_range/begin"))
        out["end"] = int(text(md, "date_range/end"))
        pp = root.find("policy_published")
        out["policy"] = {k: text(pp, k) for k in ("domain", "adkim", "aspf", "p", "sp", "pct")}
        out["records"] = []
        for rec in root.findall("record"):
            out["records"].append({
                "source_ip": text(rec, "row/source_ip"),
                "count": int(text(rec, "row/count")),
                "disposition": text(rec, "row/policy_evaluated/disposition"),
                "dkim": text(rec, "row/policy_evaluated/dkim"),
                "spf": text(rec, "row/policy_evaluated/spf"),
                "reasons": [text(r, "type") for r in rec.findall("row/policy_evaluated/reason")],
                "header_from": text(rec, "identifiers/header_from"),
                "auth_dkim": [[text(d, "domain"), text(d, "result")] for d in rec.findall("auth_results/dkim")],
                "auth_spf": [[text(s, "domain"), text(s, "scope"), text(s, "result")] for s in rec.findall("auth_results/spf")],
            })
    return out


for p in sys.argv[1:]:
    print(json.dumps(report(p)))
