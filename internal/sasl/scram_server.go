package sasl

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// b64 returns the strict standard base64 SCRAM uses for salt, proof,
// signature and channel binding (RFC 5802 §7).
func b64() *base64.Encoding { return base64.StdEncoding.Strict() }

// fakeSaltLength is the salt length sent for unknown users.
const fakeSaltLength = 16

// scramServer stages.
const (
	scramAwaitFirst = iota
	scramAwaitFinal
	scramAwaitAck
)

// scramServer implements the server side of SCRAM-SHA-256 (RFC 5802 §5,
// RFC 7677):
//
//	C: n,,n=user,r=cnonce                      (initial response, or after an empty challenge)
//	S: r=cnonce+snonce,s=salt,i=iterations     (334)
//	C: c=biws,r=cnonce+snonce,p=proof
//	S: v=signature                             (334, done=false)
//	C: (empty)                                 → done, success
//
// A wrong proof ends the exchange with ErrInvalidCredentials instead of an
// "e=" server-final-message; the session's 535 carries the failure.
type scramServer struct {
	creds    Credentials
	opts     Options
	steps    steps
	stage    int
	hdr      gs2Header
	user     string
	keys     ScramKeys
	unknown  bool // no such user: the exchange runs on fake keys and fails
	nonce    string
	authMsg  string // client-first-bare "," server-first, completed in final
	username string
	plus     bool           // SCRAM-SHA-256-PLUS
	binding  ChannelBinding // the binding the client chose (plus only)
}

func (s *scramServer) Username() string { return s.username }
func (s *scramServer) Identity() string { return s.user }

func (s *scramServer) Next(ctx context.Context, response []byte) ([]byte, bool, error) {
	if err := s.steps.admit(response); err != nil {
		return nil, true, err
	}
	switch s.stage {
	case scramAwaitFirst:
		if response == nil && s.steps.n == 1 {
			return []byte{}, false, nil
		}
		return s.first(ctx, string(response))
	case scramAwaitFinal:
		return s.final(string(response))
	}
	// RFC 4954 §4: the client answers the server-final data with an empty
	// response, after which the server replies 235.
	if len(response) != 0 {
		return s.steps.finish(fmt.Errorf("%w: SCRAM expected an empty response after v=", ErrMalformed))
	}
	s.username = s.user
	return s.steps.finish(nil)
}

// maxClientNonce bounds the client's nonce; real clients send 24 to 64
// characters.
const maxClientNonce = 512

// first handles client-first-message and returns server-first-message.
func (s *scramServer) first(ctx context.Context, msg string) ([]byte, bool, error) {
	hdr, bare, user, cnonce, err := parseClientFirst(msg)
	if err != nil {
		return s.steps.finish(err)
	}
	if len(cnonce) > maxClientNonce {
		// The server echoes the nonce: bound what a client can make it send.
		return s.steps.finish(fmt.Errorf("%w: client nonce of %d bytes exceeds %d", ErrMalformed, len(cnonce), maxClientNonce))
	}
	user, _ = PrepareUsername(user)
	s.user = user
	if err := s.checkFlag(hdr); err != nil {
		return s.steps.finish(err)
	}
	if hdr.authzid != "" && hdr.authzid != user {
		return s.steps.finish(ErrInvalidCredentials)
	}
	if err := s.lookup(ctx, user); err != nil {
		return s.steps.finish(err)
	}
	snonce, err := newNonce(s.opts.rand(), s.opts.nonceLength())
	if err != nil {
		return s.steps.finish(err)
	}
	s.hdr, s.nonce = hdr, cnonce+snonce
	serverFirst := "r=" + s.nonce + ",s=" + b64().EncodeToString(s.keys.Salt) +
		",i=" + strconv.Itoa(s.keys.Iterations)
	s.authMsg = bare + "," + serverFirst
	s.stage = scramAwaitFinal
	return []byte(serverFirst), false, nil
}

// lookup loads the user's keys. For an unknown user it carries on with the
// store's decoy salt and iteration count (Decoys), so that the reply to
// client-first does not reveal whether the account exists (RFC 5802 §9);
// the proof check then fails whatever the client sends.
func (s *scramServer) lookup(ctx context.Context, user string) error {
	keys, err := s.creds.ScramKeys(ctx, user)
	switch err = checkStoreError(err); {
	case err == ErrInvalidCredentials:
		salt, iterations, err := s.decoy(user)
		if err != nil {
			return err
		}
		s.keys, s.unknown = ScramKeys{Iterations: iterations, Salt: salt}, true
		return nil
	case err != nil:
		return err
	}
	if keys.Iterations < 1 || len(keys.Salt) == 0 ||
		len(keys.StoredKey) != sha256.Size || len(keys.ServerKey) != sha256.Size {
		return fmt.Errorf("sasl: credentials store: unusable SCRAM keys for %q", user)
	}
	s.keys = keys
	return nil
}

