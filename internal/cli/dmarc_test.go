package cli

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"smtpkit/internal/authres"
	"smtpkit/internal/config"
	"smtpkit/internal/control"
	"smtpkit/internal/dmarcrpt"
)

// dmarcTestServer runs the control socket with the dmarc operations in
// front of the tlsrpt and queue ones, as serve chains them, and returns
// the config file, the store and the mails the reporter handed on.
func dmarcTestServer(t *testing.T, enabled bool) (string, *dmarcrpt.Store, func() []string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "d") // short path: unix socket names are limited
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
	store, err := dmarcrpt.NewStore(dmarcrpt.StoreOptions{Dir: filepath.Join(dataDir, "dmarc")})
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
	var rep *dmarcReports
	if enabled {
		rep = &dmarcReports{store: store}
		c := config.Default()
		c.Hostname = "mx.example.com"
		rep.wire(c, rptDNS{}, mail, log)
	}
	l, err := control.Listen(controlSocket(dataDir))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	h := dmarcControl{next: tlsrptControl{next: queueHandler{log: log}, log: log}, reports: rep, log: log}
	go func() { done <- l.Serve(ctx, h) }()
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

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(args, Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

func TestDMARCCommand(t *testing.T) {
	cfg, store, mails := dmarcTestServer(t, true)
	if code, out, errs := runCmd("dmarc", "-config", cfg); code != 0 || out != "no messages recorded since the last report\n" {
		t.Fatalf("empty: %d %q %s", code, out, errs)
	}
	r := authres.Result{SPF: "pass", SPFDomain: "a.example", FromDomain: "a.example", IP: netip.MustParseAddr("192.0.2.9"),
		DMARC: authres.DMARC{Result: "pass", Policy: "reject", Domain: "a.example", Sampled: true, SPFAligned: true,
			Record: "v=DMARC1; p=reject; rua=mailto:dmarc@a.example"}}
	store.Record(r, "none")
	store.Record(r, "none")
	r.DMARC.Domain, r.FromDomain, r.DMARC.Record = "b.example", "b.example", "v=DMARC1; p=none; rua=mailto:d@outside.example"
	store.Record(r, "none")

	code, out, errs := runCmd("dmarc", "-config", cfg)
	for _, want := range []string{"DOMAIN", "a.example", "192.0.2.9", "dkim=fail spf=pass", "b.example"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("table lacks %q (%d %s):\n%s", want, code, errs, out)
		}
	}
	if code, out, _ := runCmd("dmarc", "-config", cfg, "-json"); code != 0 || !strings.Contains(out, `"count":2`) {
		t.Errorf("-json: %d %s", code, out)
	}
	// The tlsrpt operations still reach their handler behind ours.
	if code, _, errs := runCmd("tlsrpt", "-config", cfg); code != 1 || !strings.Contains(errs, "[tlsrpt] enabled = false") {
		t.Errorf("tlsrpt through the chain: %d %q", code, errs)
	}

	code, out, errs = runCmd("dmarc", "-config", cfg, "-send")
	if code != 1 { // b.example's §7.1 lookup fails (servfail): kept
		t.Fatalf("-send: %d %s %s", code, out, errs)
	}
	if !strings.Contains(out, "a.example") || !strings.Contains(out, "(2 messages): sent to mailto:dmarc@a.example") ||
		!strings.Contains(out, "b.example") || !strings.Contains(out, "kept for the next send") {
		t.Errorf("-send output:\n%s", out)
	}
	if got := mails(); len(got) != 1 || got[0] != "noreply-dmarc@mx.example.com -> dmarc@a.example" {
		t.Errorf("mails: %q", got)
	}
	if code, _, _ := runCmd("dmarc", "-config", cfg, "extra"); code != 2 {
		t.Errorf("extra argument: exit %d, want 2", code)
	}
}

func TestDMARCCommandDisabled(t *testing.T) {
	cfg, _, _ := dmarcTestServer(t, false)
	if code, _, errs := runCmd("dmarc", "-config", cfg); code != 1 || !strings.Contains(errs, "[dmarc_reports] enabled = false") {
		t.Errorf("disabled: %d %q", code, errs)
	}
}
