package delivery

import (
	"context"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"smtpkit/internal/dane"
	"smtpkit/internal/dns/dnstest"
	"smtpkit/internal/mtasts"
	"smtpkit/internal/route"
	"smtpkit/internal/tlspolicy"
	"smtpkit/internal/tlsrpt"
)

// sessions collects what the courier reports for TLS-RPT.
type sessions struct {
	mu   sync.Mutex
	list []tlsrpt.Session
}

func (s *sessions) Record(x tlsrpt.Session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, x)
}

// summary is "policy-type result@mx" per session, result "ok" for a success.
func (s *sessions) summary() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, x := range s.list {
		r := string(x.Result)
		if r == "" {
			r = "ok"
		}
		out = append(out, string(x.Policy)+" "+r+"@"+x.MXHost)
	}
	return out
}

// stsPolicy is an MTA-STS policy in force, as the cache would return it
// (the fetch itself is internal/mtasts's and the interop bench's).
type stsPolicy struct {
	p   *mtasts.Policy
	err error
}

func (s stsPolicy) Lookup(context.Context, string) (*mtasts.Policy, error) { return s.p, s.err }

func policyFor(mode mtasts.Mode, mx ...string) stsPolicy {
	return stsPolicy{p: &mtasts.Policy{Domain: "remote.example", ID: "1", Mode: mode, MX: mx, MaxAge: 24 * time.Hour,
		Fetched: time.Now(), Text: []string{"version: STSv1", "mode: " + string(mode)}}}
}

// secureZone is mxZone, DNSSEC-signed (AD set), with extra records.
func secureZone(extra ...string) *dnstest.Zone {
	return &dnstest.Zone{Records: append(slices.Clone(mxZone), extra...), Authentic: true}
}

// TestRemoteDANE: secure TLSA records of the MX decide, whatever
// outbound.tls says (opportunistic here): a matching DANE-EE record on a
// self-signed certificate delivers; a mismatch, STARTTLS missing or a
// failed TLSA lookup defer without a plaintext MAIL; an unsigned TLSA
// answer is ignored.
func TestRemoteDANE(t *testing.T) {
	cert, _ := selfSigned(t, "unrelated.example") // DANE-EE ignores the name
	other, _ := selfSigned(t, "mx1.remote.example")
	tlsa := func(port int, r string) string {
		return "_" + strconv.Itoa(port) + "._tcp.mx1.remote.example. TLSA " + r
	}
	match := dane.Format(dane.Record(3, 1, 1, cert.Leaf))
	wrong := dane.Format(dane.Record(3, 1, 1, other.Leaf))
	tests := []struct {
		name     string
		s        script
		zone     func(port int) *dnstest.Zone
		want     string
		accepts  int
		tls      bool
		sessions []string
		text     string // in the error the queue keeps
	}{
		{"DANE-EE match on a self-signed cert", script{tls: tlsConfig(cert)},
			func(p int) *dnstest.Zone { return secureZone(tlsa(p, match)) }, "ok", 1, true,
			[]string{"tlsa ok@mx1.remote.example"}, ""},
		{"TLSA mismatch: deferred", script{tls: tlsConfig(cert)},
			func(p int) *dnstest.Zone { return secureZone(tlsa(p, wrong)) }, "temp 451 4.7.5", 1, false,
			[]string{"tlsa validation-failure@mx1.remote.example"}, "does not match the TLSA records of mx1.remote.example (dane: "},
		{"DANE and no STARTTLS: deferred, never plaintext", script{},
			func(p int) *dnstest.Zone { return secureZone(tlsa(p, match)) }, "temp 451 4.7.4", 1, false,
			[]string{"tlsa starttls-not-supported@mx1.remote.example"}, "TLS is required (DANE), but STARTTLS not offered"},
		{"TLSA lookup fails: deferred without connecting", script{tls: tlsConfig(cert)},
			func(p int) *dnstest.Zone {
				z := secureZone()
				z.ServFail = []string{"_" + strconv.Itoa(p) + "._tcp.mx1.remote.example."}
				return z
			}, "temp 451 4.4.3", 0, false,
			[]string{"tlsa dnssec-invalid@mx1.remote.example"}, "TLSA lookup for mx1.remote.example failed"},
		{"TLSA in an unsigned zone: ignored", script{tls: tlsConfig(cert)},
			func(p int) *dnstest.Zone {
				z := secureZone(tlsa(p, wrong))
				z.Unsigned = []string{"_" + strconv.Itoa(p) + "._tcp.mx1.remote.example."}
				return z
			}, "ok", 1, true, []string{"no-policy-found ok@mx1.remote.example"}, ""},
		{"MX answer not signed: no DANE", script{tls: tlsConfig(cert)},
			func(p int) *dnstest.Zone {
				z := secureZone(tlsa(p, wrong))
				z.Unsigned = []string{"one.example."}
				return z
			}, "ok", 1, true, []string{"no-policy-found ok@mx1.remote.example"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f1, _, port := twoMX(t, &tc.s, nil)
			rec := &sessions{}
			e := newEnv(t, port, envOpts{policy: tlspolicy.Opportunistic, zone: tc.zone(port), dane: true, reports: rec})
			res := e.deliver(t, delivery("one.example", "x@one.example"))
			wantOutcomes(t, res, tc.want)
			if tc.want != "ok" && f1.sawVerb("MAIL") {
				t.Errorf("MAIL sent although DANE failed: %q", f1.Commands())
			}
			if m := f1.Messages(); tc.want == "ok" && (len(m) != 1 || m[0].TLS != tc.tls) {
				t.Errorf("messages %v, want one with tls=%v", m, tc.tls)
			}
			if got := f1.Accepts(); got != tc.accepts {
				t.Errorf("mx1 saw %d connections, want %d", got, tc.accepts)
			}
			if got := rec.summary(); !slices.Equal(got, tc.sessions) {
				t.Errorf("TLS-RPT sessions %q, want %q", got, tc.sessions)
			}
			if tc.sessions[0][:4] == "tlsa" && res[0].TLS.Mechanism != "dane" {
				t.Errorf("mechanism %q, want dane (the metrics label it)", res[0].TLS.Mechanism)
			}
			if tc.text != "" && (res[0].Err == nil || !strings.Contains(res[0].Err.Error(), tc.text)) {
				t.Errorf("error %v, want it to say %q", res[0].Err, tc.text)
			}
		})
	}
}

