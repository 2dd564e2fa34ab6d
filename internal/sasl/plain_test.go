package sasl

import (
	"bytes"
	"errors"
	"testing"
)

func TestPlainServer(t *testing.T) {
	for _, tc := range []struct {
		name      string
		responses [][]byte
		err       error
		user      string
	}{
		{"good initial response", [][]byte{[]byte("\x00alice@example.org\x00s3cret")}, nil, "alice@example.org"},
		{"good after empty challenge", [][]byte{nil, []byte("\x00alice@example.org\x00s3cret")}, nil, "alice@example.org"},
		{"authzid equal to authcid", [][]byte{[]byte("alice@example.org\x00alice@example.org\x00s3cret")}, nil, "alice@example.org"},
		{"authzid of someone else", [][]byte{[]byte("bob@example.org\x00alice@example.org\x00s3cret")}, ErrInvalidCredentials, ""},
		{"bad password", [][]byte{[]byte("\x00alice@example.org\x00wrong")}, ErrInvalidCredentials, ""},
		{"unknown user", [][]byte{[]byte("\x00nobody@example.org\x00s3cret")}, ErrInvalidCredentials, ""},
		{"username case is passed as given", [][]byte{[]byte("\x00Alice@example.org\x00s3cret")}, ErrInvalidCredentials, ""},
		{"empty initial response", [][]byte{{}}, ErrMalformed, ""},
		{"one NUL", [][]byte{[]byte("alice@example.org\x00s3cret")}, ErrMalformed, ""},
		{"three NULs", [][]byte{[]byte("\x00alice@example.org\x00s3cret\x00")}, ErrMalformed, ""},
		{"empty authcid", [][]byte{[]byte("\x00\x00s3cret")}, ErrMalformed, ""},
		{"empty password", [][]byte{[]byte("\x00alice@example.org\x00")}, ErrMalformed, ""},
		{"invalid UTF-8", [][]byte{[]byte("\x00alice\xff\x00s3cret")}, ErrMalformed, ""},
		{"empty reply to empty challenge", [][]byte{nil, {}}, ErrMalformed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := NewServer("PLAIN", testCreds())
			if err != nil {
				t.Fatal(err)
			}
			challenges, done, err := exchange(t, srv, tc.responses...)
			if !done {
				t.Fatalf("not done after %d responses", len(tc.responses))
			}
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			for _, c := range challenges {
				if len(c) != 0 {
					t.Fatalf("PLAIN challenge %q, want empty", c)
				}
			}
			if srv.Username() != tc.user {
				t.Fatalf("Username() = %q, want %q", srv.Username(), tc.user)
			}
		})
	}
}

func TestPlainClient(t *testing.T) {
	c := NewPlainClient("", "alice@example.org", "s3cret")
	mech, ir, err := c.Start()
	if err != nil || mech != "PLAIN" || !bytes.Equal(ir, []byte("\x00alice@example.org\x00s3cret")) {
		t.Fatalf("Start() = %q, %q, %v", mech, ir, err)
	}
	// A server that ignores the initial response and sends an empty
	// challenge gets the message once more, but only once.
	if resp, err := c.Next(nil); err != nil || !bytes.Equal(resp, ir) {
		t.Fatalf("Next(empty) = %q, %v", resp, err)
	}
	if _, err := c.Next(nil); err == nil {
		t.Fatal("second Next accepted")
	}
	if _, err := NewPlainClient("", "alice@example.org", "s3cret").Next([]byte("x")); err == nil {
		t.Fatal("non-empty challenge accepted")
	}
	if _, _, err := NewPlainClient("", "a\x00b", "pw").Start(); err == nil {
		t.Fatal("NUL in username accepted")
	}
	if _, _, err := NewPlainClient("", "alice", "").Start(); err == nil {
		t.Fatal("empty password accepted")
	}
}

func TestPlainClientAgainstServer(t *testing.T) {
	for _, tc := range []struct {
		identity, user, pass string
		err                  error
	}{
		{"", "alice@example.org", "s3cret", nil},
		{"alice@example.org", "alice@example.org", "s3cret", nil},
		{"root", "alice@example.org", "s3cret", ErrInvalidCredentials},
		{"", "alice@example.org", "nope", ErrInvalidCredentials},
	} {
		srv, _ := NewServer(MechPlain, testCreds())
		if err := drive(t, NewPlainClient(tc.identity, tc.user, tc.pass), srv); !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
			t.Errorf("%+v: err = %v", tc, err)
		}
	}
}
