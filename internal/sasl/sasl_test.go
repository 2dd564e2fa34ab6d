package sasl

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
)

func TestMechanisms(t *testing.T) {
	got := Mechanisms()
	want := []string{"PLAIN", "LOGIN", "SCRAM-SHA-256"}
	if !slices.Equal(got, want) {
		t.Fatalf("Mechanisms() = %v, want %v", got, want)
	}
	got[0] = "CHANGED"
	if Mechanisms()[0] != "PLAIN" {
		t.Fatal("Mechanisms shares its slice between calls")
	}
	for _, m := range want {
		if _, err := NewServer(m, testCreds()); err != nil {
			t.Errorf("advertised mechanism %s: %v", m, err)
		}
	}
}

func TestNewServerNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"plain", nil},
		{"Login", nil},
		{"scram-sha-256", nil},
		{"SCRAM-SHA-1", ErrUnsupportedMechanism},
		{"CRAM-MD5", ErrUnsupportedMechanism},
		{"SCRAM-SHA-256-PLUS", ErrUnsupportedMechanism},
		{"", ErrUnsupportedMechanism},
	} {
		srv, err := NewServer(tc.name, testCreds())
		if !errors.Is(err, tc.err) || (err == nil) != (srv != nil) {
			t.Errorf("NewServer(%q) = %v, %v; want error %v", tc.name, srv, err, tc.err)
		}
	}
}

func TestStepBounds(t *testing.T) {
	for _, mech := range Mechanisms() {
		t.Run(mech+"/oversize", func(t *testing.T) {
			srv, _ := NewServer(mech, testCreds())
			_, done, err := srv.Next(context.Background(), bytes.Repeat([]byte("a"), MaxResponse+1))
			if !done || !errors.Is(err, ErrMalformed) {
				t.Fatalf("oversize response: done=%v err=%v", done, err)
			}
			if _, done, err = srv.Next(context.Background(), nil); !done || !errors.Is(err, ErrTooManySteps) {
				t.Fatalf("Next after failure: done=%v err=%v", done, err)
			}
		})
		t.Run(mech+"/after-success", func(t *testing.T) {
			srv, _ := NewServer(mech, testCreds())
			client := map[string]Client{
				MechPlain:       NewPlainClient("", "alice@example.org", "s3cret"),
				MechLogin:       NewLoginClient("alice@example.org", "s3cret"),
				MechScramSHA256: NewScramSHA256Client("alice@example.org", "s3cret"),
			}[mech]
			if err := drive(t, client, srv); err != nil {
				t.Fatal(err)
			}
			if _, done, err := srv.Next(context.Background(), []byte{}); !done || !errors.Is(err, ErrTooManySteps) {
				t.Fatalf("Next after success: done=%v err=%v", done, err)
			}
			if srv.Username() != "alice@example.org" {
				t.Fatalf("Username() = %q after success", srv.Username())
			}
		})
	}
}

func TestTooManySteps(t *testing.T) {
	// LOGIN can be kept going only through its own steps; SCRAM rejects the
	// fifth call even if every earlier one was acceptable.
	srv, _ := NewServer(MechScramSHA256, testCreds())
	_, done, err := exchange(t, srv, nil, []byte("n,,n=alice@example.org,r=abc"))
	if done || err != nil {
		t.Fatalf("setup: %v", err)
	}
	s := srv.(*scramServer)
	s.steps.n = MaxSteps // pretend the peer used up its steps
	if _, done, err := srv.Next(context.Background(), []byte("c=biws")); !done || !errors.Is(err, ErrTooManySteps) {
		t.Fatalf("step %d: done=%v err=%v", MaxSteps+1, done, err)
	}
}

func TestStoreFailureIsNotInvalidCredentials(t *testing.T) {
	creds := memCreds{fail: errStoreDown}
	for _, tc := range []struct {
		mech      string
		responses [][]byte
	}{
		{MechPlain, [][]byte{[]byte("\x00u\x00p")}},
		{MechLogin, [][]byte{nil, []byte("u"), []byte("p")}},
		{MechScramSHA256, [][]byte{[]byte("n,,n=u,r=abc")}},
	} {
		srv, _ := NewServer(tc.mech, creds)
		_, done, err := exchange(t, srv, tc.responses...)
		if !done || !errors.Is(err, errStoreDown) || errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("%s: done=%v err=%v; want wrapped store error", tc.mech, done, err)
		}
	}
}
