package acmecert

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/acme"
)

func TestRenewAt(t *testing.T) {
	day := 24 * time.Hour
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		life, want time.Duration // lifetime, renewal after NotBefore
	}{
		{90 * day, 60 * day},   // Let's Encrypt: day 60
		{6 * day, 4 * day},     // short-lived: day 4
		{365 * day, 335 * day}, // a year: 30 days before
		{9 * time.Second, 6 * time.Second},
	}
	for _, tt := range tests {
		leaf := &x509.Certificate{NotBefore: start, NotAfter: start.Add(tt.life)}
		if got := RenewAt(leaf).Sub(start); got != tt.want {
			t.Errorf("lifetime %v: renew after %v, want %v", tt.life, got, tt.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	want := []time.Duration{2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 32 * time.Minute,
		64 * time.Minute, 2 * time.Hour, 2 * time.Hour}
	for i, w := range want {
		if got := Backoff(i+1, 2*time.Minute, 2*time.Hour); got != w {
			t.Errorf("Backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := Backoff(1000, time.Second, time.Hour); got != time.Hour {
		t.Errorf("Backoff(1000) = %v (overflow?)", got)
	}
}

// TestKeys: keys are made once with mode 0600 in a 0700 directory and
// read back the same; a file that is not a key is an error, not replaced.
func TestKeys(t *testing.T) {
	f := files{filepath.Join(t.TempDir(), "acme")}
	k1, err := f.key(KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := f.key(KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Public().(*ecdsa.PublicKey).Equal(k2.Public()) {
		t.Error("the kept key changed between calls")
	}
	for name, want := range map[string]os.FileMode{f.dir: 0o700 | os.ModeDir, f.path(KeyFile): 0o600} {
		if st, err := os.Stat(name); err != nil || st.Mode() != want {
			t.Errorf("%s: mode %v, %v; want %v", name, st.Mode(), err, want)
		}
	}
	os.WriteFile(f.path(AccountKeyFile), []byte("not a key"), 0o600)
	if _, err := f.key(AccountKeyFile); err == nil {
		t.Error("a file that is not a key was taken")
	}
	if b, _ := os.ReadFile(f.path(AccountKeyFile)); string(b) != "not a key" {
		t.Error("a file that is not a key was replaced")
	}
}

// selfIssued makes a chain of one certificate for names and key, valid
// from notBefore for life.
func selfIssued(t *testing.T, key *ecdsa.PrivateKey, notBefore time.Time, life time.Duration, names ...string) [][]byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]},
		DNSNames: names, NotBefore: notBefore, NotAfter: notBefore.Add(life)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return [][]byte{der}
}

// TestStoredAndDue: the stored certificate is read back when it matches
// the kept key, and is due at once when it does not cover every name or
// came from another directory, else at RenewAt.
func TestStoredAndDue(t *testing.T) {
	const dirURL = "https://acme.example/dir"
	dir := t.TempDir()
	names := []string{"mx.example.com", "smtp.example.com"}
	m := New(Options{Dir: dir, Names: names, Directory: dirURL})
	if c := m.Stored(); c != nil || m.Due(c) != "no certificate" {
		t.Fatalf("no files: Stored %v, Due %q", c, m.Due(c))
	}
	key, err := m.files().key(KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	issued := time.Now()
	chain := selfIssued(t, key.(*ecdsa.PrivateKey), issued, time.Hour, "mx.example.com", "SMTP.example.com")
	if err := m.files().saveCert(chain, dirURL); err != nil {
		t.Fatal(err)
	}
	c := m.Stored()
	if c == nil || c.Leaf.Subject.CommonName != "mx.example.com" {
		t.Fatalf("Stored = %v", c)
	}
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"current", Options{Names: names, Directory: dirURL}, ""},
		{"a name more", Options{Names: append(names, "other.example.com"), Directory: dirURL}, "the certificate does not cover every name"},
		{"staging to production", Options{Names: names, Directory: "https://acme.example/prod"}, "the certificate is from another directory"},
		{"at two thirds", Options{Names: names, Directory: dirURL, Now: func() time.Time { return issued.Add(40 * time.Minute) }}, "renewal time"},
		{"just before", Options{Names: names, Directory: dirURL, Now: func() time.Time { return issued.Add(39 * time.Minute) }}, ""},
	}
	for _, tt := range tests {
		tt.opts.Dir = dir
		if got := New(tt.opts).Due(c); got != tt.want {
			t.Errorf("%s: Due = %q, want %q", tt.name, got, tt.want)
		}
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err := m.files().saveCert(selfIssued(t, other, time.Now(), time.Hour, names...), dirURL); err != nil {
		t.Fatal(err)
	}
	if m.Stored() != nil {
		t.Error("a certificate for another key was used")
	}
	if _, err := certificate(selfIssued(t, other, time.Now(), time.Hour, "mx.example.com"), key, []string{"mx.example.com"}); err == nil {
		t.Error("certificate accepted an issued certificate for another key")
	}
}

// freeAddr returns a loopback address nothing listens on (the responder
// binds by address and does not report a port 0 choice).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestHTTP01Responder: the key authorization of a known token, over a
// real HTTP connection; 404 for anything else.
func TestHTTP01Responder(t *testing.T) {
	r := newResponder()
	r.addToken("tok-1", "tok-1.thumb")
	addr := freeAddr(t)
	stop, err := r.listen(HTTP01, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	tests := []struct {
		path string
		code int
		body string
	}{
		{"/.well-known/acme-challenge/tok-1", 200, "tok-1.thumb"},
		{"/.well-known/acme-challenge/tok-2", 404, ""},
		{"/tok-1", 404, ""},
	}
	for _, tt := range tests {
		res, err := http.Get("http://" + addr + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tt.code || (tt.code == 200 && string(b) != tt.body) {
			t.Errorf("GET %s: %d %q, want %d %q", tt.path, res.StatusCode, b, tt.code, tt.body)
		}
	}
}

// TestTLSALPN01Responder: a client offering acme-tls/1 for a name of the
// order gets that name's challenge certificate (with the acmeIdentifier
// extension, RFC 8737 §3); one without acme-tls/1, or for another name,
// gets no handshake.
func TestTLSALPN01Responder(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	client := &acme.Client{Key: key}
	chal, err := client.TLSALPN01ChallengeCert("tok-1", "mx.example.com")
	if err != nil {
		t.Fatal(err)
	}
	r := newResponder()
	r.addCert("MX.example.com", &chal)
	addr := freeAddr(t)
	stop, err := r.listen(TLSALPN01, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	idOID := asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 31} // id-pe-acmeIdentifier
	dial := func(sni string, protos ...string) (*x509.Certificate, error) {
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: sni, NextProtos: protos, InsecureSkipVerify: true})
		if err != nil {
			return nil, err
		}
		defer c.Close()
		if p := c.ConnectionState().NegotiatedProtocol; p != acme.ALPNProto {
			t.Errorf("negotiated %q", p)
		}
		return c.ConnectionState().PeerCertificates[0], nil
	}
	leaf, err := dial("mx.example.com", acme.ALPNProto)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range leaf.Extensions {
		found = found || (e.Id.Equal(idOID) && e.Critical)
	}
	if !found || leaf.DNSNames[0] != "mx.example.com" {
		t.Errorf("challenge certificate %v without a critical acmeIdentifier", leaf.DNSNames)
	}
	if _, err := dial("mx.example.com", "smtp"); err == nil {
		t.Error("handshake without acme-tls/1 succeeded")
	}
	if _, err := dial("other.example.com", acme.ALPNProto); err == nil {
		t.Error("handshake for a name without a challenge succeeded")
	}
}

// logRecords collects log records for a test.
type logRecords struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecords) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r.Clone())
	return nil
}
func (l *logRecords) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecords) WithGroup(string) slog.Handler      { return l }

