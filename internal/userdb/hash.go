package userdb

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"golang.org/x/crypto/argon2"

	"smtpkit/internal/sasl"
)

// Argon2id parameters for new hashes: OWASP's recommended minimum
// (19 MiB, 2 passes, 1 lane), RFC 9106 §4 for the algorithm.
const (
	argonMemory  = 19456 // KiB
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	saltLen      = 16
)

// ScramIterations is the PBKDF2 iteration count for new SCRAM-SHA-256 keys
// (RFC 7677 §4 recommends at least 4096).
const ScramIterations = 4096

// credentials derives everything stored for a password: the argon2id PHC
// string and the SCRAM-SHA-256 keys, each with its own random salt.
// The password is prepared first (sasl.PreparePassword: RFC 8265 §4.2
// OpaqueString, NFC), as verifyPassword and the SCRAM exchange do, so a
// password matches in whichever Unicode form a client sends it; ASCII
// passwords are unchanged, so hashes made before stay valid.
func credentials(password string) (string, ScramKeys, error) {
	password, _ = sasl.PreparePassword(password)
	if password == "" {
		return "", ScramKeys{}, errors.New("userdb: empty password")
	}
	if len(password) > maxPasswordLen {
		return "", ScramKeys{}, fmt.Errorf("userdb: password longer than %d bytes", maxPasswordLen)
	}
	salt := make([]byte, saltLen)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	phc := fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key))
	scramSalt := make([]byte, saltLen)
	rand.Read(scramSalt)
	keys, err := DeriveScram(password, scramSalt, ScramIterations)
	return phc, keys, err
}

// b64 is the PHC string format's base64: standard alphabet, no padding.
var b64 = base64.RawStdEncoding

// DeriveScram computes the SCRAM-SHA-256 keys (RFC 5802 §3) with
// sasl.NewScramKeys, the one derivation the server's SCRAM exchange checks
// them with.
func DeriveScram(password string, salt []byte, iterations int) (ScramKeys, error) {
	k := sasl.NewScramKeys(password, salt, iterations)
	if k.StoredKey == nil {
		return ScramKeys{}, errors.New("userdb: the SCRAM key derivation refused the parameters")
	}
	return ScramKeys{Iterations: k.Iterations, Salt: k.Salt, StoredKey: k.StoredKey, ServerKey: k.ServerKey}, nil
}

// hashSlots is the number of argon2id computations that may run at once:
// n, or one per CPU the Go scheduler uses. Each takes argonMemory (19 MiB)
// while it runs, so this bounds the memory logins can take, whatever the
// number of clients trying at once.
func hashSlots(n int) int {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	return n
}

// hashSlot waits for a free hash slot, or until ctx ends (ErrBusy). The
// returned function gives the slot back.
func (f *File) hashSlot(ctx context.Context) (func(), error) {
	select {
	case f.hashes <- struct{}{}:
		return func() { <-f.hashes }, nil
	default:
	}
	select {
	case f.hashes <- struct{}{}:
		return func() { <-f.hashes }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrBusy, ctx.Err())
	}
}

// argonParams is a parsed PHC string.
type argonParams struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

// parsePHC parses "$argon2id$v=19$m=M,t=T,p=P$salt$hash" and bounds the
// cost parameters, so a damaged file cannot make a login take gigabytes.
func parsePHC(s string) (argonParams, error) {
	var p argonParams
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" ||
		parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return p, errors.New("userdb: not an argon2id v=19 PHC string")
	}
	var m, t, threads uint64
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &threads); err != nil {
		return p, fmt.Errorf("userdb: argon2id parameters: %w", err)
	}
	if m < 8 || m > 1<<21 || t < 1 || t > 64 || threads < 1 || threads > 64 {
		return p, errors.New("userdb: argon2id parameters out of range")
	}
	salt, err1 := b64.DecodeString(parts[4])
	key, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 || len(key) > 128 {
		return p, errors.New("userdb: argon2id salt or hash malformed")
	}
	return argonParams{uint32(m), uint32(t), uint8(threads), salt, key}, nil
}

// verifyPassword reports whether password matches the PHC string, comparing
// in constant time. A malformed hash never matches.
// The password is prepared as credentials prepares it.
func verifyPassword(phc, password string) bool {
	password, _ = sasl.PreparePassword(password)
	p, err := parsePHC(phc)
	if err != nil {
		dummyWork(password)
		return false
	}
	got := argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	return subtle.ConstantTimeCompare(got, p.key) == 1
}

// dummyWork spends one argon2id computation with the default parameters,
// so that a failed login for an unknown user takes as long as one for a
// known user with a wrong password.
func dummyWork(password string) {
	var salt [saltLen]byte
	argon2.IDKey([]byte(password), salt[:], argonTime, argonMemory, argonThreads, argonKeyLen)
}