// decoy returns the salt and iteration count for an unknown user: the
// store's decoy, or a fresh random salt when the store has none.
func (s *scramServer) decoy(user string) ([]byte, int, error) {
	if d, ok := s.creds.(Decoys); ok {
		if salt, iterations := d.ScramDecoy(user); len(salt) > 0 && iterations > 0 {
			return salt, iterations, nil
		}
	}
	salt := make([]byte, fakeSaltLength)
	if _, err := io.ReadFull(s.opts.rand(), salt); err != nil {
		return nil, 0, fmt.Errorf("sasl: reading salt: %w", err)
	}
	return salt, MinIterations, nil
}

// final checks client-final-message and returns server-final-message.
func (s *scramServer) final(msg string) ([]byte, bool, error) {
	cf, err := parseClientFinal(msg)
	if err != nil {
		return s.steps.finish(err)
	}
	cbind, err := b64().DecodeString(cf.channelBinding)
	if err != nil || !strings.HasPrefix(string(cbind), s.hdr.raw) {
		return s.steps.finish(fmt.Errorf("%w: SCRAM channel binding does not match the GS2 header", ErrMalformed))
	}
	// RFC 5802 §6: c= is the GS2 header followed, with "p=", by the
	// channel binding data, which must equal the server's own view of
	// the channel (else someone sits in the middle of the TLS).
	if !hmac.Equal(cbind[len(s.hdr.raw):], s.binding.Data) {
		return s.steps.finish(bindingFailure("the " + s.binding.Type + " data differ from this connection's"))
	}
	if cf.nonce != s.nonce {
		return s.steps.finish(fmt.Errorf("%w: SCRAM nonce mismatch", ErrMalformed))
	}
	proof, err := b64().DecodeString(cf.proof)
	if err != nil || len(proof) != sha256.Size {
		return s.steps.finish(fmt.Errorf("%w: SCRAM proof", ErrMalformed))
	}
	authMsg := s.authMsg + "," + cf.withoutProof
	if s.unknown || !s.verifyProof(proof, authMsg) {
		return s.steps.finish(ErrInvalidCredentials)
	}
	s.stage = scramAwaitAck
	return []byte("v=" + b64().EncodeToString(hmacSHA256(s.keys.ServerKey, authMsg))), false, nil
}

// checkFlag holds the GS2 flag to the mechanism (RFC 5802 §6):
//   - -PLUS needs "p=" with a type this connection offers;
//   - without -PLUS, "p=" is refused, and "y" (the client can bind but
//     thinks the server cannot) is refused when this server offers -PLUS
//     here: someone removed it from the EHLO reply;
//   - "n" (the client cannot bind) is accepted without -PLUS.
func (s *scramServer) checkFlag(hdr gs2Header) error {
	switch {
	case s.plus && hdr.flag != 'p':
		return fmt.Errorf("%w: SCRAM-SHA-256-PLUS without channel binding", ErrMalformed)
	case s.plus:
		b, ok := findBinding(s.opts.ChannelBindings, hdr.cbType)
		if !ok {
			return bindingFailure("channel binding type " + strconv.Quote(hdr.cbType) + " is not offered on this connection")
		}
		s.binding = b
	case hdr.flag == 'p':
		return fmt.Errorf("%w: SCRAM channel binding requested without -PLUS", ErrMalformed)
	case hdr.flag == 'y' && len(s.opts.ChannelBindings) > 0:
		return bindingFailure("the client can bind but did not see SCRAM-SHA-256-PLUS, which this server offers (downgrade)")
	}
	return nil
}

// verifyProof recovers ClientKey from the proof and compares its hash with
// StoredKey in constant time (RFC 5802 §3).
func (s *scramServer) verifyProof(proof []byte, authMsg string) bool {
	clientSig := hmacSHA256(s.keys.StoredKey, authMsg)
	clientKey := xorBytes(proof, clientSig)
	stored := sha256.Sum256(clientKey)
	return hmac.Equal(stored[:], s.keys.StoredKey)
}
