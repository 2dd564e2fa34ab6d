package route_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"smtpkit/internal/dns"
	"smtpkit/internal/dns/dnstest"
	"smtpkit/internal/mtasts"
	"smtpkit/internal/route"
)

type fixedSTS struct {
	p     *mtasts.Policy
	err   error
	calls *int
}

func (f fixedSTS) Lookup(context.Context, string) (*mtasts.Policy, error) {
	*f.calls++
	return f.p, f.err
}

// TestHopsDANEAndSTS: TLSA records are looked up for secure MX hops only
// and kept with the hop (a failed lookup as DANE.Err); static routes get
// neither DANE nor MTA-STS; a mode-none policy is no policy.
func TestHopsDANEAndSTS(t *testing.T) {
	records := append(slices.Clone(zone),
		"_25._tcp.mx1.example.net. TLSA 3 1 1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
		"_25._tcp.mx2.example.net. TLSA 3 1 1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
		"signed.example.net. MX 10 mx1.example.net.",
		"insecure.example.net. MX 10 mx2.example.net.",
		"failing.example.net. MX 10 a.example.net.")
	z := dnstest.Zone{Records: records, Authentic: true,
		Unsigned: []string{"insecure.example.net.", "_25._tcp.mx2.example.net."},
		ServFail: []string{"_25._tcp.a.example.net."}}
	res, err := dns.New(dns.Options{Servers: []string{dnstest.Start(t, z).Addr}, EDNS0: true})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	enforce := &mtasts.Policy{Domain: "signed.example.net", Mode: mtasts.Enforce, MX: []string{"mx1.example.net"}}
	smart, _ := route.ParseStatic("routed.example", "smarthost.example", "", "", "")
	r := route.New(res, []route.Static{smart}, route.Options{DANE: true, STS: fixedSTS{p: enforce, calls: &calls}})

	hops, err := r.Hops(context.Background(), "signed.example.net")
	if err != nil || len(hops) != 1 {
		t.Fatalf("hops %v, %v", hops, err)
	}
	if d := hops[0].DANE; d == nil || d.Err != nil || len(d.Records) != 1 || d.Records[0].Usage != 3 || !slices.Equal(d.Names, []string{"mx1.example.net"}) {
		t.Errorf("secure MX: DANE %+v", d)
	}
	if st := hops[0].STS; st == nil || st.Policy != enforce {
		t.Errorf("STS %+v", st)
	}
	in := hops[0].TLSInput(0, "outbound default")
	if in.DANE == nil || in.STS == nil || !in.STS.Enforce || !in.STS.MatchesMX {
		t.Errorf("TLSInput %+v", in)
	}

	if hops, err = r.Hops(context.Background(), "insecure.example.net"); err != nil || hops[0].DANE != nil {
		t.Errorf("unsigned MX answer: DANE %+v, %v", hops[0].DANE, err)
	}
	if hops, err = r.Hops(context.Background(), "failing.example.net"); err != nil || hops[0].DANE == nil || !errors.Is(hops[0].DANE.Err, dns.ErrTemporary) {
		t.Errorf("failed TLSA lookup: %+v, %v", hops[0].DANE, err)
	}
	before := calls
	if hops, err = r.Hops(context.Background(), "routed.example"); err != nil || hops[0].DANE != nil || hops[0].STS != nil || calls != before {
		t.Errorf("static route: DANE %+v STS %+v, %d lookups", hops[0].DANE, hops[0].STS, calls-before)
	}

	none := route.New(res, nil, route.Options{STS: fixedSTS{p: &mtasts.Policy{Mode: mtasts.None}, calls: &calls}})
	if hops, err = none.Hops(context.Background(), "signed.example.net"); err != nil || hops[0].STS != nil || hops[0].DANE != nil {
		t.Errorf("mode none and DANE off: STS %+v DANE %+v, %v", hops[0].STS, hops[0].DANE, err)
	}
}
