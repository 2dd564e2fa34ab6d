package probe

import (
	"context"
	"crypto/tls"
	"slices"
	"strings"
	"testing"
	"time"

	"smtpkit/internal/testcert"
	"smtpkit/internal/tlspolicy"
)

func TestPortScenarios(t *testing.T) {
	cert := fakeCert(t)
	tests := []struct {
		name   string
		server *fakeServer
		opts   func(*Options)
		check  func(t *testing.T, r Result)
	}{
		{"STARTTLS with AUTH before TLS", starttlsServer(), nil, func(t *testing.T, r Result) {
			if !r.OK() || r.Mode != "starttls" || !r.StartTLSOffered || r.TLS == nil {
				t.Fatalf("%+v", r)
			}
			if r.Banner != "220 fake.probe.test ESMTP ready" {
				t.Errorf("banner %q", r.Banner)
			}
			if !slices.Equal(r.AuthBeforeTLS, []string{"PLAIN", "LOGIN"}) || !slices.Equal(r.AuthAfterTLS, []string{"PLAIN", "LOGIN", "SCRAM-SHA-256"}) {
				t.Errorf("auth %v / %v", r.AuthBeforeTLS, r.AuthAfterTLS)
			}
			if !slices.Contains(r.EHLOBeforeTLS, "SIZE 1048576") || slices.Contains(r.EHLOAfterTLS, "STARTTLS") {
				t.Errorf("ehlo %v / %v", r.EHLOBeforeTLS, r.EHLOAfterTLS)
			}
			wantWarning(t, r, "AUTH (PLAIN LOGIN) offered before TLS")
			wantWarning(t, r, "certificate chain not verified")
			if r.TLS.Certificate.Subject != "CN=mx.probe.test,O=smtpkit probe test" || r.TLS.Certificate.DaysLeft != 3287 {
				t.Errorf("cert %+v", r.TLS.Certificate)
			}
			if !r.TLS.NameMatches || r.TLS.ChainVerified || r.TLS.Valid {
				t.Errorf("verification %+v", r.TLS)
			}
		}},
		{"verified with --ca and --servername", starttlsServer(), func(o *Options) {
			o.Roots, o.ServerName = testcert.Pool(cert), fakeCertName
		}, func(t *testing.T, r Result) {
			if r.TLS == nil || !r.TLS.Valid || r.TLS.ServerName != fakeCertName || r.TLS.VerifyName != fakeCertName {
				t.Fatalf("%+v", r.TLS)
			}
		}},
		{"wrong server name", starttlsServer(), func(o *Options) {
			o.Roots, o.ServerName = testcert.Pool(cert), "other.probe.test"
		}, func(t *testing.T, r Result) {
			if r.TLS == nil || r.TLS.Valid || !r.TLS.ChainVerified || r.TLS.NameMatches {
				t.Fatalf("%+v", r.TLS)
			}
			wantWarning(t, r, "certificate does not match other.probe.test")
		}},
		{"expired at the probe's clock", starttlsServer(), func(o *Options) {
			o.Roots = testcert.Pool(cert)
			o.Now = func() time.Time { return certNotAfter.Add(48 * time.Hour) }
		}, func(t *testing.T, r Result) {
			if r.TLS == nil || r.TLS.ChainVerified || r.TLS.Certificate.DaysLeft != -2 || !strings.Contains(r.TLS.ChainError, "expired") {
				t.Fatalf("%+v", r.TLS)
			}
		}},
		{"implicit TLS", &fakeServer{Greeting: "220 fake.probe.test ESMTP\r\n", Implicit: true,
			EHLO: []string{"AUTH PLAIN"}}, func(o *Options) { o.Mode = tlspolicy.ModeImplicit },
			func(t *testing.T, r Result) {
				if !r.OK() || r.Mode != "implicit" || r.TLS == nil || r.EHLOBeforeTLS != nil || !slices.Equal(r.AuthAfterTLS, []string{"PLAIN"}) {
					t.Fatalf("%+v", r)
				}
				noWarning(t, r, "AUTH")
			}},
		{"no STARTTLS, AUTH in plaintext", &fakeServer{Greeting: "220 plain\r\n", EHLO: []string{"AUTH LOGIN"}}, nil,
			func(t *testing.T, r Result) {
				if !r.OK() || r.TLS != nil || r.StartTLSOffered || r.EHLOAfterTLS != nil {
					t.Fatalf("%+v", r)
				}
				wantWarning(t, r, "STARTTLS not offered")
				wantWarning(t, r, "AUTH (LOGIN) offered before TLS")
			}},
		{"STARTTLS refused", &fakeServer{Greeting: "220 x\r\n", EHLO: []string{"STARTTLS"}, StartTLS: "454 4.7.0 TLS not available\r\n"}, nil,
			func(t *testing.T, r Result) {
				if !r.OK() || r.TLS != nil {
					t.Fatalf("%+v", r)
				}
				wantWarning(t, r, "STARTTLS offered but refused: 454 4.7.0 TLS not available")
			}},
		{"handshake fails after STARTTLS", &fakeServer{Greeting: "220 x\r\n", EHLO: []string{"STARTTLS"},
			StartTLS: "220 go ahead\r\n", HangUpAfterStartTLS: true}, nil,
			func(t *testing.T, r Result) {
				if r.OK() || r.TLS != nil || !strings.HasPrefix(r.Error, "TLS handshake after STARTTLS: ") {
					t.Fatalf("%+v", r)
				}
			}},
		{"greeting refuses", &fakeServer{Greeting: "554 5.7.1 go away\r\n"}, nil, func(t *testing.T, r Result) {
			if r.OK() || !r.Connected || r.Banner != "554 5.7.1 go away" || !strings.Contains(r.Error, "refused the session") {
				t.Fatalf("%+v", r)
			}
		}},
		{"silent server times out", &fakeServer{}, func(o *Options) { o.Timeout = 300 * time.Millisecond }, func(t *testing.T, r Result) {
			if r.OK() || !r.Connected || !strings.Contains(r.Error, "timeout") {
				t.Fatalf("%+v", r)
			}
		}},
		{"--no-tls ignores STARTTLS", starttlsServer(), func(o *Options) { o.Mode = tlspolicy.ModeNone }, func(t *testing.T, r Result) {
			if !r.OK() || r.Mode != "none" || r.TLS != nil || !r.StartTLSOffered {
				t.Fatalf("%+v", r)
			}
			noWarning(t, r, "STARTTLS not offered")
			for _, l := range r.Transcript {
				if strings.HasPrefix(l, "C: STARTTLS") {
					t.Errorf("STARTTLS sent with --no-tls")
				}
			}
		}},
		{"REQUIRETLS offered over TLS, the same certificate without SNI", withEHLOTLS(starttlsServer(), "REQUIRETLS"),
			func(o *Options) { o.ServerName = fakeCertName }, func(t *testing.T, r Result) {
				if !r.OK() || !r.RequireTLSOffered || r.NoSNI == nil || !r.NoSNI.Presented || !r.NoSNI.SameCertificate || !r.NoSNI.NameMatches {
					t.Fatalf("%+v / %+v", r, r.NoSNI)
				}
				noWarning(t, r, "SNI")
			}},
		{"REQUIRETLS before TLS only does not count", withEHLO(starttlsServer(), "REQUIRETLS"), nil, func(t *testing.T, r Result) {
			if !r.OK() || r.RequireTLSOffered {
				t.Fatalf("%+v", r)
			}
		}},
		{"no SNI sent to an address: no second handshake", starttlsServer(), nil, func(t *testing.T, r Result) {
			if !r.OK() || r.TLS.ServerName != "" || r.NoSNI != nil {
				t.Fatalf("%+v", r)
			}
		}},
		{"handshake without SNI fails", &fakeServer{Greeting: "220 x\r\n", EHLO: []string{"STARTTLS"}, StartTLS: "220 go\r\n", RefuseNoSNI: true},
			func(o *Options) { o.ServerName = fakeCertName }, func(t *testing.T, r Result) {
				if !r.OK() || r.TLS == nil || r.NoSNI == nil || r.NoSNI.Error == "" || r.NoSNI.Presented {
					t.Fatalf("%+v / %+v", r, r.NoSNI)
				}
				wantWarning(t, r, "TLS without SNI failed")
			}},
		{"another certificate without SNI, implicit TLS", &fakeServer{Greeting: "220 x\r\n", Implicit: true, NoSNICert: otherCert(t)},
			func(o *Options) { o.ServerName, o.Mode = fakeCertName, tlspolicy.ModeImplicit }, func(t *testing.T, r Result) {
				n := r.NoSNI
				if !r.OK() || n == nil || !n.Presented || n.SameCertificate || n.NameMatches || n.Error != "" {
					t.Fatalf("%+v / %+v", r, n)
				}
			}},
		{"TLS 1.1 is reported", &fakeServer{Greeting: "220 old\r\n", EHLO: []string{"STARTTLS"}, StartTLS: "220 go\r\n",
			MaxVersion: tls.VersionTLS11}, nil, func(t *testing.T, r Result) {
			if !r.OK() || r.TLS == nil || r.TLS.Version != "TLS 1.1" {
				t.Fatalf("%+v", r)
			}
			wantWarning(t, r, "TLS 1.1 negotiated")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := tt.server.start(t, cert)
			opts := testOptions()
			if tt.opts != nil {
				tt.opts(&opts)
			}
			r := Port(context.Background(), "127.0.0.1", port, opts)
			if t.Failed() {
				return
			}
			tt.check(t, r)
			if t.Failed() {
				t.Logf("transcript:\n%s", strings.Join(r.Transcript, "\n"))
			}
		})
	}
}

