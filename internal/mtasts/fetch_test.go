package mtasts

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"smtpkit/internal/testcert"
	"smtpkit/internal/tlsrpt"
)

const domain = "example.com"
const policyHost = "mta-sts." + domain

var goodPolicy = policyText(Enforce, 86400, "mx1.example.com", "*.mx.example.com")

// TestLookupFirst covers a domain looked up for the first time (no cached
// policy): the TXT rules of RFC 8461 §3.1 and the fetch rules of §3.3.
func TestLookupFirst(t *testing.T) {
	stsTXT := txt(domain, "v=STSv1; id=20261202")
	hostA := addr(domain, "$IP")
	tests := []struct {
		name     string
		records  []string // "$IP": the policy server
		host     *host    // nil: none configured
		hostCert func(t *testing.T, s *policyServer) tls.Certificate
		tlsMax   uint16
		opts     func(*Options)
		wantMode Mode              // "": no policy
		wantErr  tlsrpt.ResultType // "": no error
		errText  string
		hits     int // requests the policy host got
	}{
		{name: "enforce", records: []string{stsTXT, hostA}, host: &host{body: goodPolicy}, wantMode: Enforce, hits: 1},
		{name: "testing", records: []string{stsTXT, hostA}, host: &host{body: policyText(Testing, 60, "mx1.example.com")}, wantMode: Testing, hits: 1},
		{name: "text/plain with charset", records: []string{stsTXT, hostA}, host: &host{body: goodPolicy, contentType: "text/plain; charset=utf-8"}, wantMode: Enforce, hits: 1},
		{name: "LF line ends", records: []string{stsTXT, hostA}, host: &host{body: strings.ReplaceAll(goodPolicy, "\r\n", "\n")}, wantMode: Enforce, hits: 1},
		{name: "mode none is no policy", records: []string{stsTXT, hostA}, host: &host{body: policyText(None, 86400)}, hits: 1},
		{name: "no TXT record", records: []string{hostA}, host: &host{body: goodPolicy}, hits: 0},
		{name: "no MTA-STS TXT record", records: []string{txt(domain, "v=spf1 -all"), hostA}, host: &host{body: goodPolicy}, hits: 0},
		{name: "two MTA-STS TXT records", records: []string{stsTXT, txt(domain, "v=STSv1; id=2"), hostA}, host: &host{body: goodPolicy},
			wantErr: tlsrpt.STSPolicyInvalid, errText: "2 MTA-STS TXT records"},
		{name: "malformed TXT record", records: []string{txt(domain, "v=STSv1; id=a-b"), hostA}, host: &host{body: goodPolicy},
			wantErr: tlsrpt.STSPolicyInvalid, errText: "malformed TXT"},
		{name: "other TXT records are discarded", records: []string{stsTXT, txt(domain, "v=STSv10; id=2"), txt(domain, "hello"), hostA}, host: &host{body: goodPolicy}, wantMode: Enforce, hits: 1},
		{name: "redirect", records: []string{stsTXT, hostA}, host: &host{status: http.StatusFound, location: "https://" + policyHost + "/other", body: goodPolicy},
			wantErr: tlsrpt.STSPolicyFetchError, errText: "redirect", hits: 1},
		{name: "permanent redirect", records: []string{stsTXT, hostA}, host: &host{status: http.StatusPermanentRedirect, location: "https://elsewhere.example/", body: goodPolicy},
			wantErr: tlsrpt.STSPolicyFetchError, errText: "redirect", hits: 1},
		{name: "404", records: []string{stsTXT, hostA}, host: &host{status: http.StatusNotFound, body: goodPolicy},
			wantErr: tlsrpt.STSPolicyFetchError, errText: "HTTP status 404", hits: 1},
		{name: "204", records: []string{stsTXT, hostA}, host: &host{status: http.StatusNoContent},
			wantErr: tlsrpt.STSPolicyFetchError, errText: "HTTP status 204", hits: 1},
		{name: "wrong content type", records: []string{stsTXT, hostA}, host: &host{contentType: "text/html", body: goodPolicy},
			wantErr: tlsrpt.STSPolicyFetchError, errText: "Content-Type", hits: 1},
		{name: "bad content type", records: []string{stsTXT, hostA}, host: &host{contentType: "text/plain; =", body: goodPolicy},
			wantErr: tlsrpt.STSPolicyFetchError, errText: "Content-Type", hits: 1},
		{name: "just the size cap", records: []string{stsTXT, hostA}, host: &host{body: padTo(goodPolicy, DefaultMaxBody)}, wantMode: Enforce, hits: 1},
		{name: "oversize", records: []string{stsTXT, hostA}, host: &host{body: padTo(goodPolicy, DefaultMaxBody+1)},
			wantErr: tlsrpt.STSPolicyFetchError, errText: "bytes", hits: 1},
		{name: "oversize with a smaller cap", records: []string{stsTXT, hostA}, host: &host{body: goodPolicy}, opts: func(o *Options) { o.MaxBody = 20 },
			wantErr: tlsrpt.STSPolicyFetchError, errText: "bytes", hits: 1},
		{name: "invalid policy", records: []string{stsTXT, hostA}, host: &host{body: "version: STSv1\nmode: enforce\nmax_age: 60\n"},
			wantErr: tlsrpt.STSPolicyInvalid, errText: "without mx", hits: 1},
		{name: "HTML page", records: []string{stsTXT, hostA}, host: &host{body: "<html>hello</html>"},
			wantErr: tlsrpt.STSPolicyInvalid, errText: "invalid policy", hits: 1},
		{name: "self-signed certificate", records: []string{stsTXT, hostA}, host: &host{body: goodPolicy},
			hostCert: func(t *testing.T, _ *policyServer) tls.Certificate { return testcert.New(t, policyHost) },
			wantErr:  tlsrpt.STSWebPKIInvalid, errText: "certificate", hits: 0},
		{name: "certificate for another name", records: []string{stsTXT, hostA}, host: &host{body: goodPolicy},
			hostCert: func(t *testing.T, s *policyServer) tls.Certificate { return issue(t, s.CA, nil, "mta-sts.example.net") },
			wantErr:  tlsrpt.STSWebPKIInvalid, errText: "certificate", hits: 0},
		{name: "certificate for the domain, not the policy host", records: []string{stsTXT, hostA}, host: &host{body: goodPolicy},
			hostCert: func(t *testing.T, s *policyServer) tls.Certificate { return issue(t, s.CA, nil, domain, "www."+domain) },
			wantErr:  tlsrpt.STSWebPKIInvalid, errText: "certificate", hits: 0},
		{name: "wildcard certificate", records: []string{stsTXT, hostA}, host: &host{body: goodPolicy},
			hostCert: func(t *testing.T, s *policyServer) tls.Certificate { return issue(t, s.CA, nil, "*."+domain) },
			wantMode: Enforce, hits: 1},
		{name: "expired certificate", records: []string{stsTXT, hostA}, host: &host{body: goodPolicy},
			hostCert: func(t *testing.T, s *policyServer) tls.Certificate {
				return issue(t, s.CA, func(c *x509.Certificate) {
					c.NotBefore, c.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
				}, policyHost)
			},
			wantErr: tlsrpt.STSWebPKIInvalid, errText: "certificate", hits: 0},
		{name: "TLS 1.1", records: []string{stsTXT, hostA}, host: &host{body: goodPolicy}, tlsMax: tls.VersionTLS11,
			wantErr: tlsrpt.STSPolicyFetchError, errText: "protocol version", hits: 0},
		{name: "policy host does not resolve", records: []string{stsTXT}, host: &host{body: goodPolicy},
			wantErr: tlsrpt.STSPolicyFetchError, errText: policyHost + " has no addresses", hits: 0},
		{name: "policy host down", records: []string{stsTXT, addr(domain, unusedIP)}, host: &host{body: goodPolicy},
			wantErr: tlsrpt.STSPolicyFetchError, errText: "refused", hits: 0},
		{name: "second address of the policy host", records: []string{stsTXT, addr(domain, unusedIP), hostA}, host: &host{body: goodPolicy}, wantMode: Enforce, hits: 1},
		{name: "loopback refused", records: []string{stsTXT, hostA}, host: &host{body: goodPolicy}, opts: func(o *Options) { o.AllowLoopback = false },
			wantErr: tlsrpt.STSPolicyFetchError, errText: "loopback", hits: 0},
		{name: "timeout", records: []string{stsTXT, hostA}, host: &host{body: goodPolicy, block: true}, opts: func(o *Options) { o.Timeout = time.Second },
			wantErr: tlsrpt.STSPolicyFetchError, errText: "timed out", hits: 1},
		{name: "TXT lookup fails", records: []string{stsTXT, hostA}, host: &host{body: goodPolicy},
			opts:    func(o *Options) { o.Resolver = servFail(t, "_mta-sts."+domain) },
			wantErr: tlsrpt.STSPolicyFetchError, errText: "TXT", hits: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &env{srv: newPolicyServer(t, tt.tlsMax), dns: &swapResolver{}, clock: newClock(), dir: t.TempDir()}
			e.setDNS(t, tt.records...)
			e.opts = Options{Dir: e.dir, Resolver: e.dns, Roots: testcert.Pool(e.srv.CA), Port: e.srv.Port, Now: e.clock.Now, AllowLoopback: true}
			if tt.opts != nil {
				tt.opts(&e.opts)
			}
			if tt.host != nil {
				h := *tt.host
				if tt.hostCert != nil {
					c := tt.hostCert(t, e.srv)
					h.cert = &c
				}
				e.srv.set(policyHost, h)
			}
			e.open(t)
			p, err := e.cache.Lookup(t.Context(), domain)
			checkResult(t, p, err, tt.wantMode, tt.wantErr, tt.errText)
			if got := e.srv.Hits(policyHost); got != tt.hits {
				t.Errorf("policy host got %d requests, want %d", got, tt.hits)
			}
			if tt.wantMode != "" {
				want := Policy{Domain: domain, ID: "20261202", Fetched: e.clock.Now()}
				if p.Domain != want.Domain || p.ID != want.ID || !p.Fetched.Equal(want.Fetched) || len(p.Text) == 0 {
					t.Errorf("policy %+v, want domain, id and fetch time %+v", p, want)
				}
			}
		})
	}
}

