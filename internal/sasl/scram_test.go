package sasl

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// RFC 7677 §3 example exchange.
const (
	rfcUser        = "user"
	rfcPassword    = "pencil"
	rfcClientNonce = "rOprNGfwEbeRWgbNEkqO"
	rfcServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	rfcSalt        = "W22ZaJ0SNY7soEsUEjb6gQ=="
	rfcClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
	rfcServerFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
	rfcClientFinal = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	rfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
	// The stored keys for the example, as GNU SASL's
	// `gsasl --mkpasswd --mechanism SCRAM-SHA-256 --password pencil
	// --salt W22ZaJ0SNY7soEsUEjb6gQ== --iteration-count 4096` prints them.
	rfcStoredKey = "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
	rfcServerKey = "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
)

func rfcCreds(t *testing.T) memCreds {
	t.Helper()
	salt, err := base64.StdEncoding.DecodeString(rfcSalt)
	if err != nil {
		t.Fatal(err)
	}
	return memCreds{keys: map[string]ScramKeys{rfcUser: NewScramKeys(rfcPassword, salt, 4096)}}
}

func TestNewScramKeysRFC7677(t *testing.T) {
	k := rfcCreds(t).keys[rfcUser]
	if got := base64.StdEncoding.EncodeToString(k.StoredKey); got != rfcStoredKey {
		t.Errorf("StoredKey = %s, want %s", got, rfcStoredKey)
	}
	if got := base64.StdEncoding.EncodeToString(k.ServerKey); got != rfcServerKey {
		t.Errorf("ServerKey = %s, want %s", got, rfcServerKey)
	}
	if k.Iterations != 4096 || base64.StdEncoding.EncodeToString(k.Salt) != rfcSalt {
		t.Errorf("Iterations/Salt = %d/%x", k.Iterations, k.Salt)
	}
}

func TestScramRFC7677Exchange(t *testing.T) {
	// The nonce sources hold non-printable bytes and commas too, which the
	// nonce generator must skip.
	srv, err := NewServerOptions("SCRAM-SHA-256", rfcCreds(t), Options{
		Rand: strings.NewReader("\x00,%hvYDpWUa2RaTCAfuxFIlj)h\xffNlF$k0"), NonceLength: len(rfcServerNonce),
	})
	if err != nil {
		t.Fatal(err)
	}
	client := NewScramSHA256ClientOptions(rfcUser, rfcPassword, Options{
		Rand: strings.NewReader("rOpr NGfwEbeRWgbNEkqO"), NonceLength: len(rfcClientNonce),
	})

	mech, msg, err := client.Start()
	if err != nil || mech != "SCRAM-SHA-256" || string(msg) != rfcClientFirst {
		t.Fatalf("client Start = %q, %q, %v; want %q", mech, msg, err, rfcClientFirst)
	}
	steps := []struct{ server, client string }{
		{rfcServerFirst, rfcClientFinal},
		{rfcServerFinal, ""},
	}
	for _, step := range steps {
		challenge, done, err := srv.Next(context.Background(), msg)
		if done || err != nil || string(challenge) != step.server {
			t.Fatalf("server Next(%q) = %q, %v, %v; want %q", msg, challenge, done, err, step.server)
		}
		if msg, err = client.Next(challenge); err != nil || string(msg) != step.client {
			t.Fatalf("client Next(%q) = %q, %v; want %q", challenge, msg, err, step.client)
		}
	}
	if _, done, err := srv.Next(context.Background(), msg); !done || err != nil {
		t.Fatalf("server final step: done=%v err=%v", done, err)
	}
	if srv.Username() != rfcUser {
		t.Fatalf("Username() = %q", srv.Username())
	}
}

// scramFinal computes a client-final-message for a hand-made exchange, the
// way RFC 5802 §3 defines it, with channel-binding value cbind (base64).
func scramFinal(t *testing.T, password, firstBare, serverFirst, cbind string) string {
	t.Helper()
	var nonce, salt string
	var iters int
	for _, f := range strings.Split(serverFirst, ",") {
		switch {
		case strings.HasPrefix(f, "r="):
			nonce = f[2:]
		case strings.HasPrefix(f, "s="):
			salt = f[2:]
		case strings.HasPrefix(f, "i="):
			iters, _ = strconv.Atoi(f[2:])
		}
	}
	rawSalt, err := base64.StdEncoding.DecodeString(salt)
	if err != nil {
		t.Fatalf("server-first %q: %v", serverFirst, err)
	}
	salted, err := saltedPassword(password, rawSalt, iters)
	if err != nil {
		t.Fatal(err)
	}
	clientKey := hmacSHA256(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	withoutProof := "c=" + cbind + ",r=" + nonce
	authMsg := firstBare + "," + serverFirst + "," + withoutProof
	proof := xorBytes(clientKey, hmacSHA256(stored[:], authMsg))
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)
}