func wantWarning(t *testing.T, r Result, substr string) {
	t.Helper()
	for _, w := range r.Warnings {
		if strings.Contains(w, substr) {
			return
		}
	}
	t.Errorf("no warning containing %q in %q", substr, r.Warnings)
}

func noWarning(t *testing.T, r Result, substr string) {
	t.Helper()
	for _, w := range r.Warnings {
		if strings.Contains(w, substr) {
			t.Errorf("unexpected warning %q", w)
		}
	}
}

func TestConnectionRefused(t *testing.T) {
	r := Port(context.Background(), "127.0.0.1", closedPort(t), testOptions())
	if r.Connected || r.OK() || !strings.HasSuffix(r.Error, ": connection refused") {
		t.Fatalf("%+v", r)
	}
	if got := (Report{Results: []Result{r}}).Exit(true, true); got != ExitFailure {
		t.Errorf("exit %d, want %d (an unreachable port is not a TLS failure)", got, ExitFailure)
	}
}

func TestTranscript(t *testing.T) {
	port := starttlsServer().start(t, fakeCert(t))
	r := Port(context.Background(), "127.0.0.1", port, testOptions())
	tr := strings.Join(r.Transcript, "\n")
	for _, want := range []string{
		"* connected to 127.0.0.1:" + portString(port),
		"S: 220 fake.probe.test ESMTP ready",
		"C: EHLO probe.test",
		"S: 250-STARTTLS",
		"C: STARTTLS",
		"* TLS handshake done: TLS 1.3",
		"S: 250 AUTH PLAIN LOGIN SCRAM-SHA-256",
		"C: QUIT",
	} {
		if !strings.Contains(tr, want) {
			t.Errorf("transcript lacks %q:\n%s", want, tr)
		}
	}
	opts := testOptions()
	opts.Transcript = false
	if r := Port(context.Background(), "127.0.0.1", port, opts); r.Transcript != nil {
		t.Errorf("transcript kept without being asked for")
	}
}

