package tlsrpt

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"smtpkit/internal/dns"
)

func TestParseRecord(t *testing.T) {
	tests := []struct {
		txt    string
		mailto []string
		https  []string
		err    bool
		not    bool // ErrNotTLSRPT
	}{
		{txt: "v=TLSRPTv1; rua=mailto:reports@example.com", mailto: []string{"reports@example.com"}},
		{txt: "v=TLSRPTv1;rua=mailto:reports@example.com;", mailto: []string{"reports@example.com"}},
		{txt: "v=TLSRPTv1 ; rua=https://reporting.example.com/v1/tlsrpt", https: []string{"https://reporting.example.com/v1/tlsrpt"}},
		{txt: "v=TLSRPTv1; rua=mailto:a@example.com , https://r.example.net/x", mailto: []string{"a@example.com"}, https: []string{"https://r.example.net/x"}},
		{txt: "v=TLSRPTv1; rua=mailto:a@example.com%2Cb@example.com?subject=hi", mailto: []string{"a@example.com", "b@example.com"}},
		{txt: "v=TLSRPTv1; rua=MAILTO:a@example.com", mailto: []string{"a@example.com"}},
		{txt: "v=TLSRPTv1; rua=mailto:" + strings.Repeat("a@example.com%2C", 20), mailto: strings.Split(strings.Repeat("a@example.com,", MaxRUA-1)+"a@example.com", ",")}, // at most MaxRUA
		{txt: "v=TLSRPTv1; ext.1=val; rua=mailto:a@example.com", mailto: []string{"a@example.com"}},                                                                       // extension ignored
		{txt: "v=TLSRPTv1; rua=ftp://x.example/, mailto:a@example.com", mailto: []string{"a@example.com"}},                                                                // unsupported scheme skipped
		{txt: "v=TLSRPTv1; rua=ftp://x.example/", err: true},                                                                                                              // nothing left
		{txt: "v=TLSRPTv1; rua=http://x.example/", err: true},                                                                                                             // not https
		{txt: "v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:b@example.com", err: true},                                                                                // rua twice
		{txt: "v=TLSRPTv1", err: true},                                      // no rua
		{txt: "v=TLSRPTv1;; rua=mailto:a@example.com", err: true},           // empty field
		{txt: "v=TLSRPTv1; rua=mailto:", err: true},                         // no address
		{txt: "v=TLSRPTv1; rua=https:///nohost", err: true},                 //
		{txt: "v=TLSRPTv1; bad field; rua=mailto:a@example.com", err: true}, // not key=value
		{txt: "v=TLSRPTv1; _x=1; rua=mailto:a@example.com", err: true},      // ext name starts with "_"
		{txt: "v=TLSRPTv1; x=a b; rua=mailto:a@example.com", err: true},     // space in ext value
		{txt: "v=TLSRPTv10; rua=mailto:a@example.com", not: true, err: true},
		{txt: "v=STSv1; id=1", not: true, err: true},
		{txt: " v=TLSRPTv1; rua=mailto:a@example.com", not: true, err: true}, // the version comes first, exactly
		{txt: "v=tlsrptv1; rua=mailto:a@example.com", not: true, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.txt, func(t *testing.T) {
			r, err := ParseRecord(tt.txt)
			if (err != nil) != tt.err || errors.Is(err, ErrNotTLSRPT) != tt.not {
				t.Fatalf("err = %v, want error %v (not-TLSRPT %v)", err, tt.err, tt.not)
			}
			if err != nil {
				return
			}
			if got := r.Mailto(); !reflect.DeepEqual(got, tt.mailto) {
				t.Errorf("mailto = %q, want %q", got, tt.mailto)
			}
			var https []string
			for _, u := range r.HTTPS() {
				https = append(https, u.String())
			}
			if !reflect.DeepEqual(https, tt.https) {
				t.Errorf("https = %q, want %q", https, tt.https)
			}
		})
	}
}

type txtResolver map[string]dns.TXTAnswer

func (r txtResolver) LookupTXT(_ context.Context, name string) (dns.TXTAnswer, error) {
	a, ok := r[name]
	if !ok {
		return dns.TXTAnswer{}, errors.Join(dns.ErrTemporary, errors.New("servfail"))
	}
	return a, nil
}

func TestLookup(t *testing.T) {
	res := txtResolver{
		"_smtp._tls.one.example":   {Records: []string{"v=spf1 -all", "v=TLSRPTv1; rua=mailto:r@one.example"}},
		"_smtp._tls.two.example":   {Records: []string{"v=TLSRPTv1; rua=mailto:a@two.example", "v=TLSRPTv1; rua=mailto:b@two.example"}},
		"_smtp._tls.none.example":  {NXDomain: true},
		"_smtp._tls.bad.example":   {Records: []string{"v=TLSRPTv1; rua=gopher://x"}},
		"_smtp._tls.other.example": {Records: []string{"something else"}},
	}
	tests := []struct {
		domain string
		mailto []string
		err    error
	}{
		{"one.example", []string{"r@one.example"}, nil},
		{"one.example.", []string{"r@one.example"}, nil},
		{"two.example", nil, ErrNoRecord}, // RFC 8460 §3: not exactly one record
		{"none.example", nil, ErrNoRecord},
		{"bad.example", nil, ErrNoRecord},
		{"other.example", nil, ErrNoRecord},
		{"down.example", nil, dns.ErrTemporary},
	}
	for _, tt := range tests {
		r, err := Lookup(context.Background(), res, tt.domain)
		if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("%s: err = %v, want %v", tt.domain, err, tt.err)
			continue
		}
		if got := r.Mailto(); !reflect.DeepEqual(got, tt.mailto) {
			t.Errorf("%s: mailto = %q, want %q", tt.domain, got, tt.mailto)
		}
	}
}
