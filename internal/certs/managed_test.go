package certs

import (
	"crypto/tls"
	"io"
	"net"
	"slices"
	"testing"
)

// managedCert is a parsed in-memory certificate for hosts.
func managedCert(t *testing.T, hosts ...string) *tls.Certificate {
	t.Helper()
	c, err := SelfSigned(hosts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestManaged(t *testing.T) {
	dir := t.TempDir()
	file := writePair(t, dir, "file", "file.example.com")
	s, err := Load([]Pair{file})
	if err != nil {
		t.Fatal(err)
	}
	if got := served(t, s, ""); got != "file.example.com" {
		t.Fatalf("default before SetManaged: %q", got)
	}
	acme := managedCert(t, "mx.example.com")
	if err := s.SetManaged("acme", acme); err != nil {
		t.Fatal(err)
	}
	for sni, want := range map[string]string{"": "mx.example.com", "unknown.test": "mx.example.com",
		"mx.example.com": "mx.example.com", "file.example.com": "file.example.com", "localhost": "mx.example.com"} {
		if got := served(t, s, sni); got != want {
			t.Errorf("SNI %q: served %q, want %q", sni, got, want)
		}
	}
	infos := s.Certificates()
	if len(infos) != 2 || infos[0].Source != "acme" || infos[1].Source != file.Cert ||
		!slices.Contains(infos[0].Names, "mx.example.com") || !slices.Contains(infos[0].Names, "127.0.0.1") ||
		infos[0].Serial != acme.Leaf.SerialNumber.Text(16) || !infos[0].NotAfter.Equal(acme.Leaf.NotAfter) ||
		infos[1].Issuer == "" {
		t.Errorf("Certificates = %+v", infos)
	}
	// A reload of the files keeps the managed certificate in front.
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := served(t, s, ""); got != "mx.example.com" {
		t.Errorf("default after Reload: %q", got)
	}
	// Without managed certificates the files serve again.
	if err := s.SetManaged("acme"); err != nil {
		t.Fatal(err)
	}
	if got := served(t, s, ""); got != "file.example.com" {
		t.Errorf("default after SetManaged(): %q", got)
	}
	if err := s.SetManaged("acme", &tls.Certificate{}); err == nil {
		t.Error("SetManaged took a certificate without a leaf")
	}
}

func TestManagedOnly(t *testing.T) {
	if _, err := New(nil, "acme", nil); err == nil {
		t.Fatal("New with nothing to serve succeeded")
	}
	first := managedCert(t, "mx.example.com")
	s, err := New(nil, "acme", []*tls.Certificate{first})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err != nil { // SIGHUP with no files configured
		t.Fatalf("Reload with managed certificates only: %v", err)
	}
	if err := s.SetManaged("acme"); err == nil {
		t.Error("SetManaged() left nothing to serve and succeeded")
	}
	if got := served(t, s, "mx.example.com"); got != "mx.example.com" {
		t.Errorf("served %q after a refused SetManaged", got)
	}
}

// TestManagedSwapKeepsSessions: a TLS session established before
// SetManaged goes on with its certificate; a new one gets the new
// certificate.
func TestManagedSwapKeepsSessions(t *testing.T) {
	old, renewed := managedCert(t, "mx.example.com"), managedCert(t, "mx.example.com")
	s, err := New(nil, "acme", []*tls.Certificate{old})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ServerConfig(s, false))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	dial := func() (*tls.Conn, string) {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, ServerName: "mx.example.com"})
		if err != nil {
			t.Fatal(err)
		}
		return c, c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	echo := func(c net.Conn) {
		t.Helper()
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("echo: %q, %v", buf, err)
		}
	}
	before, serial := dial()
	defer before.Close()
	if serial != old.Leaf.SerialNumber.String() {
		t.Fatalf("first session got serial %s", serial)
	}
	echo(before)
	if err := s.SetManaged("acme", renewed); err != nil {
		t.Fatal(err)
	}
	after, serial := dial()
	defer after.Close()
	if serial != renewed.Leaf.SerialNumber.String() {
		t.Errorf("new session got serial %s, want the renewed %s", serial, renewed.Leaf.SerialNumber)
	}
	echo(before) // the old session still works
	echo(after)
}
