package dane

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"strings"
	"testing"

	"smtpkit/internal/dns"
	"smtpkit/internal/testcert"
)

func TestParseRecord(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	tests := []struct {
		in      string
		want    dns.TLSA
		wantErr string
	}{
		{"3 1 1 " + sum, dns.TLSA{Usage: 3, Selector: 1, MatchingType: 1, Data: bytes.Repeat([]byte{0xab}, 32)}, ""},
		{"  2 0 0 0102 0304\t05  ", dns.TLSA{Usage: 2, Selector: 0, MatchingType: 0, Data: []byte{1, 2, 3, 4, 5}}, ""},
		{"3 1 1 ABCDEF", dns.TLSA{Usage: 3, Selector: 1, MatchingType: 1, Data: []byte{0xab, 0xcd, 0xef}}, ""},
		{"255 255 255 00", dns.TLSA{Usage: 255, Selector: 255, MatchingType: 255, Data: []byte{0}}, ""},
		{"03 01 01 ff", dns.TLSA{Usage: 3, Selector: 1, MatchingType: 1, Data: []byte{0xff}}, ""},
		{"3 1 1", dns.TLSA{}, "want usage"},
		{"", dns.TLSA{}, "want usage"},
		{"256 1 1 00", dns.TLSA{}, "usage"},
		{"-1 1 1 00", dns.TLSA{}, "usage"},
		{"+3 1 1 00", dns.TLSA{}, "usage"},
		{"3 x 1 00", dns.TLSA{}, "selector"},
		{"3 1 0x1 00", dns.TLSA{}, "matching type"},
		{"3 1 1 abc", dns.TLSA{}, "hexadecimal"},
		{"3 1 1 zz", dns.TLSA{}, "hexadecimal"},
		{"3 1 1 ab c", dns.TLSA{}, "hexadecimal"},
		{"3 1 1 " + strings.Repeat("00", maxData+1), dns.TLSA{}, "longer"},
	}
	for _, tt := range tests {
		got, err := ParseRecord(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseRecord(%.40q) = %v, %v; want an error about %s", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got.Usage != tt.want.Usage || got.Selector != tt.want.Selector ||
			got.MatchingType != tt.want.MatchingType || !bytes.Equal(got.Data, tt.want.Data) {
			t.Errorf("ParseRecord(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestFormat(t *testing.T) {
	r := dns.TLSA{Usage: 3, Selector: 1, MatchingType: 1, Data: []byte{0xAB, 0x01}}
	if got := Format(r); got != "3 1 1 ab01" {
		t.Errorf("Format = %q, want %q", got, "3 1 1 ab01")
	}
	back, err := ParseRecord(Format(r))
	if err != nil || !equal(back, r) {
		t.Errorf("ParseRecord(Format(%v)) = %v, %v", r, back, err)
	}
}

func TestRecord(t *testing.T) {
	cert := testcert.New(t, "mx.example.com").Leaf
	spki256 := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	cert512 := sha512.Sum512(cert.Raw)
	tests := []struct {
		usage, selector, matching uint8
		want                      []byte
		usable                    bool
	}{
		{3, 1, 1, spki256[:], true},
		{2, 0, 2, cert512[:], true},
		{3, 0, 0, cert.Raw, true},
		{3, 1, 0, cert.RawSubjectPublicKeyInfo, true},
		{1, 1, 1, spki256[:], false}, // PKIX-EE: built, but not usable for SMTP
		{3, 2, 1, nil, false},
		{3, 1, 3, nil, false},
	}
	for _, tt := range tests {
		r := Record(tt.usage, tt.selector, tt.matching, cert)
		if r.Usage != tt.usage || r.Selector != tt.selector || r.MatchingType != tt.matching || !bytes.Equal(r.Data, tt.want) {
			t.Errorf("Record(%d, %d, %d) = %s", tt.usage, tt.selector, tt.matching, Format(r))
		}
		if Usable(r) != tt.usable {
			t.Errorf("Usable(%s) = %v, want %v", Format(r), !tt.usable, tt.usable)
		}
	}
	// Full data is a copy: changing the record leaves the certificate alone.
	r := Record(3, 0, 0, cert)
	r.Data[0] ^= 0xff
	if r.Data[0] == cert.Raw[0] {
		t.Error("Record(3, 0, 0) shares the certificate's bytes")
	}
}

func TestUsable(t *testing.T) {
	d32, d64 := make([]byte, 32), make([]byte, 64)
	tests := []struct {
		r    dns.TLSA
		want bool
	}{
		{dns.TLSA{Usage: 3, Selector: 1, MatchingType: 1, Data: d32}, true},
		{dns.TLSA{Usage: 2, Selector: 0, MatchingType: 2, Data: d64}, true},
		{dns.TLSA{Usage: 3, Selector: 0, MatchingType: 0, Data: []byte{0x30}}, true},
		{dns.TLSA{Usage: 0, Selector: 1, MatchingType: 1, Data: d32}, false},
		{dns.TLSA{Usage: 1, Selector: 1, MatchingType: 1, Data: d32}, false},
		{dns.TLSA{Usage: 4, Selector: 1, MatchingType: 1, Data: d32}, false},
		{dns.TLSA{Usage: 3, Selector: 2, MatchingType: 1, Data: d32}, false},
		{dns.TLSA{Usage: 3, Selector: 1, MatchingType: 3, Data: d32}, false},
		{dns.TLSA{Usage: 3, Selector: 1, MatchingType: 1, Data: d64}, false},
		{dns.TLSA{Usage: 3, Selector: 1, MatchingType: 2, Data: d32}, false},
		{dns.TLSA{Usage: 3, Selector: 1, MatchingType: 0}, false},
	}
	for _, tt := range tests {
		if got := Usable(tt.r); got != tt.want {
			t.Errorf("Usable(%s) = %v, want %v", Format(tt.r), got, tt.want)
		}
	}
}

func equal(a, b dns.TLSA) bool {
	return a.Usage == b.Usage && a.Selector == b.Selector && a.MatchingType == b.MatchingType && bytes.Equal(a.Data, b.Data)
}