func TestScramServer(t *testing.T) {
	type tc struct {
		name     string
		gs2      string // GS2 header sent
		bare     string // client-first-message-bare
		password string
		cbind    string // c= value; "" means base64 of gs2
		mangle   func(final string) string
		ack      string // reply to v=
		err      error  // expected outcome
		stage    int    // stage at which err shows: 1 first, 2 final, 3 ack
		user     string
	}
	ok := func(s string) string { return s }
	for _, c := range []tc{
		{name: "good", gs2: "n,,", bare: "n=alice@example.org,r=abc", password: "s3cret", mangle: ok, user: "alice@example.org"},
		{name: "client supports binding, server does not", gs2: "y,,", bare: "n=alice@example.org,r=abc", password: "s3cret", mangle: ok, user: "alice@example.org"},
		{name: "authzid equal to user", gs2: "n,a=alice@example.org,", bare: "n=alice@example.org,r=abc", password: "s3cret", mangle: ok, user: "alice@example.org"},
		{name: "extension ignored", gs2: "n,,", bare: "n=alice@example.org,r=abc,x=1", password: "s3cret", mangle: ok, user: "alice@example.org"},
		{name: "escaped username", gs2: "n,,", bare: "n=a=2Cb=3Dc,r=abc", password: "pw", mangle: ok, user: "a,b=c"},
		{name: "bad password", gs2: "n,,", bare: "n=alice@example.org,r=abc", password: "wrong", mangle: ok, err: ErrInvalidCredentials, stage: 2},
		{name: "unknown user", gs2: "n,,", bare: "n=bob@example.org,r=abc", password: "s3cret", mangle: ok, err: ErrInvalidCredentials, stage: 2},
		{name: "authzid of someone else", gs2: "n,a=root,", bare: "n=alice@example.org,r=abc", err: ErrInvalidCredentials, stage: 1},
		{name: "channel binding", gs2: "p=tls-unique,,", bare: "n=alice@example.org,r=abc", err: ErrMalformed, stage: 1},
		{name: "bad GS2 flag", gs2: "x,,", bare: "n=alice@example.org,r=abc", err: ErrMalformed, stage: 1},
		{name: "mandatory extension", gs2: "n,,", bare: "m=ext,n=alice@example.org,r=abc", err: ErrMalformed, stage: 1},
		{name: "bad escape", gs2: "n,,", bare: "n=a=2Xb,r=abc", err: ErrMalformed, stage: 1},
		{name: "lowercase escape", gs2: "n,,", bare: "n=a=2cb,r=abc", err: ErrMalformed, stage: 1},
		{name: "empty username", gs2: "n,,", bare: "n=,r=abc", err: ErrMalformed, stage: 1},
		{name: "empty nonce", gs2: "n,,", bare: "n=alice@example.org,r=", err: ErrMalformed, stage: 1},
		{name: "nonce with space", gs2: "n,,", bare: "n=alice@example.org,r=a c", err: ErrMalformed, stage: 1},
		{name: "missing nonce", gs2: "n,,", bare: "n=alice@example.org", err: ErrMalformed, stage: 1},
		{name: "swapped attributes", gs2: "n,,", bare: "r=abc,n=alice@example.org", err: ErrMalformed, stage: 1},
		{name: "bad extension", gs2: "n,,", bare: "n=alice@example.org,r=abc,1=x", err: ErrMalformed, stage: 1},
		{name: "wrong channel binding", gs2: "n,,", bare: "n=alice@example.org,r=abc", password: "s3cret", cbind: "eSws", mangle: ok, err: ErrMalformed, stage: 2},
		{name: "nonce mismatch", gs2: "n,,", bare: "n=alice@example.org,r=abc", password: "s3cret",
			mangle: func(s string) string { return strings.Replace(s, ",r=abc", ",r=abd", 1) }, err: ErrMalformed, stage: 2},
		{name: "proof not base64", gs2: "n,,", bare: "n=alice@example.org,r=abc", password: "s3cret",
			mangle: func(s string) string { return s[:strings.Index(s, ",p=")] + ",p=!!!!" }, err: ErrMalformed, stage: 2},
		{name: "proof too short", gs2: "n,,", bare: "n=alice@example.org,r=abc", password: "s3cret",
			mangle: func(s string) string { return s[:strings.Index(s, ",p=")] + ",p=AAAA" }, err: ErrMalformed, stage: 2},
		{name: "no proof", gs2: "n,,", bare: "n=alice@example.org,r=abc", password: "s3cret",
			mangle: func(s string) string { return s[:strings.Index(s, ",p=")] }, err: ErrMalformed, stage: 2},
		{name: "non-empty ack", gs2: "n,,", bare: "n=alice@example.org,r=abc", password: "s3cret", mangle: ok, ack: "v=x", err: ErrMalformed, stage: 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, err := NewServer(MechScramSHA256, testCreds())
			if err != nil {
				t.Fatal(err)
			}
			check := func(stage int, challenge []byte, done bool, err error) bool {
				t.Helper()
				if c.stage == stage {
					if !done || !errors.Is(err, c.err) {
						t.Fatalf("stage %d: done=%v err=%v; want %v", stage, done, err, c.err)
					}
					if srv.Username() != "" {
						t.Fatalf("Username() = %q after failure", srv.Username())
					}
					return false
				}
				if done || err != nil {
					t.Fatalf("stage %d: done=%v err=%v, challenge %q", stage, done, err, challenge)
				}
				return true
			}
			serverFirst, done, err := srv.Next(context.Background(), []byte(c.gs2+c.bare))
			if !check(1, serverFirst, done, err) {
				return
			}
			if !strings.HasPrefix(string(serverFirst), "r=abc") || !strings.Contains(string(serverFirst), ",i=4096") {
				t.Fatalf("server-first %q", serverFirst)
			}
			cbind := c.cbind
			if cbind == "" {
				cbind = base64.StdEncoding.EncodeToString([]byte(c.gs2))
			}
			final := c.mangle(scramFinal(t, c.password, c.bare, string(serverFirst), cbind))
			serverFinal, done, err := srv.Next(context.Background(), []byte(final))
			if !check(2, serverFinal, done, err) {
				return
			}
			if !strings.HasPrefix(string(serverFinal), "v=") {
				t.Fatalf("server-final %q", serverFinal)
			}
			_, done, err = srv.Next(context.Background(), []byte(c.ack))
			if c.stage == 3 {
				check(3, nil, done, err)
				return
			}
			if !done || err != nil || srv.Username() != c.user {
				t.Fatalf("done=%v Username() = %q, want %q", done, srv.Username(), c.user)
			}
		})
	}
}

