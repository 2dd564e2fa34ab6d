package sasl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"unicode/utf8"
)

// LOGIN challenges (draft-murchison-sasl-login-00 §2). The session
// base64-encodes them.
const (
	loginUsernameChallenge = "Username:"
	loginPasswordChallenge = "Password:"
)

// loginServer implements the obsolete but widespread LOGIN mechanism:
//
//	S: Username:   C: <username>
//	S: Password:   C: <password>
//
// A client may send the username as the initial response, which skips the
// first challenge.
type loginServer struct {
	creds    Credentials
	steps    steps
	pending  string // username received, password not yet
	haveUser bool
	username string
}

func (l *loginServer) Username() string { return l.username }
func (l *loginServer) Identity() string { return l.pending }

func (l *loginServer) Next(ctx context.Context, response []byte) ([]byte, bool, error) {
	if err := l.steps.admit(response); err != nil {
		return nil, true, err
	}
	if !l.haveUser {
		if response == nil && l.steps.n == 1 {
			return []byte(loginUsernameChallenge), false, nil
		}
		user, err := loginField(response, "username")
		if err != nil {
			return l.steps.finish(err)
		}
		user, _ = PrepareUsername(user) // as PLAIN (prep.go)
		l.pending, l.haveUser = user, true
		return []byte(loginPasswordChallenge), false, nil
	}
	if len(response) == 0 {
		return l.steps.finish(ErrInvalidCredentials)
	}
	pass, err := loginField(response, "password")
	if err != nil {
		return l.steps.finish(err)
	}
	if err := checkStoreError(l.creds.CheckPassword(ctx, l.pending, prepPassword(pass))); err != nil {
		return l.steps.finish(err)
	}
	l.username = l.pending
	return l.steps.finish(nil)
}

// loginField validates one LOGIN response: non-empty UTF-8 without NUL.
func loginField(b []byte, what string) (string, error) {
	switch {
	case len(b) == 0:
		return "", fmt.Errorf("%w: empty LOGIN %s", ErrMalformed, what)
	case bytes.IndexByte(b, 0) >= 0:
		return "", fmt.Errorf("%w: NUL in LOGIN %s", ErrMalformed, what)
	case !utf8.Valid(b):
		return "", fmt.Errorf("%w: LOGIN %s is not UTF-8", ErrMalformed, what)
	}
	return string(b), nil
}

// loginClient answers "Username:" and "Password:" challenges. It sends no
// initial response, since not every server accepts one for LOGIN.
type loginClient struct {
	username, password string
	step               int
}

// NewLoginClient returns a LOGIN client.
func NewLoginClient(username, password string) Client {
	return &loginClient{username: username, password: password}
}

func (c *loginClient) Start() (string, []byte, error) {
	if c.username == "" || c.password == "" {
		return "", nil, errors.New("sasl: LOGIN client: empty username or password")
	}
	return MechLogin, nil, nil
}

// Next recognizes the challenges by content where it can ("user", "pass",
// case-insensitive, as servers vary the wording) and otherwise by order:
// first the username, then the password. A third challenge is an error.
func (c *loginClient) Next(challenge []byte) ([]byte, error) {
	c.step++
	if c.step > 2 {
		return nil, errors.New("sasl: LOGIN client: unexpected third challenge")
	}
	lower := bytes.ToLower(challenge)
	switch {
	case bytes.Contains(lower, []byte("user")):
		return []byte(c.username), nil
	case bytes.Contains(lower, []byte("pass")):
		return []byte(c.password), nil
	case c.step == 1:
		return []byte(c.username), nil
	}
	return []byte(c.password), nil
}
