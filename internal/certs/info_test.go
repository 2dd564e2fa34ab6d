package certs

import (
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestCertificates: the store describes what it serves — file, names,
// issuer, validity, self-signed, default — and a reload shows the new set.
func TestCertificates(t *testing.T) {
	now := time.Now()
	a, _, err := ensureSelfSigned(filepath.Join(t.TempDir(), "a"), []string{"mx.a.test"}, now)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := ensureSelfSigned(filepath.Join(t.TempDir(), "b"), []string{"mx.b.test"}, now.Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Load([]Pair{a, b})
	if err != nil {
		t.Fatal(err)
	}
	got := s.Certificates()
	if len(got) != 2 {
		t.Fatalf("%d certificates, want 2", len(got))
	}
	if got[0].File != a.Cert || !slices.Contains(got[0].Names, "mx.a.test") || !got[0].Default || !got[0].SelfSigned {
		t.Errorf("first: %+v", got[0])
	}
	if got[1].Default || !slices.Contains(got[1].Names, "mx.b.test") || !got[1].NotAfter.Before(got[0].NotAfter) {
		t.Errorf("second: %+v (first expires %v)", got[1], got[0].NotAfter)
	}
	if got[0].Issuer == "" {
		t.Error("no issuer")
	}
	if err := s.ReloadPairs([]Pair{b}); err != nil {
		t.Fatal(err)
	}
	if got := s.Certificates(); len(got) != 1 || got[0].File != b.Cert || !got[0].Default {
		t.Errorf("after reload: %+v", got)
	}
}
