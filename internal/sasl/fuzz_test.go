package sasl

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"unicode/utf8"
)

// knownUser reports whether a successful exchange named an account testCreds has.
func knownUser(name string) bool {
	return name == "alice@example.org" || name == "a,b=c"
}

// checkOutcome enforces what must hold whatever the input: success names a
// known user, failure names nobody, and a finished exchange stays finished.
func checkOutcome(t *testing.T, srv Server, done bool, err error) {
	t.Helper()
	if !done {
		return
	}
	if err == nil && !knownUser(srv.Username()) {
		t.Fatalf("success for unknown identity %q", srv.Username())
	}
	if err != nil && srv.Username() != "" {
		t.Fatalf("failure (%v) but Username() = %q", err, srv.Username())
	}
	if _, again, err2 := srv.Next(context.Background(), nil); !again || err2 == nil {
		t.Fatalf("Next after the end: done=%v err=%v", again, err2)
	}
}

// run feeds responses until the server finishes and checks the outcome.
func run(t *testing.T, srv Server, responses ...[]byte) {
	t.Helper()
	for _, r := range responses {
		challenge, done, err := srv.Next(context.Background(), r)
		if done {
			checkOutcome(t, srv, done, err)
			return
		}
		if len(challenge) > 1024 || !utf8.Valid(challenge) {
			t.Fatalf("odd challenge %q", challenge)
		}
	}
}

func FuzzPlainServer(f *testing.F) {
	for _, seed := range []string{
		"\x00alice@example.org\x00s3cret",
		"alice@example.org\x00alice@example.org\x00s3cret",
		"bob\x00alice@example.org\x00s3cret",
		"\x00alice@example.org\x00wrong",
		"\x00\x00",
		"\x00a,b=c\x00pw",
		"",
		"\x00\xff\x00\xfe",
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	creds := testCreds()
	f.Fuzz(func(t *testing.T, msg []byte, emptyChallengeFirst bool) {
		srv, err := NewServer(MechPlain, creds)
		if err != nil {
			t.Fatal(err)
		}
		if emptyChallengeFirst {
			run(t, srv, nil, msg, msg)
			return
		}
		run(t, srv, msg, msg)
	})
}

func FuzzLoginServer(f *testing.F) {
	for _, seed := range [][3]string{
		{"", "alice@example.org", "s3cret"},
		{"alice@example.org", "s3cret", ""},
		{"", "alice@example.org", "wrong"},
		{"", "", ""},
		{"", "a\x00b", "c"},
		{"", "\xff", "\xfe"},
	} {
		f.Add([]byte(seed[0]), []byte(seed[1]), []byte(seed[2]))
	}
	creds := testCreds()
	f.Fuzz(func(t *testing.T, first, second, third []byte) {
		srv, err := NewServer(MechLogin, creds)
		if err != nil {
			t.Fatal(err)
		}
		if len(first) == 0 {
			first = nil // no initial response
		}
		run(t, srv, first, second, third, third, third)
	})
}

// fuzzRand is a deterministic nonce source, so that a seed can hold a valid
// client-final-message for the server nonce it produces.
func fuzzRand() *strings.Reader {
	return strings.NewReader(strings.Repeat("ServerNonce0123456789+/", 20))
}

// scramSeed runs our client against a deterministic server and returns the
// client's three messages.
func scramSeed(f *testing.F, creds Credentials, user, pass string) [3][]byte {
	srv, _ := NewServerOptions(MechScramSHA256, creds, Options{Rand: fuzzRand()})
	client := NewScramSHA256ClientOptions(user, pass, Options{Rand: strings.NewReader("ClientNonce-ClientNonce-ClientNonce")})
	var msgs [3][]byte
	_, msgs[0], _ = client.Start()
	for i := 1; i < 3; i++ {
		challenge, done, err := srv.Next(context.Background(), msgs[i-1])
		if done {
			f.Fatalf("seed exchange ended early: %v", err)
		}
		if msgs[i], err = client.Next(challenge); err != nil {
			f.Fatal(err)
		}
	}
	// The seed must replay to a success, so the fuzzer starts from one.
	srv, _ = NewServerOptions(MechScramSHA256, creds, Options{Rand: fuzzRand()})
	for i, m := range msgs {
		if _, done, err := srv.Next(context.Background(), m); done != (i == 2) || err != nil {
			f.Fatalf("seed replay step %d: done=%v err=%v", i, done, err)
		}
	}
	return msgs
}

func FuzzScramServer(f *testing.F) {
	creds := testCreds()
	for _, seed := range [][3][]byte{
		scramSeed(f, creds, "alice@example.org", "s3cret"),
		scramSeed(f, creds, "a,b=c", "pw"),
		{[]byte("n,,n=bob,r=abc"), []byte("c=biws,r=abc,p=AAAA"), nil},
		{[]byte("y,a=alice@example.org,n=alice@example.org,r=x,e=1"), []byte("c=eSws,r=x,p="), nil},
		{[]byte("p=tls-unique,,n=a,r=b"), nil, nil},
		{[]byte("n,,m=x,n=a=2C=3D,r=b"), nil, nil},
		{[]byte(",,,"), []byte(",p="), []byte("v=")},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, first, final, ack []byte) {
		srv, err := NewServerOptions(MechScramSHA256, creds, Options{Rand: fuzzRand()})
		if err != nil {
			t.Fatal(err)
		}
		if len(first) == 0 {
			first = nil
		}
		challenge, done, err := srv.Next(context.Background(), first)
		if !done && first != nil && !bytes.HasPrefix(challenge, []byte("r=")) {
			t.Fatalf("server-first %q", challenge)
		}
		if done {
			checkOutcome(t, srv, done, err)
			return
		}
		run(t, srv, final, ack, ack, ack)
	})
}