// TestRunOrder: ports are probed in parallel, results come back in order.
func TestRunOrder(t *testing.T) {
	cert := fakeCert(t)
	a := starttlsServer().start(t, cert)
	b := (&fakeServer{Greeting: "220 b\r\n"}).start(t, cert)
	c := closedPort(t)
	rep := Run(context.Background(), []Target{{Host: "127.0.0.1", Ports: []int{a, c}}, {Host: "127.0.0.1", Ports: []int{b}}}, testOptions())
	if len(rep.Results) != 3 || rep.Results[0].Port != a || rep.Results[1].Port != c || rep.Results[2].Port != b {
		t.Fatalf("%+v", rep.Results)
	}
	if !rep.Results[0].OK() || rep.Results[1].OK() || !rep.Results[2].OK() {
		t.Errorf("ok: %v %v %v", rep.Results[0].Error, rep.Results[1].Error, rep.Results[2].Error)
	}
}

func TestPlanFor(t *testing.T) {
	tests := []struct {
		port int
		opts Options
		want string
	}{
		{25, Options{}, "STARTTLS when offered, any certificate accepted (policy opportunistic from smtpkit probe)"},
		{465, Options{}, "implicit TLS, TLS required, any certificate accepted (policy opportunistic from smtpkit probe; port 465 is implicit TLS)"},
		{587, Options{RequireTLS: true}, "STARTTLS when offered, TLS required, any certificate accepted (policy required from smtpkit probe)"},
		{25, Options{RequireValidCert: true, ServerName: "mx.example.net"}, "STARTTLS when offered, TLS required, certificate must be valid for mx.example.net (policy verify from smtpkit probe)"},
		{2525, Options{Mode: tlspolicy.ModeImplicit}, "implicit TLS, TLS required, any certificate accepted (policy opportunistic from smtpkit probe; --implicit-tls)"},
		{465, Options{Mode: tlspolicy.ModeStartTLS}, "STARTTLS when offered, any certificate accepted (policy opportunistic from smtpkit probe; port 465 is implicit TLS; --starttls)"},
		{465, Options{Mode: tlspolicy.ModeNone}, "no TLS (policy none from smtpkit probe; port 465 is implicit TLS; --no-tls)"},
	}
	for _, tt := range tests {
		if got := PlanFor("mx.example.net", tt.port, tt.opts).String(); got != tt.want {
			t.Errorf("port %d %+v:\n got %q\nwant %q", tt.port, tt.opts, got, tt.want)
		}
	}
}

