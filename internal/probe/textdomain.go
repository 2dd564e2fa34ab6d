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
		for _, head := range []string{"deliverable", "would defer", "not tried"} {
			if rest, ok := strings.CutPrefix(verdict, head); ok {
				color := ansiRed
				if h.Deliverable {
					color = ansiGreen
				}
				verdict = t.paint(color, head) + rest
				break
			}
		}
		addrs := strings.Join(h.Addresses, " ")
		if h.AddressDNSSEC != "" {
			addrs += " (address DNSSEC " + h.AddressDNSSEC + ")"
		}
		lines := []string{verdict, "addresses " + addrs, "plan " + h.Plan, "mechanism " + h.Mechanism + authWord(h.Authenticated)}
		if x := h.TLSA; x != nil {
			lines = append(lines, t.tlsaLines(x)...)
		}
		if h.MTASTSMatch != nil {
			lines = append(lines, "MTA-STS mx patterns: "+map[bool]string{true: "match", false: t.paint(ansiRed, "do not match")}[*h.MTASTSMatch])
		}
		if h.MTASTSWebPKI != nil {
			lines = append(lines, "MTA-STS certificate: "+map[bool]string{true: "WebPKI-valid for " + h.Host, false: t.paint(ansiRed, "not WebPKI-valid for "+h.Host)}[*h.MTASTSWebPKI])
		}
		lines = append(lines, "REQUIRETLS message: "+h.RequireTLS)
		if h.EnforcedTLSFails {
			lines = append(lines, t.paint(ansiRed, "enforced TLS fails here"))
		}
		t.row(h.Host, lines...)
	}
	if s := d.MTASTS; s != nil {
		switch {
		case s.Error != "":
			t.row("MTA-STS", append(s.TXT, s.Error)...)
		default:
			t.row("MTA-STS", s.TXT[0], "id "+s.ID)
		}
		if p := s.Policy; p != nil {
			t.row("STS policy", "mode "+p.Mode+fmt.Sprintf(", max_age %d", p.MaxAge)+", id "+p.ID, "mx "+strings.Join(p.MX, " "))
		}
		if s.PolicyError != "" {
			t.row("STS policy", t.paint(ansiRed, s.PolicyError))
		}
		if s.Note != "" {
			t.row("STS policy", s.Note)
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

func authWord(a bool) string {
	if a {
		return ", the server's name is authenticated"
	}
	return ", the server's name is not authenticated"
}

// tlsaLines words a hop's TLSA records.
func (t textWriter) tlsaLines(x *TLSAInfo) []string {
	var out []string
	for _, r := range x.Records {
		out = append(out, "TLSA "+r)
	}
	state := fmt.Sprintf("TLSA: %d record(s), %d usable", len(x.Records), x.Usable)
	if x.DNSSEC != "" {
		state += ", answer " + x.DNSSEC
	}
	if x.Used {
		state += ", used by DANE"
	}
	if x.Error != "" {
		state = t.paint(ansiRed, "TLSA lookup failed: "+x.Error)
	}
	out = append(out, state)
	if x.Note != "" {
		out = append(out, "TLSA "+x.Note)
	}
	return out
}
