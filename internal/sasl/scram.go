package sasl

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// ScramKeys is what a SCRAM-SHA-256 server stores per account instead of the
// password (RFC 5802 §3, RFC 7677).
type ScramKeys struct {
	Iterations int
	Salt       []byte
	StoredKey  []byte
	ServerKey  []byte
}

// MinIterations is the smallest iteration count RFC 7677 §4 allows; the
// client refuses anything lower.
const MinIterations = 4096

// maxClientIterations bounds the work a server can make our client do.
const maxClientIterations = 10_000_000

// NewScramKeys derives the stored keys for password (RFC 5802 §3):
//
//	SaltedPassword := Hi(Normalize(password), salt, i)
//	ClientKey      := HMAC(SaltedPassword, "Client Key")
//	StoredKey      := H(ClientKey)
//	ServerKey      := HMAC(SaltedPassword, "Server Key")
//
// Normalize is PreparePassword (RFC 8265 §4.2 OpaqueString, the successor
// of SASLprep), which leaves ASCII passwords as they are. If the key derivation
// refuses the parameters (possible only in FIPS 140-only mode), the returned
// keys have no StoredKey and never verify.
func NewScramKeys(password string, salt []byte, iterations int) ScramKeys {
	keys := ScramKeys{Iterations: iterations, Salt: append([]byte(nil), salt...)}
	salted, err := saltedPassword(prepPassword(password), salt, iterations)
	if err != nil {
		return keys
	}
	clientKey := hmacSHA256(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	keys.StoredKey = stored[:]
	keys.ServerKey = hmacSHA256(salted, "Server Key")
	return keys
}

// saltedPassword is Hi() of RFC 5802 §2.2, which is PBKDF2 with one block.
func saltedPassword(password string, salt []byte, iterations int) ([]byte, error) {
	if iterations < 1 {
		return nil, errors.New("sasl: SCRAM iteration count must be positive")
	}
	return pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func xorBytes(a, b []byte) []byte {
	out := make([]byte, len(a))
	for i := range a {
		out[i] = a[i] ^ b[i]
	}
	return out
}

// nonceByte reports whether b may appear in a nonce: RFC 5802 §7
// "printable" is %x21-2B / %x2D-7E, i.e. visible ASCII except ",".
func nonceByte(b byte) bool {
	return b >= 0x21 && b <= 0x7e && b != ','
}

// newNonce takes n nonce characters from r, keeping only the bytes that are
// themselves printable nonce characters (rejection sampling, so each
// character is uniform over 93 values). Reading is bounded: a source that
// yields too few usable bytes is an error.
func newNonce(r io.Reader, n int) (string, error) {
	out := make([]byte, 0, n)
	buf := make([]byte, n)
	for read := 0; len(out) < n; {
		if read > 64*n {
			return "", errors.New("sasl: nonce source yields too few printable bytes")
		}
		need := buf[:n-len(out)]
		if _, err := io.ReadFull(r, need); err != nil {
			return "", fmt.Errorf("sasl: reading nonce: %w", err)
		}
		read += len(need)
		for _, b := range need {
			if nonceByte(b) {
				out = append(out, b)
			}
		}
	}
	return string(out), nil
}

// validNonce checks a peer's nonce: non-empty, printable.
func validNonce(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !nonceByte(s[i]) {
			return false
		}
	}
	return true
}

// escapeSaslname encodes a username for n= and a= (RFC 5802 §5.1):
// "," becomes "=2C" and "=" becomes "=3D".
func escapeSaslname(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

// unescapeSaslname reverses escapeSaslname and rejects any other use of "="
// and invalid UTF-8, as RFC 5802 §5.1 requires.
func unescapeSaslname(s string) (string, error) {
	if s == "" || !utf8.ValidString(s) {
		return "", fmt.Errorf("%w: bad SCRAM saslname", ErrMalformed)
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", fmt.Errorf("%w: bad escape in SCRAM saslname", ErrMalformed)
		}
		i += 2
	}
	return b.String(), nil
}

// attr returns the value of a SCRAM attribute "k=value" whose key must be k.
func attr(field string, k byte) (string, bool) {
	if len(field) < 2 || field[0] != k || field[1] != '=' {
		return "", false
	}
	return field[2:], true
}

// validExtension checks an optional extension attribute (RFC 5802 §7
// attr-val): a letter, "=", and a value without ",". Splitting on "," has
// already removed commas.
func validExtension(field string) bool {
	if len(field) < 2 || field[1] != '=' {
		return false
	}
	c := field[0]
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

// gs2Header is the parsed GS2 header of a client-first-message (RFC 5802 §7).
type gs2Header struct {
	raw     string // "n,,", "y,," or "p=type,," plus any a=..., exactly as sent
	flag    byte   // 'n', 'y' or 'p'
	cbType  string // the channel binding type after "p="
	authzid string // decoded; "" when absent
}

// validCBName checks a cb-name (RFC 5802 §7: 1*(ALPHA / DIGIT / "." / "-")).
func validCBName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// parseClientFirst splits a client-first-message into its GS2 header and
// bare part, and the bare part into username and nonce. Channel binding
// ("p=") and mandatory extensions ("m=") are unsupported and malformed here.
func parseClientFirst(msg string) (hdr gs2Header, bare, user, nonce string, err error) {
	flag, rest, ok1 := strings.Cut(msg, ",")
	authz, bare, ok2 := strings.Cut(rest, ",")
	if !ok1 || !ok2 {
		return hdr, "", "", "", fmt.Errorf("%w: SCRAM GS2 header", ErrMalformed)
	}
	switch {
	case flag == "n" || flag == "y":
		hdr.flag = flag[0]
	case strings.HasPrefix(flag, "p=") && validCBName(flag[2:]):
		hdr.flag, hdr.cbType = 'p', flag[2:]
	default:
		return hdr, "", "", "", fmt.Errorf("%w: SCRAM GS2 flag", ErrMalformed)
	}
	if authz != "" {
		v, ok := attr(authz, 'a')
		if !ok {
			return hdr, "", "", "", fmt.Errorf("%w: SCRAM authzid", ErrMalformed)
		}
		if hdr.authzid, err = unescapeSaslname(v); err != nil {
			return hdr, "", "", "", err
		}
	}
	hdr.raw = msg[:len(flag)+len(authz)+2]
	user, nonce, err = parseFirstBare(bare)
	return hdr, bare, user, nonce, err
}

// parseFirstBare parses client-first-message-bare:
// [reserved-mext ","] username "," nonce ["," extensions].
func parseFirstBare(bare string) (user, nonce string, err error) {
	fields := strings.Split(bare, ",")
	if len(fields) < 2 {
		return "", "", fmt.Errorf("%w: SCRAM client-first-message", ErrMalformed)
	}
	if _, ok := attr(fields[0], 'm'); ok {
		return "", "", fmt.Errorf("%w: SCRAM mandatory extension is not supported", ErrMalformed)
	}
	n, ok1 := attr(fields[0], 'n')
	r, ok2 := attr(fields[1], 'r')
	if !ok1 || !ok2 || !validNonce(r) {
		return "", "", fmt.Errorf("%w: SCRAM username or nonce", ErrMalformed)
	}
	for _, f := range fields[2:] {
		if !validExtension(f) {
			return "", "", fmt.Errorf("%w: SCRAM extension", ErrMalformed)
		}
	}
	if user, err = unescapeSaslname(n); err != nil {
		return "", "", err
	}
	return user, r, nil
}

// clientFinal is a parsed client-final-message (RFC 5802 §7).
type clientFinal struct {
	channelBinding string // c= value, base64
	nonce          string
	withoutProof   string
	proof          string // p= value, base64
}

// parseClientFinal parses "c=..,r=..[,ext...],p=..".
func parseClientFinal(msg string) (clientFinal, error) {
	var cf clientFinal
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return cf, fmt.Errorf("%w: SCRAM client-final-message lacks proof", ErrMalformed)
	}
	cf.withoutProof, cf.proof = msg[:i], msg[i+3:]
	fields := strings.Split(cf.withoutProof, ",")
	if len(fields) < 2 {
		return cf, fmt.Errorf("%w: SCRAM client-final-message", ErrMalformed)
	}
	var ok1, ok2 bool
	cf.channelBinding, ok1 = attr(fields[0], 'c')
	cf.nonce, ok2 = attr(fields[1], 'r')
	if !ok1 || !ok2 {
		return cf, fmt.Errorf("%w: SCRAM client-final-message", ErrMalformed)
	}
	for _, f := range fields[2:] {
		if !validExtension(f) {
			return cf, fmt.Errorf("%w: SCRAM extension", ErrMalformed)
		}
	}
	return cf, nil
}
