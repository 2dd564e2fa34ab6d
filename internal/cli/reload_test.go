package cli

import (
	"testing"

	"smtpkit/internal/certs"
	"smtpkit/internal/config"
)

// TestAppliesLive: the limits (shutdown_grace included) and the local
// domains apply on reload; configured certificate files do unless the
// server runs on the self-signed development certificate or the new list
// is empty; everything else needs a restart.
func TestAppliesLive(t *testing.T) {
	withCerts := config.DevDefault()
	withCerts.TLS.Certificates = []config.Certificate{{Cert: "c.pem", Key: "k.pem"}}
	none := config.DevDefault()
	files := &daemon{certs: &certs.Store{}}
	selfSigned := &daemon{certs: &certs.Store{}, selfSign: true}
	for _, tc := range []struct {
		d    *daemon
		key  string
		cfg  config.Config
		want bool
	}{
		{files, "limits.shutdown_grace", none, true},
		{files, "limits.message_size", none, true},
		{files, "limits.session_timeout", none, true},
		{files, "limits.min_data_rate", none, true},
		{files, "limits.stress_command_timeout", none, true},
		{files, "domain", none, true},
		{files, "account_limits.messages_per_hour", none, true},
		{files, "account_limits.recipients_per_day", none, true},
		{files, "trusted_networks", none, false},
		{files, "tls.certificate", withCerts, true},
		{files, "tls.certificate", none, false},
		{selfSigned, "tls.certificate", withCerts, false},
		{&daemon{}, "tls.certificate", withCerts, false},
		{files, "tls.self_signed", none, false},
		{files, "listener", none, false},
		{files, "hostname", none, false},
		{files, "data_dir", none, false},
		{files, "maildir.sync", none, false},
		{files, "maildir.checkpoint", none, false},
		{files, "log.level", none, false},
		{files, "outbound.tls", none, false},
		{files, "route", none, false},
		{files, "metrics.address", none, false},
		{files, "limits.no_such_key", none, false},
	} {
		if got := tc.d.appliesLive(tc.key, tc.cfg); got != tc.want {
			t.Errorf("appliesLive(%s, self-signed %v, %d certificates) = %v, want %v",
				tc.key, tc.d.selfSign, len(tc.cfg.TLS.Certificates), got, tc.want)
		}
	}
}

// TestPostmasterDomain: the first local domain, else the hostname.
func TestPostmasterDomain(t *testing.T) {
	cfg := config.DevDefault()
	cfg.Hostname = "mx.example"
	cfg.Domains = []config.Domain{{Name: "b.example"}, {Name: "a.example"}}
	if got := postmasterDomain(cfg); got != "b.example" {
		t.Errorf("postmasterDomain = %q, want b.example", got)
	}
	cfg.Domains = nil
	if got := postmasterDomain(cfg); got != "mx.example" {
		t.Errorf("postmasterDomain without domains = %q, want mx.example", got)
	}
}
