package sasl

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrServerSignature: the SCRAM server's v= did not prove that it knows the
// password's keys. The client must treat the server as an impostor even if
// it replied 235.
const ErrServerSignature = Error("sasl: SCRAM server signature does not verify")

// GS2 headers our client sends (RFC 5802 §7), never with an authzid:
// gs2NoBinding when it cannot bind (no TLS), gs2CanBind when it could but
// the server offered no -PLUS (RFC 5802 §6), and "p=type,," with -PLUS.
// The base64 form of "n,," is the c= value "biws".
const (
	gs2NoBinding = "n,,"
	gs2CanBind   = "y,,"
)

// scramClient stages.
const (
	scramClientNew = iota
	scramClientSentFirst
	scramClientSentFinal
	scramClientDone
)

// scramClient implements the client side of SCRAM-SHA-256 (RFC 5802 §5).
type scramClient struct {
	username, password string
	opts               Options
	stage              int
	cnonce             string
	firstBare          string
	serverSig          []byte
	mech               string
	gs2                string // the GS2 header sent
	cbData             []byte // channel binding data, with -PLUS
}

// NewScramSHA256Client returns a SCRAM-SHA-256 client that verifies the
// server's signature. See NewScramSHA256ClientOptions.
func NewScramSHA256Client(username, password string) Client {
	return NewScramSHA256ClientOptions(username, password, Options{})
}

// NewScramSHA256ClientOptions is NewScramSHA256Client with explicit Options.
//
// The exchange is complete only after Next has verified the server's v=
// message. If the server sends it as RFC 4954 additional data in the 235
// reply instead of a 334 challenge, the caller must still pass it to Next and
// fail on error.
//
// With opts.ChannelBindings (the client is inside TLS) it sends the GS2
// flag "y": it could bind, but the server did not offer -PLUS, which the
// server then checks against what it did offer (RFC 5802 §6).
func NewScramSHA256ClientOptions(username, password string, opts Options) Client {
	gs2 := gs2NoBinding
	if len(opts.ChannelBindings) > 0 {
		gs2 = gs2CanBind
	}
	return &scramClient{username: username, password: password, opts: opts, mech: MechScramSHA256, gs2: gs2}
}

// NewScramSHA256PlusClient returns a SCRAM-SHA-256-PLUS client (RFC 5802
// §6, RFC 7677) that binds the exchange to the first of
// opts.ChannelBindings (see Bindings: tls-exporter on TLS 1.3, tls-unique
// on TLS 1.2). Without a channel binding Start fails.
func NewScramSHA256PlusClient(username, password string, opts Options) Client {
	c := &scramClient{username: username, password: password, opts: opts, mech: MechScramSHA256Plus}
	if len(opts.ChannelBindings) > 0 {
		b := opts.ChannelBindings[0]
		c.gs2, c.cbData = "p="+b.Type+",,", b.Data
	}
	return c
}

func (c *scramClient) Start() (string, []byte, error) {
	if c.stage != scramClientNew {
		return "", nil, errors.New("sasl: SCRAM client: Start called twice")
	}
	if c.username == "" || !utf8.ValidString(c.username) || c.password == "" {
		return "", nil, errors.New("sasl: SCRAM client: empty or invalid username or password")
	}
	if c.gs2 == "" || (c.mech == MechScramSHA256Plus && !validCBName(strings.TrimSuffix(strings.TrimPrefix(c.gs2, "p="), ",,"))) {
		return "", nil, errors.New("sasl: SCRAM-SHA-256-PLUS client: no channel binding")
	}
	user, _ := PrepareUsername(c.username)
	nonce, err := newNonce(c.opts.rand(), c.opts.nonceLength())
	if err != nil {
		return "", nil, err
	}
	c.cnonce = nonce
	c.firstBare = "n=" + escapeSaslname(user) + ",r=" + nonce
	c.stage = scramClientSentFirst
	return c.mech, []byte(c.gs2 + c.firstBare), nil
}

