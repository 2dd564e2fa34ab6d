package cli

import (
	"log/slog"
	"slices"
	"testing"

	"smtpkit/internal/config"
	"smtpkit/internal/dns"
	"smtpkit/internal/inbound"
)

// TestWireVerify: [verify] off wires nothing (mail is stored as before);
// on, the switches become what inbound enforces and leaves out, and our
// authserv-id is the one whose fields are removed.
func TestWireVerify(t *testing.T) {
	res, err := dns.New(dns.Options{Servers: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		v       config.Verify
		wired   bool
		enforce bool
		omit    []string
	}{
		{name: "off", v: config.Verify{SPF: true, DKIM: true, DMARC: "enforce", IPRev: true}},
		{name: "header", v: config.Verify{Enabled: true, SPF: true, DKIM: true, DMARC: "header", IPRev: true}, wired: true},
		{name: "enforce", v: config.Verify{Enabled: true, SPF: true, DKIM: true, DMARC: "enforce", IPRev: true}, wired: true, enforce: true},
		{name: "switches off", v: config.Verify{Enabled: true, DMARC: "off"}, wired: true, omit: []string{"spf", "dkim", "dmarc", "iprev"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Hostname, cfg.DataDir, cfg.Verify = "mx.example.com", t.TempDir(), tt.v
			var in inbound.Options
			if err := wireVerify(cfg, res, &in, slog.New(slog.DiscardHandler)); err != nil {
				t.Fatal(err)
			}
			if got := in.Verify != nil; got != tt.wired {
				t.Fatalf("wired %v, want %v", got, tt.wired)
			}
			if !tt.wired {
				return
			}
			if in.Verify.Enforce != tt.enforce || !slices.Equal(in.Verify.Omit, tt.omit) {
				t.Errorf("enforce %v omit %q, want %v %q", in.Verify.Enforce, in.Verify.Omit, tt.enforce, tt.omit)
			}
			if !in.Verify.IsOurs("mx.example.com; spf=pass") || in.Verify.IsOurs("other.example; spf=pass") {
				t.Error("IsOurs does not go by our authserv-id")
			}
		})
	}
}
