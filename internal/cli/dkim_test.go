package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"smtpkit/internal/config"
	"smtpkit/internal/dkim"
	"smtpkit/internal/dns/dnstest"
	"smtpkit/internal/local"
	"smtpkit/internal/queue"

	msgauth "github.com/emersion/go-msgauth/dkim"
)

func TestDKIMKeygen(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name   string
		args   []string
		code   int
		prefix string // of the printed record
		strs   int    // quoted strings in it
	}{
		{"ed25519", []string{"-domain", "Example.com.", "-selector", "ed1", "-out", filepath.Join(dir, "ed.pem")}, 0, `ed1._domainkey.example.com. TXT "v=DKIM1; k=ed25519; p=`, 1},
		{"rsa", []string{"-domain", "example.com", "-selector", "rsa1", "-algorithm", "rsa", "-out", filepath.Join(dir, "rsa.pem")}, 0, `rsa1._domainkey.example.com. TXT "v=DKIM1; k=rsa; p=`, 2},
		{"no overwrite", []string{"-domain", "example.com", "-selector", "ed1", "-out", filepath.Join(dir, "ed.pem")}, 1, "", 0},
		{"small rsa", []string{"-domain", "example.com", "-selector", "r", "-algorithm", "rsa", "-bits", "1024", "-out", filepath.Join(dir, "x.pem")}, 2, "", 0},
		{"bad algorithm", []string{"-domain", "example.com", "-selector", "r", "-algorithm", "dsa", "-out", filepath.Join(dir, "x.pem")}, 2, "", 0},
		{"no selector", []string{"-domain", "example.com"}, 2, "", 0},
		{"bad domain", []string{"-domain", "a b", "-selector", "s"}, 2, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			before, _ := os.ReadFile(filepath.Join(dir, "ed.pem"))
			code := Main(append([]string{"dkim", "keygen"}, tt.args...), Stdio{Out: &out, Err: &errb})
			if code != tt.code {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, errb.String())
			}
			if tt.name == "no overwrite" {
				if after, _ := os.ReadFile(filepath.Join(dir, "ed.pem")); !bytes.Equal(before, after) {
					t.Error("the key was overwritten")
				}
			}
			if code != 0 {
				return
			}
			line := strings.TrimSpace(out.String())
			if !strings.HasPrefix(line, tt.prefix) || strings.Count(line, `"`) != 2*tt.strs {
				t.Fatalf("record %s", line)
			}
			path := tt.args[len(tt.args)-1]
			st, err := os.Stat(path)
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("key file: %v %v", st, err)
			}
			k, err := dkim.LoadKey(path)
			if err != nil {
				t.Fatal(err)
			}
			rec, _ := dkim.Record(k.Public())
			joined := strings.ReplaceAll(strings.TrimSuffix(line[strings.Index(line, `"`)+1:], `"`), `" "`, "")
			if joined != rec {
				t.Errorf("printed record is not the key's:\n%s\n%s", joined, rec)
			}
		})
	}
}

func TestDKIMCheck(t *testing.T) {
	dir := t.TempDir()
	keygen := func(sel, alg string) string {
		var out, errb bytes.Buffer
		if code := Main([]string{"dkim", "keygen", "-domain", "example.com", "-selector", sel, "-algorithm", alg, "-out", filepath.Join(dir, sel+".pem")}, Stdio{Out: &out, Err: &errb}); code != 0 {
			t.Fatalf("keygen: %s", errb.String())
		}
		return strings.TrimSpace(out.String())
	}
	ed, rs, other := keygen("ed1", "ed25519"), keygen("rsa1", "rsa"), keygen("other", "ed25519")
	srv := dnstest.Start(t, dnstest.Zone{
		Records: []string{ed, rs,
			strings.Replace(other, "other._domainkey", "wrong._domainkey", 1)}, // another key's record
		ServFail: []string{"broken._domainkey.example.com."},
	})
	cfg := filepath.Join(dir, "smtpkit.toml")
	toml := "hostname = \"mx.example.com\"\ndata_dir = \"" + dir + "\"\n[tls]\nself_signed = true\n[[domain]]\nname = \"example.com\"\n[outbound]\nresolver = \"" + srv.Addr + "\"\n"
	for _, sel := range []string{"ed1", "rsa1", "wrong", "missing", "broken"} {
		key := sel
		if sel != "ed1" && sel != "rsa1" {
			key = "ed1"
		}
		toml += "[[dkim]]\ndomain = \"example.com\"\nselector = \"" + sel + "\"\nkey = \"" + filepath.Join(dir, key+".pem") + "\"\n"
	}
	if err := os.WriteFile(cfg, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		selector string
		code     int
		out      string
	}{
		{"ed1", 0, "OK: ed1._domainkey.example.com matches"},
		{"rsa1", 0, "OK: rsa1._domainkey.example.com matches"},
		{"wrong", 1, "MISMATCH"},
		{"missing", 1, "no DKIM key record"},
		{"broken", 3, ""},
		{"unknown", 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.selector, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main([]string{"dkim", "check", "-domain", "example.com", "-selector", tt.selector, "-config", cfg}, Stdio{Out: &out, Err: &errb})
			if code != tt.code || !strings.Contains(out.String(), tt.out) {
				t.Fatalf("exit %d, want %d; out %q (want %q); err %s", code, tt.code, out.String(), tt.out, errb.String())
			}
		})
	}
}