// TestRemoteMTASTS: an enforce policy needs a certificate valid for the
// MX name and skips MX hosts it does not list; a testing policy delivers
// anyway and reports.
func TestRemoteMTASTS(t *testing.T) {
	cert1, pool1 := selfSigned(t, "mx1.remote.example")
	cert2, _ := selfSigned(t, "mx2.remote.example")
	both := pool1.Clone()
	both.AddCert(cert2.Leaf)
	tests := []struct {
		name     string
		sts      stsPolicy
		s1, s2   script
		roots    bool
		want     string
		got1     int // messages at mx1, mx2
		got2     int
		sessions []string
	}{
		{"enforce, valid certificate", policyFor(mtasts.Enforce, "*.remote.example"),
			script{tls: tlsConfig(cert1)}, script{tls: tlsConfig(cert2)}, true, "ok", 1, 0,
			[]string{"sts ok@mx1.remote.example"}},
		{"enforce, self-signed: not delivered", policyFor(mtasts.Enforce, "*.remote.example"),
			script{tls: tlsConfig(cert1)}, script{tls: tlsConfig(cert2)}, false, "temp 451 4.7.5", 0, 0,
			[]string{"sts certificate-not-trusted@mx1.remote.example", "sts certificate-not-trusted@mx2.remote.example"}},
		{"enforce, STARTTLS stripped: not delivered", policyFor(mtasts.Enforce, "*.remote.example"),
			script{}, script{}, true, "temp 451 4.7.4", 0, 0,
			[]string{"sts starttls-not-supported@mx1.remote.example", "sts starttls-not-supported@mx2.remote.example"}},
		{"enforce, first MX not in the policy: skipped", policyFor(mtasts.Enforce, "mx2.remote.example"),
			script{tls: tlsConfig(cert1)}, script{tls: tlsConfig(cert2)}, true, "ok", 0, 1,
			[]string{"sts validation-failure@mx1.remote.example", "sts ok@mx2.remote.example"}},
		{"testing, self-signed: delivered and reported", policyFor(mtasts.Testing, "*.remote.example"),
			script{tls: tlsConfig(cert1)}, script{tls: tlsConfig(cert2)}, false, "ok", 1, 0,
			[]string{"sts certificate-not-trusted@mx1.remote.example"}},
		{"mode none: as no policy", policyFor(mtasts.None, "mx2.remote.example"),
			script{tls: tlsConfig(cert1)}, script{}, false, "ok", 1, 0,
			[]string{"no-policy-found ok@mx1.remote.example"}},
		{"fetch failed, no cached policy: delivered, reported", stsPolicy{err: &mtasts.Error{Result: tlsrpt.STSPolicyFetchError, Err: errors.New("connection refused")}},
			script{tls: tlsConfig(cert1)}, script{}, false, "ok", 1, 0,
			[]string{"sts sts-policy-fetch-error@mx1.remote.example"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f1, f2, port := twoMX(t, &tc.s1, &tc.s2)
			rec := &sessions{}
			o := envOpts{policy: tlspolicy.Opportunistic, sts: tc.sts, reports: rec}
			if tc.roots {
				o.roots = both
			}
			e := newEnv(t, port, o)
			res := e.deliver(t, delivery("remote.example", "x@remote.example"))
			wantOutcomes(t, res, tc.want)
			if n := len(f1.Messages()); n != tc.got1 {
				t.Errorf("mx1 got %d messages, want %d", n, tc.got1)
			}
			if n := len(f2.Messages()); n != tc.got2 {
				t.Errorf("mx2 got %d messages, want %d", n, tc.got2)
			}
			if tc.got1 == 0 && tc.got2 == 0 && (f1.sawVerb("MAIL") || f2.sawVerb("MAIL")) {
				t.Errorf("MAIL sent: %q %q", f1.Commands(), f2.Commands())
			}
			if got := rec.summary(); !slices.Equal(got, tc.sessions) {
				t.Errorf("TLS-RPT sessions %q, want %q", got, tc.sessions)
			}
		})
	}
}