func TestExit(t *testing.T) {
	valid := &TLSInfo{Valid: true}
	invalid := &TLSInfo{}
	ok := func(tls *TLSInfo) Result { return Result{Connected: true, TLS: tls} }
	tests := []struct {
		name       string
		results    []Result
		reqTLS     bool
		reqCert    bool
		want       int
		unmetCount int
	}{
		{"all good", []Result{ok(valid), ok(nil)}, false, false, ExitOK, 0},
		{"unreachable", []Result{ok(valid), {Error: "connect: connection refused"}}, true, true, ExitFailure, 0},
		{"protocol failure", []Result{{Connected: true, Error: "EHLO: 421"}}, false, false, ExitFailure, 0},
		{"require-tls met", []Result{ok(invalid)}, true, false, ExitOK, 0},
		{"require-tls not met", []Result{ok(valid), ok(nil)}, true, false, ExitNoTLS, 1},
		{"require-valid-cert not met", []Result{ok(invalid)}, true, true, ExitInvalidCert, 1},
		{"no TLS fails both", []Result{ok(nil)}, true, true, ExitInvalidCert, 2},
		{"failed handshake: failure and no TLS", []Result{{Connected: true, Error: "TLS handshake"}}, true, false, ExitNoTLS, 1},
		{"require-valid-cert met", []Result{ok(valid)}, true, true, ExitOK, 0},
	}
	for _, tt := range tests {
		rep := Report{Results: tt.results}
		if got := rep.Exit(tt.reqTLS, tt.reqCert); got != tt.want {
			t.Errorf("%s: exit %d, want %d", tt.name, got, tt.want)
		}
		if got := rep.Unmet(tt.reqTLS, tt.reqCert); len(got) != tt.unmetCount {
			t.Errorf("%s: unmet %q", tt.name, got)
		}
	}
}

func TestParseTarget(t *testing.T) {
	all := DefaultPorts()
	tests := []struct {
		in    string
		host  string
		ports []int
		ok    bool
	}{
		{"mx.example.net", "mx.example.net", all, true},
		{"mx.example.net:587", "mx.example.net", []int{587}, true},
		{"127.0.0.1", "127.0.0.1", all, true},
		{"127.0.0.1:2525", "127.0.0.1", []int{2525}, true},
		{"[::1]:465", "::1", []int{465}, true},
		{"[::1]", "::1", all, true},
		{"::1", "::1", all, true},
		{"2001:db8::1", "2001:db8::1", all, true},
		{"", "", nil, false},
		{"host:", "", nil, false},
		{"host:0", "", nil, false},
		{"host:65536", "", nil, false},
		{"host:+25", "", nil, false},
		{"host:smtp", "", nil, false},
		{":25", "", nil, false},
		{"[::1", "", nil, false},
		{"[::1]25", "", nil, false},
		{"[::1]:", "", nil, false},
		{"[127.0.0.1]:25", "", nil, false},
		{"a::b::c", "", nil, false},
		{"bad host:25", "", nil, false},
		{"exa$mple.net", "", nil, false},
	}
	for _, tt := range tests {
		got, err := ParseTarget(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseTarget(%q): %v", tt.in, err)
			continue
		}
		if tt.ok && (got.Host != tt.host || !slices.Equal(got.Ports, tt.ports)) {
			t.Errorf("ParseTarget(%q) = %+v", tt.in, got)
		}
	}
}

func TestDefaultPortsIsACopy(t *testing.T) {
	DefaultPorts()[0] = 1
	if DefaultPorts()[0] != 25 {
		t.Fatal("DefaultPorts shares its backing array")
	}
}

// Port probes one port of host. It never returns an error: every failure
// is recorded in the Result.
func Port(ctx context.Context, host string, port int, opts Options) Result {
	opts = opts.withDefaults()
	return probeJob(ctx, hostJob(host, port, opts), opts)
}

func withEHLO(f *fakeServer, ext string) *fakeServer    { f.EHLO = append(f.EHLO, ext); return f }
func withEHLOTLS(f *fakeServer, ext string) *fakeServer { f.EHLOTLS = append(f.EHLOTLS, ext); return f }

// otherCert is a certificate for another name than fakeCertName.
func otherCert(t *testing.T) *tls.Certificate {
	c := testcert.New(t, "default.probe.test")
	return &c
}
