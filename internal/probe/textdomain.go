package probe

import (
	"fmt"
	"strings"
)

// domain writes a DOMAIN's table: its DNS records and one verdict per
// next hop.
func (t textWriter) domain(d Domain) {
	deliverable := 0
	for _, h := range d.Hops {
		if h.Deliverable {
			deliverable++
		}
	}
	status := t.paint(ansiGreen, fmt.Sprintf("%d of %d next hop(s) deliverable", deliverable, len(d.Hops)))
	if deliverable == 0 {
		status = t.paint(ansiRed, fmt.Sprintf("no next hop deliverable (%d)", len(d.Hops)))
	}
	fmt.Fprintf(t.w, "%s  %s\n", t.paint(ansiBold, "domain "+d.Domain), status)
	if d.Route != "" {
		t.row("route", "static route "+d.Route+" (no MX lookup)")
	}
	if mx := d.MX; mx != nil {
		t.row("MX", mx.Records...)
		if mx.Error != "" {
			t.row("", t.paint(ansiRed, mx.Error))
		} else {
			t.row("MX DNSSEC", mx.DNSSEC)
		}
	}
	for _, h := range d.Hops {
		verdict := h.Verdict
		if h.Deliverable {
			verdict = t.paint(ansiGreen, "deliverable") + strings.TrimPrefix(verdict, "deliverable")
		} else {
			verdict = t.paint(ansiRed, "would defer") + strings.TrimPrefix(verdict, "would defer")
		}
		addrs := strings.Join(h.Addresses, " ")
		if h.AddressDNSSEC != "" {
			addrs += " (address DNSSEC " + h.AddressDNSSEC + ")"
		}
		t.row(h.Host, verdict, "addresses "+addrs, "plan "+h.Plan)
	}
	if s := d.MTASTS; s != nil {
		switch {
		case s.Error != "":
			t.row("MTA-STS", append(s.TXT, s.Error)...)
		default:
			t.row("MTA-STS", s.TXT[0], "id "+s.ID)
		}
	}
	if r := d.TLSRPT; r != nil {
		switch {
		case r.Error != "":
			t.row("TLS-RPT", append(r.TXT, r.Error)...)
		default:
			t.row("TLS-RPT", append(r.TXT, "reports to "+strings.Join(r.RUA, ", "))...)
		}
	}
	if d.Error != "" {
		t.row(t.paint(ansiRed, "ERROR"), d.Error)
	}
}
