package authres

import (
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/authres"
)

func TestIsOurs(t *testing.T) {
	for _, tc := range []struct {
		value, id string
		want      bool
	}{
		{" mx.test; spf=pass smtp.mailfrom=a@b.test", "mx.test", true},
		{" MX.Test; spf=pass", "mx.test", true},
		{" mx.test 1; dkim=pass", "mx.test", true},
		{"mx.test;none", "mx.test", true},
		{" (comment) mx.test; none", "mx.test", true},
		{" (nested (comment)) mx.test; none", "mx.test", true},
		{"\r\n\tmx.test;\r\n\tspf=pass", "mx.test", true},
		{` "mx.test"; none`, "mx.test", true},
		{" mx.test.evil; none", "mx.test", false},
		{" other.test; spf=pass", "mx.test", false},
		{" evil.mx.test; none", "mx.test", false},
		{" ", "mx.test", false},
		{"", "mx.test", false},
		{" (unterminated mx.test; none", "mx.test", false},
		{` "mx.test`, "mx.test", false},
		{" mx.test; none", "", false},
		{" ; mx.test", "mx.test", false},
	} {
		if got := IsOurs(tc.value, tc.id); got != tc.want {
			t.Errorf("IsOurs(%q, %q) = %v, want %v", tc.value, tc.id, got, tc.want)
		}
	}
}

func TestHeaderFormat(t *testing.T) {
	_, res := startZone(t, spfZone)
	v := New(Options{Resolver: res, AuthServID: "mx.test"})
	r := verify(t, v, "127.14.3.10", "helo.test", "a@ip.test", "From: a@ip.test\nSubject: x\n\nbody\n")
	h := r.Header
	if !strings.HasPrefix(h, "Authentication-Results: mx.test;\r\n\t") || !strings.HasSuffix(h, "\r\n") {
		t.Fatalf("header %q", h)
	}
	for _, line := range strings.Split(strings.TrimSuffix(h, "\r\n"), "\r\n") {
		if len(line) > 998 || strings.ContainsAny(line, "\r\n") {
			t.Errorf("bad line %q", line)
		}
	}
	for _, want := range []string{"spf=pass smtp.mailfrom=a@ip.test", "spf=fail", "smtp.helo=helo.test", "dkim=none", "dmarc=none", "header.from=ip.test", "iprev=pass policy.iprev=127.14.3.10"} {
		if !strings.Contains(h, want) {
			t.Errorf("header lacks %q:\n%s", want, h)
		}
	}
	// What we write, go-msgauth reads back, and it is ours.
	value := strings.ReplaceAll(strings.TrimPrefix(h, FieldName+":"), "\r\n", "")
	id, results, err := authres.Parse(value)
	if err != nil || id != "mx.test" || len(results) != 5 {
		t.Errorf("Parse: %q, %d results, %v", id, len(results), err)
	}
	if !IsOurs(strings.TrimPrefix(h, FieldName+":"), "mx.test") {
		t.Error("our own header is not ours")
	}
}

func TestReasonSanitised(t *testing.T) {
	got := reason("a \"quoted\" \\ thing\r\nwith\x00 controls é " + strings.Repeat("x", 300))
	if strings.ContainsAny(got, "\"\\\r\n\x00") || len(got) > maxReason {
		t.Errorf("reason %q", got)
	}
}
