package tlsrpt

import (
	"reflect"
	"strings"
	"testing"
)

// FuzzParseReport: ParseReport never panics, and a report it accepts
// survives Marshal and a second parse unchanged.
func FuzzParseReport(f *testing.F) {
	f.Add([]byte(rfcExample))
	f.Add([]byte(`{"report-id":"x","date-range":{"start-datetime":"2026-12-01T00:00:00Z","end-datetime":"2026-12-01T00:00:00Z"},"policies":[]}`))
	f.Add([]byte(`{"report-id":"x","date-range":{"start-datetime":"2026-12-01T00:00:00+02:00","end-datetime":"2026-12-02T00:00:00Z"},"policies":[{"policy":{"policy-type":"tlsa","policy-domain":"a"},"summary":{},"failure-details":[{"result-type":"z","failed-session-count":0}]}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseReport(data)
		if err != nil {
			return
		}
		out, err := r.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed report: %v", err)
		}
		back, err := ParseReport(out)
		if err != nil {
			t.Fatalf("our own encoding does not parse: %v\n%s", err, out)
		}
		if !sameReport(r, back) {
			t.Fatalf("round trip changed the report:\n%s\n%s", js(r), js(back))
		}
	})
}

// sameReport compares reports with instants compared as instants (a
// parsed "+02:00" offset marshals as that offset again, but
// reflect.DeepEqual also compares the *time.Location).
func sameReport(a, b Report) bool {
	if !a.DateRange.Start.Equal(b.DateRange.Start) || !a.DateRange.End.Equal(b.DateRange.End) {
		return false
	}
	a.DateRange, b.DateRange = DateRange{}, DateRange{}
	return reflect.DeepEqual(a, b)
}

// FuzzParseRecord: ParseRecord never panics; what it accepts starts with
// the version, has at least one mailto: or https: URI, and every mailto:
// address it gives contains "@".
func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{
		"v=TLSRPTv1; rua=mailto:reports@example.com",
		"v=TLSRPTv1;rua=mailto:a@example.com%2Cb@example.com,https://r.example/x;",
		"v=TLSRPTv1; ext=1; rua=ftp://x, mailto:a@b",
		"v=TLSRPTv1; rua=https://[::1]:443/p?q",
		"v=TLSRPTv1",
		"v=STSv1; id=1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, txt string) {
		r, err := ParseRecord(txt)
		if err != nil {
			return
		}
		if !strings.HasPrefix(txt, "v=TLSRPTv1") {
			t.Fatalf("accepted without the version first: %q", txt)
		}
		if len(r.RUA) == 0 || len(r.RUA) > MaxRUA {
			t.Fatalf("%d rua URIs accepted from %q", len(r.RUA), txt)
		}
		for _, u := range r.RUA {
			if u.Scheme != "mailto" && u.Scheme != "https" {
				t.Fatalf("scheme %q accepted from %q", u.Scheme, txt)
			}
		}
		if to := r.Mailto(); len(to) > MaxRUA {
			t.Fatalf("%d mailto addresses from %q", len(to), txt)
		}
		_ = r.HTTPS()
	})
}