// TestRemoteREQUIRETLS: a REQUIRETLS message goes only over authenticated
// TLS to an MX that offers REQUIRETLS, with the parameter on MAIL; else it
// fails for good with 5.7.30. "TLS-Required: No" lifts DANE and MTA-STS.
func TestRemoteREQUIRETLS(t *testing.T) {
	cert, pool := selfSigned(t, "mx1.remote.example")
	enforce := policyFor(mtasts.Enforce, "mx1.remote.example")
	tests := []struct {
		name       string
		s          script
		sts        route.STSLookup
		requireTLS bool
		body       string
		want       string
		accepts    int
	}{
		{"REQUIRETLS over verified TLS", script{tls: tlsConfig(cert), requireTLS: true}, enforce, true, testBody, "ok", 1},
		{"REQUIRETLS, MX lacks REQUIRETLS: bounced", script{tls: tlsConfig(cert)}, enforce, true, testBody, "perm 550 5.7.30", 1},
		{"REQUIRETLS, nothing authenticates the MX: bounced unsent", script{tls: tlsConfig(cert), requireTLS: true}, nil, true, testBody, "perm 550 5.7.30", 0},
		{"TLS-Required: No lifts MTA-STS", script{tls: tlsConfig(cert)}, policyFor(mtasts.Enforce, "elsewhere.example"), false,
			"TLS-Required: No\r\n" + testBody, "ok", 1},
		{"without the header the same policy refuses", script{tls: tlsConfig(cert)}, policyFor(mtasts.Enforce, "elsewhere.example"), false,
			testBody, "temp 451 4.7.0", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f1, _, port := twoMX(t, &tc.s, nil)
			e := newEnv(t, port, envOpts{policy: tlspolicy.Opportunistic, roots: pool, sts: tc.sts})
			d := delivery("one.example", "x@one.example")
			d.Domain = "one.example"
			d.RequireTLS = tc.requireTLS
			body := tc.body
			d.Open = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
			wantOutcomes(t, e.deliver(t, d), tc.want)
			if got := f1.Accepts(); got != tc.accepts {
				t.Errorf("mx1 saw %d connections, want %d", got, tc.accepts)
			}
			m := f1.Messages()
			if tc.want == "ok" {
				if len(m) != 1 || !m[0].TLS {
					t.Fatalf("messages %v, want one under TLS", m)
				}
				if has := strings.Contains(strings.ToUpper(m[0].MailArgs), "REQUIRETLS"); has != tc.requireTLS {
					t.Errorf("MAIL %q: REQUIRETLS parameter %v, want %v", m[0].MailArgs, has, tc.requireTLS)
				}
			} else if len(m) != 0 || f1.sawVerb("MAIL") {
				t.Errorf("MAIL sent: %q", f1.Commands())
			}
		})
	}
}
