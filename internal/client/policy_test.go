package client

import (
	"errors"
	"strings"
	"testing"

	"smtpkit/internal/tlspolicy"
)

// failureOf maps a StartTLS error to the tlspolicy vocabulary, as the
// delivery courier does.
func failureOf(err error) tlspolicy.Failure {
	var te *TLSError
	switch {
	case errors.Is(err, ErrNoStartTLS):
		return tlspolicy.NotOffered
	case errors.As(err, &te) && te.Refused:
		return tlspolicy.Refused
	case errors.As(err, &te) && te.Certificate():
		return tlspolicy.Certificate
	}
	return tlspolicy.Handshake
}

// TestPlansAgainstSelfSignedServer runs each policy's plan through a real
// STARTTLS handshake with a server whose certificate is self-signed.
func TestPlansAgainstSelfSignedServer(t *testing.T) {
	tests := []struct {
		policy   tlspolicy.Policy
		offered  bool
		wantTLS  bool
		failure  tlspolicy.Failure
		action   tlspolicy.Action
		wantText string
	}{
		{tlspolicy.Opportunistic, true, true, 0, 0, ""},
		{tlspolicy.Required, true, true, 0, 0, ""},
		{tlspolicy.Verify, true, false, tlspolicy.Certificate, tlspolicy.Defer, "451 4.7.5 server certificate not verified for mx.test"},
		{tlspolicy.Required, false, false, tlspolicy.NotOffered, tlspolicy.Defer, "451 4.7.4 TLS is required (required), but STARTTLS not offered"},
		{tlspolicy.Opportunistic, false, false, tlspolicy.NotOffered, tlspolicy.ContinuePlain, ""},
	}
	for _, tt := range tests {
		name := tt.policy.String()
		if !tt.offered {
			name += " not offered"
		}
		t.Run(name, func(t *testing.T) {
			steps := []step{{send: greeting}, ehloStep("PIPELINING")}
			if tt.offered {
				steps = []step{{send: greeting}, ehloStep("STARTTLS"),
					{recv: []string{"STARTTLS"}, send: "220 go\r\n", tls: tt.wantTLS || tt.failure == tlspolicy.Certificate}}
				if tt.wantTLS {
					steps = append(steps, ehloStep("PIPELINING"), quitStep())
				}
			} else {
				steps = append(steps, quitStep())
			}
			f := startFake(t, steps)
			c := session(t, f, nil)
			plan := tlspolicy.Decide(tlspolicy.Input{Policy: tt.policy, Host: "mx.test", Port: 25})
			err := c.StartTLS(plan.ClientConfig(nil))
			st, on := c.TLSState()
			if on != tt.wantTLS || (tt.wantTLS && (err != nil || !st.HandshakeComplete)) {
				t.Fatalf("TLS %v, err %v", on, err)
			}
			if tt.wantTLS {
				finish(t, f, c)
				return
			}
			fl := failureOf(err)
			if fl != tt.failure || plan.OnFailure(fl) != tt.action {
				t.Fatalf("err %v → %v → %v, want %v → %v", err, fl, plan.OnFailure(fl), tt.failure, tt.action)
			}
			if tt.wantText != "" {
				if got := plan.FailureError(fl, err).Error(); !strings.HasPrefix(got, tt.wantText) {
					t.Errorf("error %q, want prefix %q", got, tt.wantText)
				}
			}
			if tt.action == tlspolicy.ContinuePlain {
				finish(t, f, c)
				return
			}
			c.Close()
			f.wait()
		})
	}
}