// checkResult compares a Lookup's answer with the wanted mode ("": no
// policy) and error result type ("": none) whose text holds errText.
func checkResult(t *testing.T, p *Policy, err error, mode Mode, result tlsrpt.ResultType, errText string) {
	t.Helper()
	switch {
	case mode == "" && p != nil:
		t.Errorf("policy %+v, want none", p)
	case mode != "" && p == nil:
		t.Errorf("no policy, want mode %s", mode)
	case p != nil && p.Mode != mode:
		t.Errorf("mode %s, want %s", p.Mode, mode)
	}
	if result == "" {
		if err != nil {
			t.Errorf("error %v, want none", err)
		}
		return
	}
	var f tlsrpt.Failure
	if !errors.As(err, &f) {
		t.Fatalf("error %v (%T), want a tlsrpt.Failure %s", err, err, result)
	}
	if f.ResultType() != result || !strings.Contains(err.Error(), errText) {
		t.Errorf("error %q (%s), want %s with %q", err, f.ResultType(), result, errText)
	}
}

// padTo makes a policy of exactly n bytes with an extension field.
func padTo(policy string, n int) string {
	const field = "x-pad: "
	return policy + field + strings.Repeat("a", n-len(policy)-len(field)-2) + "\r\n"
}

// servFail is a resolver that answers SERVFAIL for name.
func servFail(t *testing.T, name string) *swapResolver {
	r := &swapResolver{}
	r.set(t, dnstestZone(nil, name))
	return r
}

func TestPolicyMatchesAfterFetch(t *testing.T) {
	e := newEnv(t, txt(domain, "v=STSv1; id=1"), addr(domain, "$IP"))
	e.srv.set(policyHost, host{body: goodPolicy})
	e.open(t)
	p, err := e.cache.Lookup(t.Context(), "Example.COM.")
	if err != nil || p == nil {
		t.Fatalf("Lookup: %v, %v", p, err)
	}
	if !slices.Equal(p.MX, []string{"mx1.example.com", "*.mx.example.com"}) {
		t.Errorf("MX %q", p.MX)
	}
	for host, want := range map[string]bool{"mx1.example.com": true, "a.mx.example.com": true, "mx2.example.com": false} {
		if p.Matches(host) != want {
			t.Errorf("Matches(%q) = %v", host, !want)
		}
	}
}
