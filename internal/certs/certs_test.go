package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// writePair generates a certificate for hosts (no loopback names added)
// and writes it to dir/name.crt and dir/name.key.
func writePair(t *testing.T, dir, name string, hosts ...string) Pair {
	t.Helper()
	c, k, err := generate(hosts, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p := Pair{Cert: filepath.Join(dir, name+".crt"), Key: filepath.Join(dir, name+".key")}
	if err := os.WriteFile(p.Cert, c, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.Key, k, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// served returns the first DNS name of the certificate the store picks for sni.
func served(t *testing.T, s *Store, sni string) string {
	t.Helper()
	c, err := s.GetCertificate(&tls.ClientHelloInfo{
		ServerName:        sni,
		SignatureSchemes:  []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256},
		SupportedVersions: []uint16{tls.VersionTLS13},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf.DNSNames[0]
}

func TestSNISelection(t *testing.T) {
	dir := t.TempDir()
	s, err := Load([]Pair{
		writePair(t, dir, "default", "mail.example.com", "shared.example.net"),
		writePair(t, dir, "wild", "*.example.org", "shared.example.net"),
		writePair(t, dir, "exact", "exact.example.org"),
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ sni, want string }{
		{"mail.example.com", "mail.example.com"},
		{"MAIL.Example.COM.", "mail.example.com"},
		{"exact.example.org", "exact.example.org"},
		{"other.example.org", "*.example.org"},
		{"a.b.example.org", "mail.example.com"}, // a wildcard covers one label only
		{"example.org", "mail.example.com"},
		{"shared.example.net", "mail.example.com"}, // first in configuration order wins
		{"", "mail.example.com"},
		{"unknown.test", "mail.example.com"},
	}
	for _, tt := range tests {
		if got := served(t, s, tt.sni); got != tt.want {
			t.Errorf("SNI %q: served %q, want %q", tt.sni, got, tt.want)
		}
	}
	if l := s.Leaves(); len(l) != 3 || l[1].DNSNames[0] != "*.example.org" {
		t.Errorf("Leaves = %v", l)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	good := writePair(t, dir, "good", "a.example")
	other := writePair(t, dir, "other", "b.example")
	tests := []struct {
		name  string
		pairs []Pair
	}{
		{"none", nil},
		{"missing file", []Pair{good, {Cert: filepath.Join(dir, "nope.crt"), Key: good.Key}}},
		{"key of another certificate", []Pair{{Cert: good.Cert, Key: other.Key}}},
	}
	for _, tt := range tests {
		if s, err := Load(tt.pairs); err == nil {
			t.Errorf("%s: Load succeeded: %v", tt.name, s)
		}
	}
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	p := writePair(t, dir, "c", "old.example")
	s, err := Load([]Pair{p})
	if err != nil {
		t.Fatal(err)
	}
	// A renewal replaces the files: Reload picks the new certificate up.
	writePair(t, dir, "c", "new.example")
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := served(t, s, ""); got != "new.example" {
		t.Fatalf("after reload: %q", got)
	}
	// A broken file: Reload fails and the current certificate stays.
	if err := os.WriteFile(p.Key, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err == nil {
		t.Fatal("Reload of a broken key succeeded")
	}
	if got := served(t, s, "new.example"); got != "new.example" {
		t.Fatalf("after failed reload: %q", got)
	}
}

func TestEnsureSelfSigned(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	now := time.Now()
	p, created, err := ensureSelfSigned(dir, []string{"mail.test", "192.0.2.7"}, now)
	if err != nil || !created {
		t.Fatalf("first call: created %v, %v", created, err)
	}
	if p.Cert != filepath.Join(dir, "selfsigned.crt") || p.Key != filepath.Join(dir, "selfsigned.key") {
		t.Errorf("pair = %+v", p)
	}
	for path, want := range map[string]os.FileMode{p.Key: 0o600, dir: 0o700 | os.ModeDir} {
		if fi, err := os.Stat(path); err != nil || fi.Mode() != want {
			t.Errorf("%s: mode %v, %v; want %v", path, fi.Mode(), err, want)
		}
	}
	leaf := loadLeaf(t, p)
	if !slices.Equal(leaf.DNSNames, []string{"mail.test", "localhost"}) || len(leaf.IPAddresses) != 3 {
		t.Errorf("names %v, IPs %v", leaf.DNSNames, leaf.IPAddresses)
	}
	if d := leaf.NotAfter.Sub(now); d < 364*24*time.Hour || d > 366*24*time.Hour {
		t.Errorf("valid for %v, want a year", d)
	}
	if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("public key %T, want ECDSA P-256", leaf.PublicKey)
	}

	tests := []struct {
		name        string
		hosts       []string
		now         time.Time
		wantCreated bool
	}{
		{"reused", []string{"mail.test", "192.0.2.7"}, now, false},
		{"reused for a subset", []string{"MAIL.TEST."}, now.Add(300 * 24 * time.Hour), false},
		{"new host", []string{"other.test"}, now, true},
		{"near expiry", []string{"other.test"}, now.Add(360 * 24 * time.Hour), true},
	}
	for _, tt := range tests {
		_, created, err := ensureSelfSigned(dir, tt.hosts, tt.now)
		if err != nil || created != tt.wantCreated {
			t.Errorf("%s: created %v, %v; want %v", tt.name, created, err, tt.wantCreated)
		}
	}
	// A damaged pair is replaced.
	if err := os.WriteFile(p.Cert, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, created, err := EnsureSelfSigned(dir, nil); err != nil || !created {
		t.Errorf("damaged pair: created %v, %v", created, err)
	}
	if _, err := Load([]Pair{p}); err != nil {
		t.Errorf("regenerated pair does not load: %v", err)
	}
}

func loadLeaf(t *testing.T, p Pair) *x509.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(p.Cert, p.Key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

// handshake runs a TLS handshake over net.Pipe between ServerConfig(s)
// and client, returning the client's connection state or error.
func handshake(t *testing.T, s *Store, client *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	deadline := time.Now().Add(10 * time.Second)
	a.SetDeadline(deadline)
	b.SetDeadline(deadline)
	srv := tls.Server(a, ServerConfig(s, false))
	done := make(chan error, 1)
	go func() {
		err := srv.Handshake()
		if err != nil {
			a.Close() // unblock the client
		}
		done <- err
	}()
	cl := tls.Client(b, client)
	err := cl.Handshake()
	if err != nil {
		b.Close()
	}
	srvErr := <-done
	if err == nil {
		err = srvErr
	}
	return cl.ConnectionState(), err
}

func TestHandshake(t *testing.T) {
	dir := t.TempDir()
	def := writePair(t, dir, "default", "mail.example.com")
	wild := writePair(t, dir, "wild", "*.example.org")
	s, err := Load([]Pair{def, wild})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(loadLeaf(t, def))
	roots.AddCert(loadLeaf(t, wild))

	for _, sni := range []string{"smtp.example.org", "mail.example.com"} {
		st, err := handshake(t, s, &tls.Config{ServerName: sni, RootCAs: roots})
		if err != nil {
			t.Fatalf("%s: %v", sni, err)
		}
		if err := st.PeerCertificates[0].VerifyHostname(sni); err != nil {
			t.Errorf("%s: served %v", sni, st.PeerCertificates[0].DNSNames)
		}
		if st.Version < tls.VersionTLS12 {
			t.Errorf("%s: version %x", sni, st.Version)
		}
	}
	// TLS 1.1 and older are refused (RFC 8996).
	_, err = handshake(t, s, &tls.Config{
		ServerName: "mail.example.com", RootCAs: roots,
		MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11,
	})
	if err == nil || !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("TLS 1.1 handshake: %v, want a protocol version error", err)
	}
}

func TestServerConfig(t *testing.T) {
	s, err := Load([]Pair{writePair(t, t.TempDir(), "c", "a.example")})
	if err != nil {
		t.Fatal(err)
	}
	for _, tickets := range []bool{false, true} {
		c := ServerConfig(s, tickets)
		if c.MinVersion != tls.VersionTLS12 || c.SessionTicketsDisabled == tickets || c.GetCertificate == nil {
			t.Errorf("ServerConfig(tickets=%v) = min %x, tickets disabled %v", tickets, c.MinVersion, c.SessionTicketsDisabled)
		}
	}
}

// Leaves returns the parsed leaf certificate of each pair, in order — for
// logging names and expiry dates. The caller must not modify them.
func (s *Store) Leaves() []*x509.Certificate {
	set := s.set.Load()
	out := make([]*x509.Certificate, len(set.all))
	for i, c := range set.all {
		out[i] = c.Leaf
	}
	return out
}
