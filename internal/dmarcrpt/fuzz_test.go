package dmarcrpt

import (
	"encoding/xml"
	"net/netip"
	"reflect"
	"testing"
)

// FuzzReport: whatever strings a peer puts into a message (its From
// domain, DKIM d= and s=, the MAIL FROM domain) and whatever record the
// domain publishes, the report built from the Store's rows is well-formed
// XML that parses back to the same Feedback.
func FuzzReport(f *testing.F) {
	f.Add("example.com", "v=DMARC1; p=reject; sp=quarantine; pct=50; adkim=s; rua=mailto:d@example.com", "example.com", "sel", "pass", "bounce.example.com", "fail", "none", []byte{192, 0, 2, 1})
	f.Add("Example.COM.", "v=DMARC1; p=none", "", "", "", "", "", "quarantine", []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add("a\x00b", "v=DMARC1;p=bogus", "<&>\"'", "\r\n", "\xff\xfe", "]]>", "\x01", "reject", []byte{})
	f.Fuzz(func(t *testing.T, domain, record, dkimDomain, selector, dkimResult, spfDomain, spfResult, disposition string, ip []byte) {
		addr, _ := netip.AddrFromSlice(ip)
		m := Message{PolicyDomain: domain, Record: record, Row: Row{
			SourceIP: addr, HeaderFrom: domain, Disposition: disposition, DKIM: dkimResult, SPF: spfResult,
			DKIMResults: []DKIMResult{{Domain: dkimDomain, Selector: selector, Result: dkimResult}},
			SPFResult:   SPFResult{Domain: spfDomain, Result: spfResult},
		}}
		// What Store.Add does, without the Store's file and goroutine.
		s := &Store{}
		b := &bucket{key: bucketKey{domainName(domain), day1}, start: day1, record: record}
		s.add(b, Counted{Row: m.Row.bounded(), Count: 1})
		s.add(b, Counted{Row: m.Row.bounded(), Count: 1})
		{
			p := b.pending(day1.Add(day))
			rep := p.Report(Org{Name: "mx.example.net", Email: "noreply-dmarc@mx.example.net"}, "1.x@mx.example.net")
			data, err := rep.Marshal()
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			var back Feedback
			if err := xml.Unmarshal(data, &back); err != nil {
				t.Fatalf("our report does not parse: %v\n%s", err, data)
			}
			back.XMLName = rep.XMLName
			if !reflect.DeepEqual(rep, back) {
				t.Fatalf("round trip changed the report:\n%#v\n%#v\n%s", rep, back, data)
			}
			if len(back.Records) != 1 || back.Records[0].Row.Count != 2 {
				t.Fatalf("records %+v, want one row counted twice", back.Records)
			}
		}
	})
}

// FuzzParseURI: ParseURI never panics, and an address it accepts is one
// address with a domain.
func FuzzParseURI(f *testing.F) {
	for _, s := range []string{"mailto:d@example.com", "mailto:d@example.com!10m", "mailto:a%2Cb@x!1", "https://x/", "mailto:!", "mailto:a@b!99999999999999999999t", "!k"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok, err := ParseURI(s)
		if err != nil || !ok {
			return
		}
		if d.Domain() == "" || d.MaxSize < 0 {
			t.Fatalf("ParseURI(%q) = %+v", s, d)
		}
	})
}