// TestReportMailSigned: a TLS-RPT report mail queued for a remote rua is
// signed once, as it is queued (the fields kept in the envelope), when its
// From domain has a key; without a key it is queued unsigned.
func TestReportMailSigned(t *testing.T) {
	ed, err := dkim.GenerateKey(dkim.Ed25519, 0)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := dkim.New([]dkim.Key{{Domain: "example.com", Selector: "s", Signer: ed, Subdomains: true}})
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := dkim.Record(ed.Public())
	report := "From: <noreply-tlsrpt@mx.example.com>\r\nTo: <tls@far.example>\r\nSubject: Report Domain: far.example\r\n" +
		"Date: Wed, 2 Dec 2026 00:00:00 +0000\r\nMessage-ID: <r1@mx.example.com>\r\n\r\nreport\r\n"
	for _, tt := range []struct {
		name   string
		signer *dkim.Signer
		signed bool
	}{{"with a key", signer, true}, {"without keys", nil, false}} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			q, err := queue.Open(queue.Options{Dir: filepath.Join(dir, "queue"), Courier: noCourier{}}) // never run
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			d := &daemon{
				local: local.New(local.Options{Domains: []string{"example.com"}, MailDir: filepath.Join(dir, "mail")}),
				out:   &outbound{queue: queue.LocalBackend(q), signer: tt.signer},
			}
			if err := d.mailReport(context.Background(), "noreply-tlsrpt@mx.example.com", []string{"tls@far.example"}, []byte(report)); err != nil {
				t.Fatal(err)
			}
			// through the queue's own view: a small message may still be a
			// journal record without its env file (queue/journal.go)
			list := q.List()
			if len(list) != 1 {
				t.Fatalf("%d queued, want 1", len(list))
			}
			detail, err := q.Show(list[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			env := struct {
				Size int64
				Meta queue.Meta
			}{list[0].Size, detail.Meta}
			if !tt.signed {
				if env.Meta.Prepend != "" {
					t.Fatalf("signed without a key: %q", env.Meta.Prepend)
				}
				return
			}
			if env.Size != int64(len(env.Meta.Prepend)+len(report)) {
				t.Errorf("size %d does not count the %d bytes of signature", env.Size, len(env.Meta.Prepend))
			}
			vs, err := msgauth.VerifyWithOptions(strings.NewReader(env.Meta.Prepend+report), &msgauth.VerifyOptions{
				LookupTXT: func(string) ([]string, error) { return []string{rec}, nil },
			})
			if err != nil || len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "example.com" {
				t.Fatalf("verification: %v %+v", err, vs)
			}
		})
	}
}

type noCourier struct{}

func (noCourier) Deliver(context.Context, *queue.Attempt) []queue.Result { return nil }

// TestLoadSigner: serve (and config check -certs) refuse a missing, weak
// or foreign key; no entries sign nothing.
func TestLoadSigner(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.pem")
	if code := Main([]string{"dkim", "keygen", "-domain", "example.com", "-selector", "s", "-out", good}, Stdio{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}); code != 0 {
		t.Fatal("keygen failed")
	}
	weak := filepath.Join(dir, "weak.pem")
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	der, _ := x509.MarshalPKCS8PrivateKey(small)
	os.WriteFile(weak, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	cert := filepath.Join(dir, "cert.pem")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), 0o600)
	tests := []struct {
		name, key string
		err       string // "" = loads
	}{
		{"ed25519", good, ""},
		{"missing", filepath.Join(dir, "none.pem"), "no such file"},
		{"rsa 1024", weak, "1024 bits"},
		{"certificate", cert, "PEM block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			toml := "hostname = \"mx.example.com\"\ndata_dir = \"" + dir + "\"\n[tls]\nself_signed = true\n[[domain]]\nname = \"example.com\"\n" +
				"[[dkim]]\ndomain = \"example.com\"\nselector = \"s\"\nkey = \"" + tt.key + "\"\n"
			path := filepath.Join(dir, tt.name+".toml")
			os.WriteFile(path, []byte(toml), 0o600)
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			s, err := loadSigner(cfg)
			var errb bytes.Buffer
			code := Main([]string{"config", "check", "-certs", path}, Stdio{Out: &bytes.Buffer{}, Err: &errb})
			if tt.err == "" {
				if err != nil || s == nil || len(s.KeysFor("example.com")) != 1 || code != 0 {
					t.Fatalf("loadSigner: %v; config check exit %d: %s", err, code, errb.String())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "dkim[0]") {
				t.Fatalf("loadSigner: %v, want %q", err, tt.err)
			}
			if code != 1 || !strings.Contains(errb.String(), tt.err) {
				t.Fatalf("config check -certs: exit %d: %s", code, errb.String())
			}
		})
	}
	if s, err := loadSigner(config.DevDefault()); s != nil || err != nil {
		t.Errorf("no [[dkim]]: %v %v", s, err)
	}
}
