package dns_test

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"

	"smtpkit/internal/dns"
	"smtpkit/internal/dns/dnstest"
)

func TestLookupTXT(t *testing.T) {
	c, _ := newClient(t, dnstest.Zone{Authentic: true, Unsigned: []string{"plain.example.net."},
		ServFail: []string{"broken.example.net."}, Records: []string{
			`_mta-sts.example.net. TXT "v=STSv1; " "id=20261201"`,
			`_mta-sts.example.net. TXT "unrelated"`,
			`plain.example.net. TXT "v=TLSRPTv1; rua=mailto:r@example.net"`,
			`alias.example.net. CNAME _mta-sts.example.net.`,
			`other.example.net. A 192.0.2.9`,
		}}, dns.Options{EDNS0: true})
	tests := []struct {
		name    string
		want    dns.TXTAnswer
		wantErr error
	}{
		{"_mta-sts.example.net", dns.TXTAnswer{Records: []string{"v=STSv1; id=20261201", "unrelated"}, Authentic: true}, nil},
		{"alias.example.net", dns.TXTAnswer{Records: []string{"v=STSv1; id=20261201", "unrelated"}, Authentic: true}, nil},
		{"plain.example.net", dns.TXTAnswer{Records: []string{"v=TLSRPTv1; rua=mailto:r@example.net"}}, nil},
		{"other.example.net", dns.TXTAnswer{Authentic: true}, nil},
		{"missing.example.net", dns.TXTAnswer{Authentic: true, NXDomain: true}, nil},
		{"broken.example.net", dns.TXTAnswer{}, dns.ErrTemporary},
	}
	for _, tt := range tests {
		got, err := c.LookupTXT(context.Background(), tt.name)
		if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
			t.Errorf("%s: err %v, want %v", tt.name, err, tt.wantErr)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestLookupTLSA(t *testing.T) {
	c, _ := newClient(t, dnstest.Zone{Authentic: true, Unsigned: []string{"_25._tcp.plain.example.net."}, Records: []string{
		"_25._tcp.mx.example.net. TLSA 3 1 1 0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
		"_25._tcp.mx.example.net. TLSA 2 0 0 abcdef",
		"_25._tcp.plain.example.net. TLSA 3 1 1 00ff",
		"_25._tcp.cname.example.net. CNAME _25._tcp.mx.example.net.",
	}}, dns.Options{EDNS0: true})
	got, err := c.LookupTLSA(context.Background(), "_25._tcp.mx.example.net")
	if err != nil || !got.Authentic || len(got.Records) != 2 {
		t.Fatalf("got %+v, %v", got, err)
	}
	if r := got.Records[0]; r.Usage != 3 || r.Selector != 1 || r.MatchingType != 1 || len(r.Data) != 32 || r.Data[0] != 1 || r.Data[31] != 0x20 {
		t.Errorf("first record %+v", r)
	}
	if r := got.Records[1]; r.Usage != 2 || r.Selector != 0 || r.MatchingType != 0 || !bytes.Equal(r.Data, []byte{0xab, 0xcd, 0xef}) {
		t.Errorf("second record %+v", r)
	}
	if via, err := c.LookupTLSA(context.Background(), "_25._tcp.cname.example.net"); err != nil || len(via.Records) != 2 {
		t.Errorf("through a CNAME: %+v, %v", via, err)
	}
	if plain, err := c.LookupTLSA(context.Background(), "_25._tcp.plain.example.net"); err != nil || plain.Authentic || len(plain.Records) != 1 {
		t.Errorf("unsigned: %+v, %v", plain, err)
	}
	if none, err := c.LookupTLSA(context.Background(), "_25._tcp.none.example.net"); err != nil || len(none.Records) != 0 || !none.NXDomain {
		t.Errorf("missing: %+v, %v", none, err)
	}
}
