package cli

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"smtpkit/internal/config"
	"smtpkit/internal/delivery"
	"smtpkit/internal/inbound"
	"smtpkit/internal/smtp"
)

// TestOpenSRS: [srs] off leaves inbound and the bounces without SRS (no
// nil pointer in a non-nil interface); on, the rewriter is keyed from
// <data_dir>/secret (created if missing, no key file of its own), in the
// hostname's domain, and two openings agree.
func TestOpenSRS(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := config.Default()
	cfg.Hostname = "mx.example.com"
	cfg.DataDir = t.TempDir()

	cfg.SRS.Enabled = false
	r, err := openSRS(cfg, log)
	if err != nil || r != nil {
		t.Fatalf("disabled: %v, %v", r, err)
	}
	var in inbound.Options
	var b delivery.Bounces
	wireSRS(r, &in, &b)
	if in.SRS != nil || b.SRS != nil {
		t.Fatal("disabled SRS wired as a non-nil interface")
	}

	cfg.SRS.Enabled = true
	r, err = openSRS(cfg, log)
	if err != nil || r == nil || r.Domain() != "mx.example.com" {
		t.Fatalf("enabled: %v, %v", r, err)
	}
	wireSRS(r, &in, &b)
	if in.SRS == nil || b.SRS == nil {
		t.Fatal("SRS not wired")
	}
	if ents, _ := os.ReadDir(cfg.DataDir); len(ents) != 1 || ents[0].Name() != "secret" {
		t.Errorf("data dir holds %v, want only the secret", ents)
	}
	sender := smtp.Address{Local: "alice", Domain: "example.org"}
	fwd, err := r.Forward(sender)
	if err != nil {
		t.Fatal(err)
	}
	again, err := openSRS(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if back, err := again.Reverse(fwd); err != nil || back != sender {
		t.Errorf("after reopening: Reverse(%s) = %s, %v", fwd, back, err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "secret")); err != nil {
		t.Error(err)
	}
}