func TestScramServerEmptyChallengeFirst(t *testing.T) {
	srv, _ := NewServer(MechScramSHA256, testCreds())
	challenge, done, err := srv.Next(context.Background(), nil)
	if done || err != nil || challenge == nil || len(challenge) != 0 {
		t.Fatalf("Next(nil) = %q, %v, %v; want empty challenge", challenge, done, err)
	}
	client := NewScramSHA256Client("alice@example.org", "s3cret")
	_, first, _ := client.Start()
	serverFirst, _, _ := srv.Next(context.Background(), first)
	final, err := client.Next(serverFirst)
	if err != nil {
		t.Fatal(err)
	}
	serverFinal, _, _ := srv.Next(context.Background(), final)
	if _, err := client.Next(serverFinal); err != nil {
		t.Fatal(err)
	}
	if _, done, err := srv.Next(context.Background(), []byte{}); !done || err != nil {
		t.Fatalf("done=%v err=%v", done, err)
	}
}

func TestScramServerUnusableKeys(t *testing.T) {
	creds := memCreds{keys: map[string]ScramKeys{"u": {Iterations: 4096, Salt: []byte("s")}}}
	srv, _ := NewServer(MechScramSHA256, creds)
	_, done, err := srv.Next(context.Background(), []byte("n,,n=u,r=abc"))
	if !done || err == nil || errors.Is(err, ErrInvalidCredentials) || errors.Is(err, ErrMalformed) {
		t.Fatalf("done=%v err=%v; want a store error", done, err)
	}
}