func FuzzScramClient(f *testing.F) {
	f.Add([]byte("r=ClientNonce-ClientNonce-ClientNoncexyz,s=MDEyMzQ1Njc4OWFiY2RlZg==,i=4096"), []byte("v=AAAA"))
	f.Add([]byte("r=ClientNonce-ClientNonce-ClientNonce,s=,i=1"), []byte("e=other-error"))
	f.Add([]byte("m=x"), []byte(""))
	f.Fuzz(func(t *testing.T, serverFirst, serverFinal []byte) {
		c := NewScramSHA256ClientOptions("alice@example.org", "s3cret", Options{Rand: strings.NewReader("ClientNonce-ClientNonce-ClientNonce")})
		if _, _, err := c.Start(); err != nil {
			t.Fatal(err)
		}
		// Only a server-first with a cheap iteration count reaches the key
		// derivation; the fuzzer must not spend its time in PBKDF2.
		if bytes.Contains(serverFirst, []byte("i=")) && !bytes.HasSuffix(serverFirst, []byte("i=4096")) {
			return
		}
		if _, err := c.Next(serverFirst); err != nil {
			return
		}
		if _, err := c.Next(serverFinal); err == nil && !bytes.HasPrefix(serverFinal, []byte("v=")) {
			t.Fatalf("client accepted server-final %q", serverFinal)
		}
	})
}

// FuzzScramPlusServer runs SCRAM-SHA-256-PLUS on a connection whose
// tls-exporter binding is cbA: any input ends cleanly, and a success needs
// a client-final whose c= carries exactly the GS2 header and cbA's data
// (RFC 5802 §6) — the fuzzer must never log in with other binding data.
func FuzzScramPlusServer(f *testing.F) {
	creds := testCreds()
	opts := func() Options { return Options{Rand: fuzzRand(), ChannelBindings: []ChannelBinding{cbA}} }
	srv, _ := NewServerOptions(MechScramSHA256Plus, creds, opts())
	client := NewScramSHA256PlusClient("alice@example.org", "s3cret", Options{
		Rand: strings.NewReader("ClientNonce-ClientNonce-ClientNonce"), ChannelBindings: []ChannelBinding{cbA}})
	var good [3][]byte
	_, good[0], _ = client.Start()
	for i := 1; i < 3; i++ {
		challenge, done, err := srv.Next(context.Background(), good[i-1])
		if done {
			f.Fatalf("seed exchange ended early: %v", err)
		}
		if good[i], err = client.Next(challenge); err != nil {
			f.Fatal(err)
		}
	}
	f.Add(good[0], good[1], good[2])
	f.Add([]byte("p=tls-unique,,n=alice@example.org,r=ClientNonce"), good[1], good[2])
	f.Add([]byte("y,,n=alice@example.org,r=ClientNonce"), good[1], good[2])
	f.Add([]byte("p=tls-exporter,a=alice@example.org,n=alice@example.org,r=x"), []byte("c=cD10bHMtZXhwb3J0ZXIsLA==,r=x,p="), []byte(""))
	f.Fuzz(func(t *testing.T, first, final, ack []byte) {
		srv, err := NewServerOptions(MechScramSHA256Plus, creds, opts())
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range [][]byte{first, final, ack, ack} {
			_, done, err := srv.Next(context.Background(), r)
			if !done {
				continue
			}
			checkOutcome(t, srv, done, err)
			if err == nil {
				cf, perr := parseClientFinal(string(final))
				cb, derr := b64().DecodeString(cf.channelBinding)
				if perr != nil || derr != nil || !bytes.HasSuffix(cb, cbA.Data) || !bytes.HasPrefix(first, cb[:len(cb)-len(cbA.Data)]) {
					t.Fatalf("success with c=%q for first %q", cf.channelBinding, first)
				}
			}
			return
		}
	})
}
