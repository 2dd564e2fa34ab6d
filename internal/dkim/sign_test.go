package dkim

import (
	"bytes"
	"crypto"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	msgauth "github.com/emersion/go-msgauth/dkim"
)

// testKeys makes an Ed25519 and an RSA key (slow: once per test).
func testKeys(t testing.TB) (ed, rs crypto.Signer) {
	t.Helper()
	ed, err := GenerateKey(Ed25519, 0)
	if err != nil {
		t.Fatal(err)
	}
	rs, err = GenerateKey(RSA, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return ed, rs
}

// verify checks msg with go-msgauth, the public keys of keys standing in
// for DNS, and returns d= of each valid signature and the errors.
func verify(t testing.TB, msg []byte, keys []Key) (ok []string, bad []error) {
	t.Helper()
	zone := map[string]string{}
	for _, k := range keys {
		rec, err := Record(k.Signer.Public())
		if err != nil {
			t.Fatal(err)
		}
		zone[RecordName(k.Selector, k.Domain)] = rec
	}
	vs, err := msgauth.VerifyWithOptions(bytes.NewReader(msg), &msgauth.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			if r, ok := zone[name]; ok {
				return []string{r}, nil
			}
			return nil, fmt.Errorf("no record %s", name)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if v.Err != nil {
			bad = append(bad, v.Err)
			continue
		}
		ok = append(ok, v.Domain)
	}
	return ok, bad
}

const body = "Hello,\r\n\r\nthis is the body.  With  spaces \r\n\r\n\r\n"

func msg(header string) []byte { return []byte(header + "\r\n" + body) }

func TestSign(t *testing.T) {
	ed, rs := testKeys(t)
	keys := []Key{
		{Domain: "example.com", Selector: "ed1", Signer: ed},
		{Domain: "example.com", Selector: "rsa1", Signer: rs},
		{Domain: "example.org", Selector: "s", Signer: ed, Subdomains: true},
		{Domain: "mail.example.org", Selector: "own", Signer: rs},
	}
	s, err := New(keys)
	if err != nil {
		t.Fatal(err)
	}
	std := "Subject: hi\r\nDate: Wed, 2 Dec 2026 01:00:00 +0000\r\nMessage-ID: <1@example.com>\r\nTo: b@example.net\r\n"
	tests := []struct {
		name    string
		msg     []byte
		want    []string // d= of the valid signatures, in order
		skipped bool
	}{
		{name: "dual", msg: msg("From: A <a@example.com>\r\n" + std), want: []string{"example.com", "example.com"}},
		{name: "case and display name", msg: msg("fROM: \"A, B\" <a@EXAMPLE.com>\r\n" + std), want: []string{"example.com", "example.com"}},
		{name: "encoded word in another charset", msg: msg("From: =?koi8-r?B?8NLJ18XU?= <a@example.com>\r\n" + std), want: []string{"example.com", "example.com"}},
		{name: "folded From", msg: msg("From: A\r\n <a@example.com>\r\n" + std), want: []string{"example.com", "example.com"}},
		{name: "subdomain of a subdomains key", msg: msg("From: a@x.y.example.org\r\n" + std), want: []string{"example.org"}},
		{name: "own entry wins over parent", msg: msg("From: a@mail.example.org\r\n" + std), want: []string{"mail.example.org"}},
		{name: "parent key without subdomains", msg: msg("From: a@sub.example.com\r\n" + std), skipped: true},
		{name: "no key", msg: msg("From: a@example.net\r\n" + std), skipped: true},
		{name: "no From", msg: msg(std), skipped: true},
		{name: "two From fields", msg: msg("From: a@example.com\r\nFrom: b@example.com\r\n" + std), skipped: true},
		{name: "two domains", msg: msg("From: a@example.com, b@example.net\r\nSender: a@example.com\r\n" + std), skipped: true},
		{name: "two mailboxes one domain", msg: msg("From: a@example.com, b@Example.com\r\nSender: a@example.com\r\n" + std), want: []string{"example.com", "example.com"}},
		{name: "bad From", msg: msg("From: not an address\r\n" + std), skipped: true},
		{name: "header only", msg: []byte("From: a@example.com\r\n" + std), want: []string{"example.com", "example.com"}},
		{name: "empty body", msg: []byte("From: a@example.com\r\n" + std + "\r\n"), want: []string{"example.com", "example.com"}},
		{name: "empty header", msg: []byte("\r\nFrom: a@example.com\r\n"), skipped: true},
		{name: "empty", msg: nil, skipped: true},
		{name: "header over MaxHeader", msg: msg("From: a@example.com\r\nX-Big: " + strings.Repeat("x", MaxHeader) + "\r\n"), skipped: true},
	}
	for _, tt := range tests {
		for _, chunk := range []int{1 << 30, 1, 7} {
			t.Run(fmt.Sprintf("%s/chunk%d", tt.name, chunk), func(t *testing.T) {
				if chunk < 10 && len(tt.msg) > 10000 {
					t.Skip("slow")
				}
				m := s.Begin()
				for p := tt.msg; len(p) > 0; {
					n := min(chunk, len(p))
					if w, err := m.Write(p[:n]); w != n || err != nil {
						t.Fatalf("Write: %d, %v", w, err)
					}
					p = p[n:]
				}
				sig, err := m.Finish()
				if err != nil {
					t.Fatal(err)
				}
				if tt.skipped {
					if sig != "" || m.Skipped() == nil {
						t.Fatalf("signed: %q", sig)
					}
					return
				}
				if m.Skipped() != nil {
					t.Fatalf("skipped: %v", m.Skipped())
				}
				signed := append([]byte(sig), tt.msg...)
				if headerEnd(signed, 0) < 0 {
					// go-msgauth's verifier needs the empty line; RFC 6376
					// §3.4.3-4: no body and an empty one hash the same.
					signed = append(signed, "\r\n"...)
				}
				ok, bad := verify(t, signed, keys)
				if strings.Join(ok, " ") != strings.Join(tt.want, " ") || len(bad) > 0 {
					t.Fatalf("valid %v, want %v; failures %v\n%s", ok, tt.want, bad, sig)
				}
				for _, f := range strings.SplitAfter(strings.TrimSuffix(sig, "\r\n"), "\r\n") {
					if !strings.HasPrefix(f, "DKIM-Signature:") && !strings.HasPrefix(f, " ") {
						t.Fatalf("not a folded DKIM-Signature field: %q", f)
					}
				}
				if !strings.Contains(sig, "c=relaxed/relaxed") {
					t.Errorf("canonicalization: %s", sig)
				}
			})
		}
	}
}

// TestSignTampered: changes after signing — to the body, a signed field,
// an added instance of an oversigned field, a Cc where there was none —
// fail verification; a new trace field on top does not.
func TestSignTampered(t *testing.T) {
	ed, rs := testKeys(t)
	keys := []Key{{Domain: "example.com", Selector: "ed1", Signer: ed}, {Domain: "example.com", Selector: "rsa1", Signer: rs}}
	s, err := New(keys)
	if err != nil {
		t.Fatal(err)
	}
	orig := msg("From: a@example.com\r\nTo: b@example.net\r\nSubject: pay\r\nDate: Wed, 2 Dec 2026 01:00:00 +0000\r\nMessage-ID: <1@example.com>\r\nX-Other: x\r\n")
	sig, err := s.Sign(orig)
	if err != nil || sig == "" {
		t.Fatalf("Sign: %q, %v", sig, err)
	}
	signed := sig + string(orig)
	tests := []struct {
		name  string
		edit  func(string) string
		valid bool
	}{
		{"unchanged", func(m string) string { return m }, true},
		{"Received added on top", func(m string) string { return "Received: from x by y; Wed, 2 Dec 2026 01:00:00 +0000\r\n" + m }, true},
		{"unsigned field changed", func(m string) string { return strings.Replace(m, "X-Other: x", "X-Other: y", 1) }, true},
		{"relaxed whitespace", func(m string) string { return strings.Replace(m, "Subject: pay", "Subject:   pay", 1) }, true},
		{"body changed", func(m string) string { return strings.Replace(m, "the body", "the bodY", 1) }, false},
		{"body appended", func(m string) string { return m + "more\r\n" }, false},
		{"subject changed", func(m string) string { return strings.Replace(m, "Subject: pay", "Subject: pay now", 1) }, false},
		{"second From on top", func(m string) string { return "From: evil@example.net\r\n" + m }, false},
		{"second Subject below", func(m string) string {
			return strings.Replace(m, "X-Other: x\r\n", "X-Other: x\r\nSubject: other\r\n", 1)
		}, false},
		{"Cc added", func(m string) string {
			return strings.Replace(m, "X-Other: x\r\n", "X-Other: x\r\nCc: c@example.net\r\n", 1)
		}, false},
		{"Reply-To added", func(m string) string { return "Reply-To: evil@example.net\r\n" + m }, false},
		{"Content-Type added", func(m string) string { return "Content-Type: text/html\r\n" + m }, false},
		{"mailing list adds List-Id and Sender", func(m string) string {
			return "List-Id: <l.example.net>\r\nSender: l-bounces@example.net\r\n" + m
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, bad := verify(t, []byte(tt.edit(signed)), keys)
			if tt.valid && (len(ok) != 2 || len(bad) != 0) {
				t.Fatalf("want both valid: %v %v", ok, bad)
			}
			if !tt.valid && (len(ok) != 0 || len(bad) != 2) {
				t.Fatalf("want both invalid: %v %v", ok, bad)
			}
		})
	}
}

func TestHeaderKeys(t *testing.T) {
	tests := []struct {
		header string
		want   string // h= ignoring the fields every message gets
	}{
		{"From: a\r\n", "From From Reply-To To Cc Subject Date Message-ID In-Reply-To References MIME-Version Content-Type Content-Transfer-Encoding"},
		{"From: a\r\nTo: b\r\nto: c\r\nReceived: x\r\nResent-Date: d\r\nList-Post: p\r\n",
			"From From Reply-To To To To Cc Subject Date Message-ID In-Reply-To References MIME-Version Content-Type Content-Transfer-Encoding Resent-Date List-Post"},
		{"From: a\r\nSender: s\r\nList-Id: <l.example>\r\nList-Unsubscribe: <mailto:u@l.example>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
			"From From Sender Sender Reply-To To Cc Subject Date Message-ID In-Reply-To References MIME-Version Content-Type Content-Transfer-Encoding List-Id List-Id List-Unsubscribe List-Unsubscribe List-Unsubscribe-Post List-Unsubscribe-Post"},
	}
	for _, tt := range tests {
		got := strings.Join(headerKeys(parseHeader([]byte(tt.header))), " ")
		if got != tt.want {
			t.Errorf("%q:\n got %s\nwant %s", tt.header, got, tt.want)
		}
	}
}

func TestKeysFor(t *testing.T) {
	ed, _ := GenerateKey(Ed25519, 0)
	s, err := New([]Key{
		{Domain: "Example.COM.", Selector: "a", Signer: ed, Subdomains: true},
		{Domain: "example.com", Selector: "b", Signer: ed},
		{Domain: "a.example.com", Selector: "c", Signer: ed},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ domain, want string }{
		{"example.com", "example.com/a example.com/b"},
		{"EXAMPLE.com.", "example.com/a example.com/b"},
		{"x.example.com", "example.com/a"},
		{"a.example.com", "a.example.com/c"},
		{"b.a.example.com", "example.com/a"}, // c has no subdomains
		{"badexample.com", ""},
		{"com", ""},
	}
	for _, tt := range tests {
		var got []string
		for _, k := range s.KeysFor(tt.domain) {
			got = append(got, k.Domain+"/"+k.Selector)
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("KeysFor(%q) = %v, want %s", tt.domain, got, tt.want)
		}
	}
	if _, err := New([]Key{{Domain: "example.com", Selector: "a"}}); err == nil {
		t.Error("New took a key without a signer")
	}
	var none *Signer
	if none.KeysFor("example.com") != nil {
		t.Error("nil Signer has keys")
	}
}

// BenchmarkSign: streaming a message through the signer, per key set and
// size (the work the accept path adds to an authenticated submission).
func BenchmarkSign(b *testing.B) {
	ed, rs := testKeys(b)
	sets := []struct {
		name string
		keys []Key
	}{
		{"ed25519", []Key{{Domain: "example.com", Selector: "e", Signer: ed}}},
		{"rsa2048", []Key{{Domain: "example.com", Selector: "r", Signer: rs}}},
		{"dual", []Key{{Domain: "example.com", Selector: "e", Signer: ed}, {Domain: "example.com", Selector: "r", Signer: rs}}},
	}
	for _, size := range []int{4 << 10, 1 << 20} {
		line := strings.Repeat("x", 76) + "\r\n"
		m := []byte("From: a@example.com\r\nTo: b@example.net\r\nSubject: bench\r\n\r\n" + strings.Repeat(line, size/len(line)))
		for _, set := range sets {
			s, err := New(set.keys)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("%s/%dKiB", set.name, size>>10), func(b *testing.B) {
				b.SetBytes(int64(len(m)))
				for b.Loop() {
					msg := s.Begin()
					for p := m; len(p) > 0; {
						n := min(len(p), 64<<10)
						msg.Write(p[:n])
						p = p[n:]
					}
					if sig, err := msg.Finish(); err != nil || sig == "" {
						b.Fatal(sig, err)
					}
				}
			})
		}
	}
}

// TestNoGoroutineLeft: New, a signed, a skipped and an aborted message
// leave no go-msgauth goroutine behind.
func TestNoGoroutineLeft(t *testing.T) {
	ed, _ := GenerateKey(Ed25519, 0)
	before := runtime.NumGoroutine()
	for range 20 {
		s, err := New([]Key{{Domain: "example.com", Selector: "a", Signer: ed}, {Domain: "example.com", Selector: "b", Signer: ed}})
		if err != nil {
			t.Fatal(err)
		}
		s.Sign(msg("From: a@example.com\r\n"))
		s.Sign(msg("From: a@example.net\r\n"))
		m := s.Begin()
		m.Write(msg("From: a@example.com\r\n"))
		m.Abort()
	}
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before; {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d before", runtime.NumGoroutine(), before)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond) // polling for goroutines to end, bounded above
	}
}

// TestBeginFor: a submission is signed only when its From domain goes with
// the envelope sender's (checked against the account): the same domain, a
// subdomain or a parent, never another hosted domain.
func TestBeginFor(t *testing.T) {
	ed, _ := testKeys(t)
	s, err := New([]Key{
		{Domain: "example.com", Selector: "ed1", Signer: ed, Subdomains: true},
		{Domain: "other.example", Selector: "ed1", Signer: ed},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		sender, from string
		signed       bool
	}{
		{"example.com", "alice@example.com", true},
		{"EXAMPLE.com", "alice@Example.COM", true},
		{"example.com", "alice@lists.example.com", true},
		{"mail.example.com", "alice@example.com", true},
		{"example.com", "ceo@other.example", false},
		{"notexample.com", "alice@example.com", false},
		{"", "alice@example.com", false},
	}
	for _, tt := range tests {
		m := s.BeginFor(tt.sender)
		io.WriteString(m, "From: "+tt.from+"\r\nTo: x@far.example\r\nSubject: s\r\n\r\nbody\r\n")
		fields, err := m.Finish()
		if err != nil {
			t.Fatal(err)
		}
		if (fields != "") != tt.signed {
			t.Errorf("sender %q, From %q: signed %v, want %v (%v)", tt.sender, tt.from, fields != "", tt.signed, m.Skipped())
		}
	}
}
