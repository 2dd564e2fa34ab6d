package dkim

import (
	"bytes"
	"errors"
	"fmt"

	msgauth "github.com/emersion/go-msgauth/dkim"
)

// ErrNoRecord is returned by Check when no key record is published.
var ErrNoRecord = errors.New("no DKIM key record")

// Check reports whether records, the TXT records published at
// RecordName(k.Selector, k.Domain), let a verifier check k's signatures:
// it signs a test message with k and verifies it with go-msgauth, the
// records standing in for DNS, so the record is read as a verifier reads
// it (RFC 6376 §3.6.1 tags, RFC 8463 §4.2 for k=ed25519). nil means they
// match; the error says why not.
func Check(k Key, records []string) error {
	if len(records) == 0 {
		return ErrNoRecord
	}
	if len(records) > 1 {
		// RFC 6376 §3.6.2.2: a verifier may pick any one of several records.
		return fmt.Errorf("%d TXT records: a verifier may use any one of them; publish one", len(records))
	}
	s, err := New([]Key{{Domain: k.Domain, Selector: k.Selector, Signer: k.Signer}})
	if err != nil {
		return err
	}
	msg := []byte("From: <check@" + k.Domain + ">\r\nSubject: smtpkit dkim check\r\n\r\ntest\r\n")
	sig, err := s.Sign(msg)
	if err != nil {
		return err
	}
	vs, err := msgauth.VerifyWithOptions(bytes.NewReader(append([]byte(sig), msg...)), &msgauth.VerifyOptions{
		LookupTXT: func(string) ([]string, error) { return records, nil },
	})
	if err != nil {
		return err
	}
	if len(vs) != 1 {
		return fmt.Errorf("%d signatures verified, want 1", len(vs))
	}
	return vs[0].Err
}
