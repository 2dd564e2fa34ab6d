package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"smtpkit/internal/control"
	"smtpkit/internal/dns"
	"smtpkit/internal/tlsrpt"
)

// rptDNS answers the _smtp._tls lookups of the test.
type rptDNS map[string][]string

func (r rptDNS) LookupTXT(_ context.Context, name string) (dns.TXTAnswer, error) {
	recs, ok := r[name]
	if !ok {
		return dns.TXTAnswer{}, fmt.Errorf("%w: servfail", dns.ErrTemporary)
	}
	return dns.TXTAnswer{Records: recs, NXDomain: len(recs) == 0}, nil
}

func (rptDNS) LookupIP(context.Context, string) (dns.IPAnswer, error) {
	return dns.IPAnswer{NXDomain: true}, nil
}

// tlsrptTestServer runs the control socket with the tlsrpt operations
// over a Store and Reporter, and returns the config file, the store and
// the mails the reporter handed on.
func tlsrptTestServer(t *testing.T, enabled bool) (string, *tlsrpt.Store, func() []string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "r") // short path: unix socket names are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	dataDir := filepath.Join(dir, "data")
	cfgFile := filepath.Join(dir, "smtpkit.toml")
	cfg := "hostname = \"mx.example.com\"\ndata_dir = \"" + dataDir + "\"\n\n[[domain]]\nname = \"example.com\"\n\n" +
		"[[listener]]\naddress = \"127.0.0.1:0\"\nrole = \"mx\"\ntls = \"none\"\n"
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := tlsrpt.NewStore(tlsrpt.StoreOptions{Dir: filepath.Join(dataDir, "tlsrpt")})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var mails []string
	mail := func(_ context.Context, from string, to []string, msg []byte) error {
		mu.Lock()
		defer mu.Unlock()
		mails = append(mails, from+" -> "+strings.Join(to, ","))
		return nil
	}
	res := rptDNS{"_smtp._tls.a.example": {"v=TLSRPTv1; rua=mailto:tls@a.example"}, "_smtp._tls.b.example": {}}
	var rep *reports
	if enabled {
		rep = &reports{store: store, reporter: tlsrpt.NewReporter(tlsrpt.ReporterOptions{
			Store: store, Resolver: res, Mail: mail, From: "noreply-tlsrpt@mx.example.com", Submitter: "mx.example.com"})}
	}
	l, err := control.Listen(controlSocket(dataDir))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Serve(ctx, tlsrptControl{next: queueHandler{log: log}, reports: rep, log: log}) }()
	t.Cleanup(func() {
		cancel()
		<-done
		store.Close()
	})
	for i := 0; ; i++ { // until it listens; bounded, no sleeping
		if c, err := net.Dial("unix", controlSocket(dataDir)); err == nil {
			c.Close()
			break
		}
		if i > 100000 {
			t.Fatal("control socket did not come up")
		}
	}
	return cfgFile, store, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), mails...) }
}

func runTLSRPTCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(append([]string{"tlsrpt"}, args...), Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

func TestTLSRPTCommand(t *testing.T) {
	cfg, store, mails := tlsrptTestServer(t, true)
	if code, out, errs := runTLSRPTCmd("-config", cfg); code != 0 || out != "no sessions counted since the last report\n" {
		t.Fatalf("empty: %d %q %s", code, out, errs)
	}
	store.Record(tlsrpt.Session{Domain: "a.example", Policy: tlsrpt.PolicySTS, Strings: []string{"version: STSv1", "mode: enforce", "mx: mx.a.example"}, MXHost: "mx.a.example"})
	store.Record(tlsrpt.Session{Domain: "a.example", Policy: tlsrpt.PolicySTS, Strings: []string{"version: STSv1", "mode: enforce", "mx: mx.a.example"},
		MXHost: "mx.a.example", ReceivingIP: netip.MustParseAddr("192.0.2.1"), Result: tlsrpt.CertificateExpired})
	store.Record(tlsrpt.Session{Domain: "b.example"})

	code, out, errs := runTLSRPTCmd("-config", cfg)
	if code != 0 {
		t.Fatalf("list: %d %s", code, errs)
	}
	for _, want := range []string{"DOMAIN", "a.example", "sts", "certificate-expired  mx.a.example 192.0.2.1", "b.example", "no-policy-found"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if code, out, _ := runTLSRPTCmd("-config", cfg, "-json"); code != 0 || !strings.Contains(out, `"total-failure-session-count":1`) {
		t.Errorf("-json: %d %s", code, out)
	}

	code, out, errs = runTLSRPTCmd("-config", cfg, "-send")
	if code != 0 {
		t.Fatalf("-send: %d %s %s", code, out, errs)
	}
	if !strings.Contains(out, "a.example") || !strings.Contains(out, "(1 ok, 1 failed): sent to mailto:tls@a.example") ||
		!strings.Contains(out, "b.example") || !strings.Contains(out, "not sent: tlsrpt: no TLS-RPT record") {
		t.Errorf("-send output:\n%s", out)
	}
	if got := mails(); len(got) != 1 || got[0] != "noreply-tlsrpt@mx.example.com -> tls@a.example" {
		t.Errorf("mails: %q", got)
	}
	if code, out, _ := runTLSRPTCmd("-config", cfg); code != 0 || out != "no sessions counted since the last report\n" {
		t.Errorf("after -send: %d %q", code, out)
	}
	if code, out, _ := runTLSRPTCmd("-config", cfg, "-send"); code != 0 || out != "nothing to report\n" {
		t.Errorf("second -send: %d %q", code, out)
	}
	if code, _, _ := runTLSRPTCmd("-config", cfg, "extra"); code != 2 {
		t.Errorf("extra argument: exit %d, want 2", code)
	}
}

func TestTLSRPTCommandDisabled(t *testing.T) {
	cfg, _, _ := tlsrptTestServer(t, false)
	if code, _, errs := runTLSRPTCmd("-config", cfg); code != 1 || !strings.Contains(errs, "enabled = false") {
		t.Errorf("disabled: %d %q", code, errs)
	}
}