// failures returns the retry_in of every logged failure.
func (l *logRecords) failures() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.recs {
		if !strings.Contains(r.Message, "not obtained") {
			continue
		}
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "retry_in" {
				out = append(out, a.Value.String())
			}
			return true
		})
	}
	return out
}

// TestRunBackoff: with the CA unreachable, Run logs every failed attempt
// with a doubling retry_in (to RetryMax), keeps the current certificate
// (Install is never called) and ends with its context.
func TestRunBackoff(t *testing.T) {
	down := "https://" + freeAddr(t) + "/dir" // nothing listens there: connection refused
	logs := &logRecords{}
	installed := false
	m := New(Options{Directory: down, Names: []string{"mx.example.com"}, Challenge: HTTP01, ChallengeAddress: "127.0.0.1:0",
		Dir: t.TempDir(), RetryMin: 10 * time.Millisecond, RetryMax: 40 * time.Millisecond,
		Logger: slog.New(logs), Install: func(*tls.Certificate) { installed = true }})
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	chain := selfIssued(t, key, time.Now().Add(-time.Hour), time.Hour+time.Minute, "mx.example.com") // due for renewal
	leaf, _ := x509.ParseCertificate(chain[0])
	cur := &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}
	ctx, cancel := context.WithCancel(context.Background())
	first, done := make(chan struct{}), make(chan struct{})
	go func() { defer close(done); m.Run(ctx, cur, first) }()
	<-first
	for deadline := time.Now().Add(10 * time.Second); len(logs.failures()) < 5 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond) // polling the log, bounded above
	}
	cancel()
	<-done
	got := logs.failures()
	want := []string{"10ms", "20ms", "40ms", "40ms", "40ms"}
	if len(got) < len(want) {
		t.Fatalf("failures logged: %q", got)
	}
	for i, w := range want {
		if got[i] != w {
			t.Errorf("failure %d: retry_in %s, want %s (all: %q)", i+1, got[i], w, got)
		}
	}
	if installed {
		t.Error("a certificate was installed with the CA down")
	}
}
