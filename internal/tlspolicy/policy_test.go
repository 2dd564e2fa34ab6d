package tlspolicy

import (
	"crypto/tls"
	"errors"
	"strings"
	"testing"
)

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		in   string
		want Policy
		ok   bool
	}{
		{"none", None, true},
		{"opportunistic", Opportunistic, true},
		{"Required", Required, true},
		{"VERIFY", Verify, true},
		{"may", None, false},
		{"", None, false},
	}
	for _, tt := range tests {
		got, err := ParsePolicy(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("ParsePolicy(%q) = %v, %v", tt.in, got, err)
		}
		if tt.ok && !strings.EqualFold(got.String(), tt.in) {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
	if s := Policy(42).String(); s != "Policy(42)" {
		t.Errorf("unknown policy String = %q", s)
	}
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name string
		in   Input
		want Plan
	}{
		{"none", Input{None, "mx.example.net", 25, "route example.net"},
			Plan{Policy: None, ServerName: "mx.example.net", Reason: "policy none from route example.net"}},
		{"opportunistic", Input{Opportunistic, "mx.example.net", 25, ""},
			Plan{Policy: Opportunistic, StartTLS: true, ServerName: "mx.example.net", Reason: "policy opportunistic"}},
		{"required", Input{Required, "mx.example.net.", 587, "default"},
			Plan{Policy: Required, StartTLS: true, Require: true, ServerName: "mx.example.net", Reason: "policy required from default"}},
		{"verify", Input{Verify, "mx.example.net", 25, "route example.net"},
			Plan{Policy: Verify, StartTLS: true, Require: true, VerifyName: "mx.example.net", ServerName: "mx.example.net",
				Reason: "policy verify from route example.net"}},
		{"verify on 465", Input{Verify, "smtp.example.net", 465, ""},
			Plan{Policy: Verify, Implicit: true, Require: true, VerifyName: "smtp.example.net", ServerName: "smtp.example.net",
				Reason: "policy verify; port 465 is implicit TLS"}},
		{"none on 465 still TLS", Input{None, "smtp.example.net", 465, ""},
			Plan{Policy: None, Implicit: true, Require: true, ServerName: "smtp.example.net",
				Reason: "policy none; port 465 is implicit TLS"}},
		{"IP literal: no SNI", Input{Opportunistic, "[192.0.2.1]", 25, ""},
			Plan{Policy: Opportunistic, StartTLS: true, Reason: "policy opportunistic"}},
		{"unknown policy fails safe", Input{Policy(9), "mx.example.net", 25, ""},
			Plan{Policy: Verify, StartTLS: true, Require: true, VerifyName: "mx.example.net", ServerName: "mx.example.net",
				Reason: "policy verify"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Decide(tt.in); got != tt.want {
				t.Errorf("Decide(%+v)\n got %+v\nwant %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestClientConfig(t *testing.T) {
	tests := []struct {
		in       Input
		insecure bool
		name     string
	}{
		{Input{Opportunistic, "mx.example.net", 25, ""}, true, "mx.example.net"},
		{Input{Required, "mx.example.net", 25, ""}, true, "mx.example.net"},
		{Input{Verify, "mx.example.net.", 25, ""}, false, "mx.example.net"},
		{Input{Verify, "[192.0.2.1]", 25, ""}, false, "192.0.2.1"},
	}
	for _, tt := range tests {
		cfg := Decide(tt.in).ClientConfig(nil)
		if cfg.InsecureSkipVerify != tt.insecure || cfg.ServerName != tt.name || cfg.MinVersion != tls.VersionTLS12 {
			t.Errorf("%+v: insecure=%v name=%q min=%x", tt.in, cfg.InsecureSkipVerify, cfg.ServerName, cfg.MinVersion)
		}
	}
}

func TestOnFailure(t *testing.T) {
	tests := []struct {
		policy Policy
		port   int
		f      Failure
		want   Action
	}{
		{Opportunistic, 25, NotOffered, ContinuePlain},
		{Opportunistic, 25, Refused, ContinuePlain},
		{Opportunistic, 25, Handshake, RetryPlain},
		{Opportunistic, 25, Certificate, RetryPlain},
		{Required, 25, NotOffered, Defer},
		{Required, 25, Refused, Defer},
		{Required, 25, Handshake, Defer},
		{Verify, 25, NotOffered, Defer},
		{Verify, 25, Certificate, Defer},
		{Opportunistic, 465, Handshake, Defer},
		{None, 25, NotOffered, ContinuePlain},
	}
	for _, tt := range tests {
		p := Decide(Input{Policy: tt.policy, Host: "mx.example.net", Port: tt.port})
		if got := p.OnFailure(tt.f); got != tt.want {
			t.Errorf("%v port %d, %v: %v, want %v", tt.policy, tt.port, tt.f, got, tt.want)
		}
	}
	// The downgraded retry never tries TLS again, so it cannot fall back twice.
	retry := Decide(Input{Policy: Opportunistic, Host: "mx.example.net", Port: 25}).WithoutTLS()
	if retry.UsesTLS() || retry.OnFailure(Handshake) != ContinuePlain || !strings.Contains(retry.Reason, "retry without TLS") {
		t.Errorf("retry plan %+v", retry)
	}
}

func TestFailureError(t *testing.T) {
	cause := errors.New("x509: unknown authority")
	tests := []struct {
		f    Failure
		enh  string
		text string
	}{
		{NotOffered, "4.7.4", "STARTTLS not offered"},
		{Refused, "4.7.4", "STARTTLS refused"},
		{Handshake, "4.7.5", "handshake failed"},
		{Certificate, "4.7.5", "not verified for mx.example.net"},
	}
	p := Decide(Input{Policy: Verify, Host: "mx.example.net", Port: 25})
	for _, tt := range tests {
		e := p.FailureError(tt.f, cause)
		if !e.Temporary() || string(e.Reply.Enhanced) != tt.enh || !strings.Contains(e.Error(), tt.text) || !errors.Is(e, cause) {
			t.Errorf("%v: %v", tt.f, e)
		}
	}
}

func TestPlanString(t *testing.T) {
	tests := []struct {
		in   Input
		want string
	}{
		{Input{None, "h", 25, ""}, "no TLS (policy none)"},
		{Input{Opportunistic, "h", 25, ""}, "STARTTLS when offered, certificate not verified (policy opportunistic)"},
		{Input{Verify, "h", 25, "route x"}, "STARTTLS when offered, TLS required, certificate must be valid for h (policy verify from route x)"},
		{Input{Required, "h", 465, ""}, "implicit TLS, TLS required, certificate not verified (policy required; port 465 is implicit TLS)"},
	}
	for _, tt := range tests {
		if got := Decide(tt.in).String(); got != tt.want {
			t.Errorf("%+v: %q", tt.in, got)
		}
	}
}