func TestScramClientRejects(t *testing.T) {
	const cnonce = "abcdefghijklmnopqrst"
	salt := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	for _, tc := range []struct {
		name        string
		serverFirst string
		err         error // nil: any error
	}{
		{"iterations below 4096", "r=" + cnonce + "xyz,s=" + salt + ",i=4095", nil},
		{"iterations huge", "r=" + cnonce + "xyz,s=" + salt + ",i=2000000000", nil},
		{"iterations signed", "r=" + cnonce + "xyz,s=" + salt + ",i=+4096", ErrMalformed},
		{"iterations not a number", "r=" + cnonce + "xyz,s=" + salt + ",i=many", ErrMalformed},
		{"nonce not extended", "r=" + cnonce + ",s=" + salt + ",i=4096", ErrMalformed},
		{"nonce replaced", "r=zzzzzzzzzzzzzzzzzzzzxyz,s=" + salt + ",i=4096", ErrMalformed},
		{"salt not base64", "r=" + cnonce + "xyz,s=***,i=4096", ErrMalformed},
		{"empty salt", "r=" + cnonce + "xyz,s=,i=4096", ErrMalformed},
		{"mandatory extension", "m=x,r=" + cnonce + "xyz,s=" + salt + ",i=4096", ErrMalformed},
		{"missing iterations", "r=" + cnonce + "xyz,s=" + salt, ErrMalformed},
		{"empty", "", ErrMalformed},
	} {
		c := NewScramSHA256ClientOptions("u", "p", Options{Rand: strings.NewReader(cnonce), NonceLength: len(cnonce)})
		if _, _, err := c.Start(); err != nil {
			t.Fatal(err)
		}
		_, err := c.Next([]byte(tc.serverFirst))
		if err == nil || (tc.err != nil && !errors.Is(err, tc.err)) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.err)
		}
		if _, err := c.Next([]byte("v=AAAA")); err == nil {
			t.Errorf("%s: client continued after an error", tc.name)
		}
	}
}

func TestScramClientServerFinal(t *testing.T) {
	newClient := func() Client {
		c := NewScramSHA256ClientOptions(rfcUser, rfcPassword, Options{Rand: strings.NewReader(rfcClientNonce), NonceLength: len(rfcClientNonce)})
		if _, _, err := c.Start(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Next([]byte(rfcServerFirst)); err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		name, serverFinal string
		err               error
	}{
		{"good", rfcServerFinal, nil},
		{"good with extension", rfcServerFinal + ",x=y", nil},
		{"wrong signature", "v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", ErrServerSignature},
		{"signature not base64", "v=???", ErrServerSignature},
		{"server error", "e=invalid-proof", nil},
		{"garbage", "hello", ErrMalformed},
	} {
		resp, err := newClient().Next([]byte(tc.serverFinal))
		switch {
		case tc.name == "good" || tc.name == "good with extension":
			if err != nil || resp == nil || len(resp) != 0 {
				t.Errorf("%s: Next = %q, %v; want empty response", tc.name, resp, err)
			}
		case err == nil || (tc.err != nil && !errors.Is(err, tc.err)):
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.err)
		}
	}
}

func TestScramClientEscapesUsername(t *testing.T) {
	c := NewScramSHA256ClientOptions("a,b=c", "pw", Options{Rand: strings.NewReader("nonce-nonce-nonce-nonce"), NonceLength: 23})
	_, first, err := c.Start()
	if err != nil || string(first) != "n,,n=a=2Cb=3Dc,r=nonce-nonce-nonce-nonce" {
		t.Fatalf("Start = %q, %v", first, err)
	}
	srv, _ := NewServer(MechScramSHA256, testCreds())
	if err := drive(t, NewScramSHA256Client("a,b=c", "pw"), srv); err != nil || srv.Username() != "a,b=c" {
		t.Fatalf("round trip: %v, user %q", err, srv.Username())
	}
}

func TestNonce(t *testing.T) {
	n, err := newNonce(Options{}.rand(), DefaultNonceLength)
	if err != nil || len(n) != DefaultNonceLength || !validNonce(n) {
		t.Fatalf("newNonce = %q, %v", n, err)
	}
	if m, _ := newNonce(Options{}.rand(), DefaultNonceLength); m == n {
		t.Fatal("two nonces are equal")
	}
	if _, err := newNonce(strings.NewReader(strings.Repeat(",", 10000)), 20); err == nil {
		t.Fatal("nonce from a source of commas")
	}
	if _, err := newNonce(strings.NewReader("short"), 20); err == nil {
		t.Fatal("nonce from a short source")
	}
	if got := (Options{NonceLength: 1 << 20}).nonceLength(); got != maxNonceLength {
		t.Fatalf("nonceLength capped at %d", got)
	}
}

func TestSaslname(t *testing.T) {
	for _, tc := range []struct{ raw, escaped string }{
		{"user", "user"},
		{"a,b", "a=2Cb"},
		{"a=b", "a=3Db"},
		{"=,=", "=3D=2C=3D"},
		{"jörg@example.org", "jörg@example.org"},
	} {
		if got := escapeSaslname(tc.raw); got != tc.escaped {
			t.Errorf("escape(%q) = %q, want %q", tc.raw, got, tc.escaped)
		}
		if got, err := unescapeSaslname(tc.escaped); err != nil || got != tc.raw {
			t.Errorf("unescape(%q) = %q, %v", tc.escaped, got, err)
		}
	}
	for _, bad := range []string{"", "a=", "a=2", "a=41", "a=2c", "\xff"} {
		if _, err := unescapeSaslname(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("unescape(%q) accepted", bad)
		}
	}
}
