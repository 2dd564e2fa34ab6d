package delivery

import (
	"bytes"
	"crypto"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"

	msgauth "github.com/emersion/go-msgauth/dkim"

	"smtpkit/internal/dkim"
	"smtpkit/internal/queue"
	"smtpkit/internal/tlspolicy"
)

// dkimKey makes an Ed25519 key for d=local.example.
func dkimKey(t *testing.T, selector string) dkim.Key {
	t.Helper()
	k, err := dkim.GenerateKey(dkim.Ed25519, 0)
	if err != nil {
		t.Fatal(err)
	}
	return dkim.Key{Domain: "local.example", Selector: selector, Signer: k.(crypto.Signer)}
}

// verifyDKIM checks msg with go-msgauth, keys' public halves standing in
// for DNS, and returns "ok" or "bad" per signature, in header order.
func verifyDKIM(t *testing.T, msg string, keys ...dkim.Key) []string {
	t.Helper()
	zone := map[string]string{}
	for _, k := range keys {
		rec, err := dkim.Record(k.Signer.Public())
		if err != nil {
			t.Fatal(err)
		}
		zone[dkim.RecordName(k.Selector, k.Domain)] = rec
	}
	vs, err := msgauth.VerifyWithOptions(strings.NewReader(msg), &msgauth.VerifyOptions{
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
	var out []string
	for _, v := range vs {
		if v.Err != nil {
			out = append(out, "bad")
		} else {
			out = append(out, "ok")
		}
	}
	return out
}

// TestRemoteDowngradeResigns: a message converted to 7 bit loses our
// DKIM-Signature, which the conversion breaks, and is signed again with
// the same key, so that it verifies where it arrives; a prepended field
// that is not our signature (another key's, or another field) stays; the
// unconverted message keeps its signature; without a signer the broken
// signature goes as it is (the case before).
func TestRemoteDowngradeResigns(t *testing.T) {
	ours, other := dkimKey(t, "ours"), dkimKey(t, "other")
	signer, err := dkim.New([]dkim.Key{ours})
	if err != nil {
		t.Fatal(err)
	}
	otherSigner, err := dkim.New([]dkim.Key{other})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(s *dkim.Signer) string {
		f, err := s.Sign([]byte(eightBitBody))
		if err != nil || f == "" {
			t.Fatalf("sign: %q, %v", f, err)
		}
		return f
	}
	oursFields, otherFields := sign(signer), sign(otherSigner)
	const foreign = "X-Foreign: kept\r\n"
	tests := []struct {
		name      string
		no8bit    bool
		signer    *dkim.Signer
		prepend   string
		want      []string // verification results, in the arrived order
		wantKept  []string // prepended fields that must arrive
		wantSigns int      // DKIM-Signature fields by "ours"
	}{
		{"converted, ours", true, signer, oursFields, []string{"ok"}, nil, 1},
		{"converted, ours and foreign", true, signer, oursFields + foreign, []string{"ok"}, []string{foreign}, 1},
		{"converted, another key's kept", true, signer, otherFields + oursFields, []string{"ok", "bad"}, []string{otherFields}, 1},
		{"converted, no signer", true, nil, oursFields, []string{"bad"}, []string{oursFields}, 1},
		{"8BITMIME offered", false, signer, oursFields, []string{"ok"}, []string{oursFields}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f1, _, port := twoMX(t, &script{no8BITMIME: tt.no8bit}, nil)
			e := newEnv(t, port, envOpts{policy: tlspolicy.None, signer: tt.signer})
			whole := tt.prepend + eightBitBody
			d := attemptOf(whole, true)
			d.Prepend = tt.prepend
			wantOutcomes(t, e.deliver(t, d), "ok")
			msgs := f1.Messages()
			if len(msgs) != 1 {
				t.Fatalf("%d messages arrived", len(msgs))
			}
			got := msgs[0].Body
			if tt.no8bit == (got == whole) {
				t.Errorf("converted %v, arrived %q", tt.no8bit, got)
			}
			if r := verifyDKIM(t, got, ours, other); strings.Join(r, ",") != strings.Join(tt.want, ",") {
				t.Errorf("verified %v, want %v in %q", r, tt.want, got)
			}
			for _, k := range tt.wantKept {
				if !strings.Contains(got, k) {
					t.Errorf("%q missing from %q", k, got)
				}
			}
			if n := strings.Count(got, "s=ours;"); n != tt.wantSigns {
				t.Errorf("%d signatures by s=ours, want %d, in %q", n, tt.wantSigns, got)
			}
			if !strings.Contains(msgs[0].MailArgs, "SIZE="+strconv.Itoa(len(got))) {
				t.Errorf("MAIL %q: want SIZE=%d", msgs[0].MailArgs, len(got))
			}
		})
	}
}

// TestWithoutPrependMismatch: a stream that does not start with the
// prepended fields is a temporary error, not a message sent without them.
func TestWithoutPrependMismatch(t *testing.T) {
	d := &queue.Attempt{Prepend: "DKIM-Signature: x\r\n", Open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader([]byte("Subject: other\r\n\r\n"))), nil
	}}
	if rc, err := withoutPrepend(d, ""); err == nil {
		rc.Close()
		t.Fatal("no error")
	}
}
