package tlspolicy

import (
	"crypto/tls"
	"errors"
	"reflect"
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
		{"none", Input{Policy: None, Host: "mx.example.net", Port: 25, Source: "route example.net"},
			Plan{Policy: None, ServerName: "mx.example.net", Reason: "policy none from route example.net"}},
		{"opportunistic", Input{Policy: Opportunistic, Host: "mx.example.net", Port: 25},
			Plan{Policy: Opportunistic, StartTLS: true, ServerName: "mx.example.net", Reason: "policy opportunistic"}},
		{"required", Input{Policy: Required, Host: "mx.example.net.", Port: 587, Source: "default"},
			Plan{Policy: Required, StartTLS: true, Require: true, ServerName: "mx.example.net", Reason: "policy required from default"}},
		{"verify", Input{Policy: Verify, Host: "mx.example.net", Port: 25, Source: "route example.net"},
			Plan{Policy: Verify, StartTLS: true, Require: true, VerifyName: "mx.example.net", ServerName: "mx.example.net",
				Reason: "policy verify from route example.net"}},
		{"verify on 465", Input{Policy: Verify, Host: "smtp.example.net", Port: 465},
			Plan{Policy: Verify, Implicit: true, Require: true, VerifyName: "smtp.example.net", ServerName: "smtp.example.net",
				Reason: "policy verify; port 465 is implicit TLS"}},
		{"none on 465 still TLS", Input{Policy: None, Host: "smtp.example.net", Port: 465},
			Plan{Policy: None, Implicit: true, Require: true, ServerName: "smtp.example.net",
				Reason: "policy none; port 465 is implicit TLS"}},
		{"IP literal: no SNI", Input{Policy: Opportunistic, Host: "[192.0.2.1]", Port: 25},
			Plan{Policy: Opportunistic, StartTLS: true, Reason: "policy opportunistic"}},
		{"unknown policy fails safe", Input{Policy: Policy(9), Host: "mx.example.net", Port: 25},
			Plan{Policy: Verify, StartTLS: true, Require: true, VerifyName: "mx.example.net", ServerName: "mx.example.net",
				Reason: "policy verify"}},
		// A static route's own policy overrides the default.
		{"route policy", Input{Policy: Opportunistic, Source: "outbound default", Host: "relay.example.net", Port: 587,
			Route: &Route{Domain: "example.net", HasPolicy: true, Policy: Verify}},
			Plan{Policy: Verify, StartTLS: true, Require: true, VerifyName: "relay.example.net", ServerName: "relay.example.net",
				Reason: "policy verify from route example.net"}},
		{"route without policy keeps the default", Input{Policy: Required, Source: "outbound default", Host: "relay.example.net", Port: 25,
			Route: &Route{Domain: "*"}},
			Plan{Policy: Required, StartTLS: true, Require: true, ServerName: "relay.example.net",
				Reason: "policy required from outbound default"}},
		// Relay AUTH raises the policy to required, never lowers it.
		{"AUTH raises none", Input{Policy: Opportunistic, Source: "outbound default", Host: "relay.example.net", Port: 587,
			Route: &Route{Domain: "example.net", HasPolicy: true, Policy: None, Auth: true}},
			Plan{Policy: Required, StartTLS: true, Require: true, ServerName: "relay.example.net",
				Reason: "policy required from route example.net, raised to required for AUTH"}},
		{"AUTH raises the default", Input{Policy: Opportunistic, Source: "outbound default", Host: "relay.example.net", Port: 587,
			Route: &Route{Domain: "*", Auth: true}},
			Plan{Policy: Required, StartTLS: true, Require: true, ServerName: "relay.example.net",
				Reason: "policy required from outbound default, raised to required for AUTH"}},
		{"AUTH keeps verify", Input{Policy: Verify, Source: "outbound default", Host: "relay.example.net", Port: 587,
			Route: &Route{Domain: "*", Auth: true}},
			Plan{Policy: Verify, StartTLS: true, Require: true, VerifyName: "relay.example.net", ServerName: "relay.example.net",
				Reason: "policy verify from outbound default"}},
		{"unknown route policy fails safe", Input{Policy: None, Host: "relay.example.net", Port: 25,
			Route: &Route{Domain: "example.net", HasPolicy: true, Policy: Policy(7), Auth: true}},
			Plan{Policy: Verify, StartTLS: true, Require: true, VerifyName: "relay.example.net", ServerName: "relay.example.net",
				Reason: "policy verify from route example.net"}},
		// A forced mode comes last and is named in Reason.
		{"forced implicit", Input{Policy: Opportunistic, Host: "mx.example.net", Port: 2525, Mode: ModeImplicit, ModeSource: "--implicit-tls"},
			Plan{Policy: Opportunistic, Implicit: true, Require: true, ServerName: "mx.example.net",
				Reason: "policy opportunistic; --implicit-tls"}},
		{"forced STARTTLS on 465", Input{Policy: Verify, Host: "mx.example.net", Port: 465, Mode: ModeStartTLS},
			Plan{Policy: Verify, StartTLS: true, Require: true, VerifyName: "mx.example.net", ServerName: "mx.example.net",
				Reason: "policy verify; port 465 is implicit TLS; mode starttls"}},
		{"forced none", Input{Policy: Verify, Host: "mx.example.net", Port: 25, Mode: ModeNone, ModeSource: "--no-tls"},
			Plan{Policy: Verify, ServerName: "mx.example.net", Reason: "policy verify; --no-tls"}},
		{"forced mode already in effect", Input{Policy: Opportunistic, Host: "mx.example.net", Port: 25, Mode: ModeStartTLS, ModeSource: "--starttls"},
			Plan{Policy: Opportunistic, StartTLS: true, ServerName: "mx.example.net", Reason: "policy opportunistic"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Mechanism and Report are TestDecideEnforced's.
			got := Decide(tt.in)
			got.Mechanism, got.Report = "", Report{}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decide(%+v)\n got %+v\nwant %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestMode(t *testing.T) {
	for _, m := range []Mode{ModeAuto, ModeNone, ModeStartTLS, ModeImplicit} {
		if got, err := ParseMode(m.String()); err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	for _, bad := range []string{"", "tls", "STARTTLS", "opportunistic"} {
		if _, err := ParseMode(bad); err == nil {
			t.Errorf("ParseMode(%q) accepted", bad)
		}
	}
	tests := []struct {
		in   Input
		want Mode
	}{
		{Input{Policy: None, Port: 25}, ModeNone},
		{Input{Policy: Opportunistic, Port: 25}, ModeStartTLS},
		{Input{Policy: None, Port: 465}, ModeImplicit},
		{Input{Policy: Verify, Port: 465, Mode: ModeNone}, ModeNone},
	}
	for _, tt := range tests {
		if got := Decide(tt.in).Mode(); got != tt.want {
			t.Errorf("%+v: mode %v, want %v", tt.in, got, tt.want)
		}
	}
	if s := Mode(9).String(); s != "Mode(9)" {
		t.Errorf("unknown mode String = %q", s)
	}
}

func TestClientConfig(t *testing.T) {
	tests := []struct {
		in       Input
		insecure bool
		name     string
	}{
		{Input{Policy: Opportunistic, Host: "mx.example.net", Port: 25}, true, "mx.example.net"},
		{Input{Policy: Required, Host: "mx.example.net", Port: 25}, true, "mx.example.net"},
		{Input{Policy: Verify, Host: "mx.example.net.", Port: 25}, false, "mx.example.net"},
		{Input{Policy: Verify, Host: "[192.0.2.1]", Port: 25}, false, "192.0.2.1"},
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
		{Input{Policy: None, Host: "h", Port: 25}, "no TLS (policy none)"},
		{Input{Policy: Opportunistic, Host: "h", Port: 25}, "STARTTLS when offered, any certificate accepted (policy opportunistic)"},
		{Input{Policy: Verify, Host: "h", Port: 25, Source: "route x"}, "STARTTLS when offered, TLS required, certificate must be valid for h (policy verify from route x)"},
		{Input{Policy: Required, Host: "h", Port: 465}, "implicit TLS, TLS required, any certificate accepted (policy required; port 465 is implicit TLS)"},
	}
	for _, tt := range tests {
		if got := Decide(tt.in).String(); got != tt.want {
			t.Errorf("%+v: %q", tt.in, got)
		}
	}
}
