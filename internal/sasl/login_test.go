package sasl

import (
	"errors"
	"slices"
	"testing"
)

func TestLoginServer(t *testing.T) {
	for _, tc := range []struct {
		name       string
		responses  [][]byte
		challenges []string
		err        error
		user       string
	}{
		{"good", [][]byte{nil, []byte("alice@example.org"), []byte("s3cret")},
			[]string{"Username:", "Password:"}, nil, "alice@example.org"},
		{"username as initial response", [][]byte{[]byte("alice@example.org"), []byte("s3cret")},
			[]string{"Password:"}, nil, "alice@example.org"},
		{"bad password", [][]byte{nil, []byte("alice@example.org"), []byte("wrong")},
			[]string{"Username:", "Password:"}, ErrInvalidCredentials, ""},
		{"unknown user", [][]byte{nil, []byte("nobody@example.org"), []byte("s3cret")},
			[]string{"Username:", "Password:"}, ErrInvalidCredentials, ""},
		{"empty password", [][]byte{nil, []byte("alice@example.org"), {}},
			[]string{"Username:", "Password:"}, ErrInvalidCredentials, ""},
		{"empty username", [][]byte{nil, {}}, []string{"Username:"}, ErrMalformed, ""},
		{"empty initial response", [][]byte{{}}, nil, ErrMalformed, ""},
		{"NUL in username", [][]byte{nil, []byte("a\x00b")}, []string{"Username:"}, ErrMalformed, ""},
		{"NUL in password", [][]byte{[]byte("alice@example.org"), []byte("s3\x00cret")}, []string{"Password:"}, ErrMalformed, ""},
		{"invalid UTF-8", [][]byte{nil, []byte("\xc3\x28")}, []string{"Username:"}, ErrMalformed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := NewServer("LOGIN", testCreds())
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
			var got []string
			for _, c := range challenges {
				got = append(got, string(c))
			}
			if !slices.Equal(got, tc.challenges) {
				t.Fatalf("challenges %q, want %q", got, tc.challenges)
			}
			if srv.Username() != tc.user {
				t.Fatalf("Username() = %q, want %q", srv.Username(), tc.user)
			}
		})
	}
}

func TestLoginClient(t *testing.T) {
	for _, tc := range []struct {
		name       string
		challenges []string
		want       []string
	}{
		{"standard", []string{"Username:", "Password:"}, []string{"u", "p"}},
		{"other wording", []string{"User Name\x00", "PASSWORD\x00"}, []string{"u", "p"}},
		{"unknown wording by order", []string{"who?", "secret?"}, []string{"u", "p"}},
	} {
		c := NewLoginClient("u", "p")
		if mech, ir, err := c.Start(); mech != "LOGIN" || ir != nil || err != nil {
			t.Fatalf("Start() = %q, %q, %v", mech, ir, err)
		}
		for i, ch := range tc.challenges {
			resp, err := c.Next([]byte(ch))
			if err != nil || string(resp) != tc.want[i] {
				t.Errorf("%s: Next(%q) = %q, %v; want %q", tc.name, ch, resp, err, tc.want[i])
			}
		}
		if _, err := c.Next([]byte("Username:")); err == nil {
			t.Errorf("%s: third challenge accepted", tc.name)
		}
	}
	if _, _, err := NewLoginClient("", "p").Start(); err == nil {
		t.Error("empty username accepted")
	}
}

func TestLoginClientAgainstServer(t *testing.T) {
	srv, _ := NewServer(MechLogin, testCreds())
	if err := drive(t, NewLoginClient("alice@example.org", "s3cret"), srv); err != nil {
		t.Fatal(err)
	}
	srv, _ = NewServer(MechLogin, testCreds())
	if err := drive(t, NewLoginClient("alice@example.org", "x"), srv); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
}