func (c *scramClient) Next(challenge []byte) ([]byte, error) {
	switch c.stage {
	case scramClientSentFirst:
		resp, err := c.final(string(challenge))
		if err != nil {
			c.stage = scramClientDone
			return nil, err
		}
		c.stage = scramClientSentFinal
		return resp, nil
	case scramClientSentFinal:
		c.stage = scramClientDone
		if err := c.verify(string(challenge)); err != nil {
			return nil, err
		}
		return []byte{}, nil
	}
	return nil, errors.New("sasl: SCRAM client: unexpected challenge")
}

// final reads server-first-message and builds client-final-message.
func (c *scramClient) final(serverFirst string) ([]byte, error) {
	nonce, salt, iters, err := c.parseServerFirst(serverFirst)
	if err != nil {
		return nil, err
	}
	salted, err := saltedPassword(prepPassword(c.password), salt, iters)
	if err != nil {
		return nil, fmt.Errorf("sasl: SCRAM client: %w", err)
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	// RFC 5802 §7: c= is the GS2 header, followed with -PLUS by the
	// channel binding data.
	cbind := append([]byte(c.gs2), c.cbData...)
	withoutProof := "c=" + b64().EncodeToString(cbind) + ",r=" + nonce
	authMsg := c.firstBare + "," + serverFirst + "," + withoutProof
	proof := xorBytes(clientKey, hmacSHA256(storedKey[:], authMsg))
	c.serverSig = hmacSHA256(hmacSHA256(salted, "Server Key"), authMsg)
	return []byte(withoutProof + ",p=" + b64().EncodeToString(proof)), nil
}

// parseServerFirst parses "r=nonce,s=salt,i=count[,ext...]" and checks that
// the nonce extends ours and the iteration count is within bounds.
func (c *scramClient) parseServerFirst(msg string) (nonce string, salt []byte, iters int, err error) {
	fields := strings.Split(msg, ",")
	if len(fields) < 3 {
		return "", nil, 0, fmt.Errorf("%w: SCRAM server-first-message", ErrMalformed)
	}
	if _, ok := attr(fields[0], 'm'); ok {
		return "", nil, 0, fmt.Errorf("%w: SCRAM mandatory extension is not supported", ErrMalformed)
	}
	r, ok1 := attr(fields[0], 'r')
	s, ok2 := attr(fields[1], 's')
	i, ok3 := attr(fields[2], 'i')
	if !ok1 || !ok2 || !ok3 {
		return "", nil, 0, fmt.Errorf("%w: SCRAM server-first-message", ErrMalformed)
	}
	if !validNonce(r) || len(r) <= len(c.cnonce) || !strings.HasPrefix(r, c.cnonce) {
		return "", nil, 0, fmt.Errorf("%w: SCRAM server nonce does not extend the client nonce", ErrMalformed)
	}
	if salt, err = b64().DecodeString(s); err != nil || len(salt) == 0 {
		return "", nil, 0, fmt.Errorf("%w: SCRAM salt", ErrMalformed)
	}
	iters, err = strconv.Atoi(i)
	if err != nil || i[0] == '+' || i[0] == '-' {
		return "", nil, 0, fmt.Errorf("%w: SCRAM iteration count", ErrMalformed)
	}
	// RFC 7677 §4: at least 4096 iterations.
	if iters < MinIterations || iters > maxClientIterations {
		return "", nil, 0, fmt.Errorf("sasl: SCRAM iteration count %d outside [%d, %d]", iters, MinIterations, maxClientIterations)
	}
	return r, salt, iters, nil
}

// verify checks server-final-message: "v=signature" or "e=error".
func (c *scramClient) verify(msg string) error {
	first, _, _ := strings.Cut(msg, ",")
	if e, ok := attr(first, 'e'); ok {
		return fmt.Errorf("sasl: SCRAM server error %q", e)
	}
	v, ok := attr(first, 'v')
	if !ok {
		return fmt.Errorf("%w: SCRAM server-final-message", ErrMalformed)
	}
	sig, err := b64().DecodeString(v)
	if err != nil || !hmac.Equal(sig, c.serverSig) {
		return ErrServerSignature
	}
	return nil
}
