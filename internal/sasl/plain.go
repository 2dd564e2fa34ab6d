package sasl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"unicode/utf8"
)

// plainServer implements RFC 4616 PLAIN: one message
//
//	message = [authzid] NUL authcid NUL passwd
//
// sent as the initial response or in answer to an empty challenge.
type plainServer struct {
	creds    Credentials
	steps    steps
	claimed  string // authcid, once parsed
	username string
}

func (p *plainServer) Username() string { return p.username }
func (p *plainServer) Identity() string { return p.claimed }

func (p *plainServer) Next(ctx context.Context, response []byte) ([]byte, bool, error) {
	if err := p.steps.admit(response); err != nil {
		return nil, true, err
	}
	// RFC 4954 §4: without an initial response the server sends an empty
	// challenge and the message arrives as the reply.
	if response == nil && p.steps.n == 1 {
		return []byte{}, false, nil
	}
	authzid, authcid, passwd, err := parsePlain(response)
	if err != nil {
		return p.steps.finish(err)
	}
	// RFC 4616 §2 asks for SASLprep of both identities and the password;
	// RFC 8265's profiles are its successor (prep.go).
	authcid, _ = PrepareUsername(authcid)
	if authzid != "" {
		authzid, _ = PrepareUsername(authzid)
	}
	passwd = prepPassword(passwd)
	p.claimed = authcid
	// RFC 4616 §2: the server decides whether authcid may act as authzid;
	// smtpkit allows only acting as oneself.
	if authzid != "" && authzid != authcid {
		return p.steps.finish(ErrInvalidCredentials)
	}
	if err := checkStoreError(p.creds.CheckPassword(ctx, authcid, passwd)); err != nil {
		return p.steps.finish(err)
	}
	p.username = authcid
	return p.steps.finish(nil)
}

// parsePlain splits a PLAIN message (RFC 4616 §2). authcid and passwd must
// be non-empty, every part valid UTF-8 without NUL.
func parsePlain(msg []byte) (authzid, authcid, passwd string, err error) {
	parts := bytes.Split(msg, []byte{0})
	if len(parts) != 3 {
		return "", "", "", fmt.Errorf("%w: PLAIN message needs exactly two NUL separators", ErrMalformed)
	}
	if len(parts[1]) == 0 || len(parts[2]) == 0 {
		return "", "", "", fmt.Errorf("%w: PLAIN authcid and passwd must not be empty", ErrMalformed)
	}
	for _, part := range parts {
		if !utf8.Valid(part) {
			return "", "", "", fmt.Errorf("%w: PLAIN message is not UTF-8", ErrMalformed)
		}
	}
	return string(parts[0]), string(parts[1]), string(parts[2]), nil
}

// plainClient sends the PLAIN message as the initial response.
type plainClient struct {
	msg  []byte
	sent int
}

// NewPlainClient returns a PLAIN client. identity is the authorization
// identity and is usually "" (act as username).
func NewPlainClient(identity, username, password string) Client {
	msg := make([]byte, 0, len(identity)+len(username)+len(password)+2)
	msg = append(msg, identity...)
	msg = append(msg, 0)
	msg = append(msg, username...)
	msg = append(msg, 0)
	msg = append(msg, password...)
	return &plainClient{msg: msg}
}

func (c *plainClient) Start() (string, []byte, error) {
	if _, _, _, err := parsePlain(c.msg); err != nil {
		return "", nil, fmt.Errorf("sasl: PLAIN client: %w", err)
	}
	c.sent = 1
	return MechPlain, c.msg, nil
}

// Next answers a server that ignored the initial response and sent an empty
// challenge by repeating the message once; any other challenge is an error.
func (c *plainClient) Next(challenge []byte) ([]byte, error) {
	if c.sent != 1 || len(challenge) != 0 {
		return nil, errors.New("sasl: PLAIN client: unexpected challenge")
	}
	c.sent++
	return c.msg, nil
}
