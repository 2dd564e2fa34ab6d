package cli

import (
	"testing"

	"smtpkit/internal/config"
	"smtpkit/internal/server"
	"smtpkit/internal/tlspolicy"
)

// TestTLSVocabulary: one vocabulary for TLS across the server's listeners,
// the configuration, tlspolicy, the probe and bench (docs/tls-policy.md).
// The words of a listener's tls are tlspolicy's: the policies none,
// opportunistic and required mean on a listener what they mean outbound,
// and implicit is the mode. cli is the one package that sees them all.
func TestTLSVocabulary(t *testing.T) {
	listener := []struct {
		word string
		want server.TLSMode
	}{
		{tlspolicy.None.String(), server.TLSNone},
		{tlspolicy.Opportunistic.String(), server.TLSOpportunistic},
		{tlspolicy.Required.String(), server.TLSRequired},
		{tlspolicy.ModeImplicit.String(), server.TLSImplicit},
	}
	for _, tt := range listener {
		got, err := server.ParseTLSMode(tt.word)
		if err != nil || got != tt.want || got.String() != tt.word {
			t.Errorf("listener tls %q: %v, %v", tt.word, got, err)
		}
	}
	words := []struct{ config, tlspolicy string }{
		{config.TLSNone, tlspolicy.None.String()},
		{config.TLSOpportunistic, tlspolicy.Opportunistic.String()},
		{config.TLSRequired, tlspolicy.Required.String()},
		{config.TLSImplicit, tlspolicy.ModeImplicit.String()},
		{config.OutTLSNone, tlspolicy.None.String()},
		{config.OutTLSOpportunistic, tlspolicy.Opportunistic.String()},
		{config.OutTLSRequired, tlspolicy.Required.String()},
		{config.OutTLSVerify, tlspolicy.Verify.String()},
	}
	for _, w := range words {
		if w.config != w.tlspolicy {
			t.Errorf("config says %q where tlspolicy says %q", w.config, w.tlspolicy)
		}
	}
}
