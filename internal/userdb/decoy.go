package userdb

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"smtpkit/internal/atomicfile"
)

// secretLen is the size of the server secret in bytes.
const secretLen = 32

// newSecret returns secretLen random bytes (crypto/rand never fails).
func newSecret() []byte {
	b := make([]byte, secretLen)
	rand.Read(b)
	return b
}

// ScramDecoy returns the SCRAM-SHA-256 salt and iteration count to send
// for a username that has no account (RFC 5802 §9): a salt as long as an
// account's, derived from the store's secret and the normalised name, so
// that it is the same in every exchange and across restarts, differs
// between names, and cannot be told from a real one without the secret;
// and the iteration count new accounts get. An attacker who asks twice
// therefore learns nothing about whether the account exists.
func (f *File) ScramDecoy(username string) (salt []byte, iterations int) {
	m := hmac.New(sha256.New, f.secret)
	io.WriteString(m, "smtpkit scram-sha-256 decoy salt\x00")
	io.WriteString(m, normalize(username))
	return m.Sum(nil)[:saltLen], ScramIterations
}

// LoadSecret returns the server secret kept in path: 32 random bytes,
// written once as hex, mode 0600. A missing file is created (temp file,
// fsync, link into place, fsync of the directory), so the value is the
// same across restarts; when two processes create it at once, both end
// with the one that was linked first. A file of the wrong size or content
// is an error, never silently replaced: that would change every decoy.
func LoadSecret(path string) ([]byte, error) {
	for range 2 {
		raw, err := os.ReadFile(path)
		if err == nil {
			return parseSecret(path, raw)
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("userdb: server secret: %w", err)
		}
		if err := createSecret(path); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("userdb: server secret: %w", err)
		}
	}
	return nil, fmt.Errorf("userdb: server secret %s vanished while being created", path)
}

func parseSecret(path string, raw []byte) ([]byte, error) {
	b, err := hex.DecodeString(string(bytes.TrimSpace(raw)))
	if err != nil || len(b) != secretLen {
		return nil, fmt.Errorf("userdb: server secret %s is not %d bytes of hex; "+
			"restore it from a backup (a new one changes every SCRAM decoy salt)", path, secretLen)
	}
	return b, nil
}

// createSecret writes a new secret to a temporary file and links it to
// path, which fails with ErrExist if another process was first.
func createSecret(path string) error {
	return atomicfile.WriteWith(path, []byte(hex.EncodeToString(newSecret())+"\n"),
		atomicfile.Options{Perm: 0o600, NoReplace: true})
}
