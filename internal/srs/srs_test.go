package srs

import (
	"errors"
	"strings"
	"testing"
	"time"

	"smtpkit/internal/smtp"
)

var day0 = time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)

// clock is a settable clock for a Rewriter.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newRewriter(t *testing.T, secret, domain string, c *clock) *Rewriter {
	t.Helper()
	r, err := New(Options{Secret: []byte(secret), Domain: domain, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func addr(t *testing.T, s string) smtp.Address {
	t.Helper()
	a, err := smtp.ParseAddress(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return a
}

// TestForwardReverse: what Forward makes, and that Reverse gives back the
// original, also when a relay changed the case of the address.
func TestForwardReverse(t *testing.T) {
	c := &clock{day0}
	r := newRewriter(t, "secret-one", "fwd.example", c)
	for _, tc := range []struct {
		name, sender string
		prefix       string // of the rewritten local part
		want         string // what Reverse gives; "" = sender
	}{
		{"plain", "alice@example.org", "SRS0=", ""},
		{"local part with =", "a=b@example.org", "SRS0=", ""},
		{"plus tag", "alice+tag@example.org", "SRS0=", ""},
		{"quoted local part", `"a b"@example.org`, "SRS0=", ""},
		{"other forwarder's SRS0", "SRS0=abcd=TT=example.org=alice@first.example", "SRS1=", "SRS0=abcd=TT=example.org=alice@first.example"},
		{"other forwarder's SRS0, + separator", "SRS0+abcd=TT=example.org=alice@first.example", "SRS1=", "SRS0+abcd=TT=example.org=alice@first.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sender := addr(t, tc.sender)
			got, err := r.Forward(sender)
			if err != nil {
				t.Fatal(err)
			}
			if got.Domain != "fwd.example" || !strings.HasPrefix(got.Local, tc.prefix) {
				t.Fatalf("Forward(%s) = %s", sender, got)
			}
			if !r.Mine(got) {
				t.Errorf("Mine(%s) = false", got)
			}
			// The address survives being written and parsed on the wire.
			wire := addr(t, got.String())
			want := tc.want
			if want == "" {
				want = tc.sender
			}
			for _, variant := range []smtp.Address{wire,
				{Local: strings.ToLower(wire.Local), Domain: strings.ToUpper(wire.Domain)},
				{Local: strings.ToUpper(wire.Local), Domain: wire.Domain}} {
				back, err := r.Reverse(variant)
				if err != nil {
					t.Fatalf("Reverse(%s): %v", variant, err)
				}
				if !strings.EqualFold(back.String(), want) {
					t.Errorf("Reverse(%s) = %s, want %s", variant, back, want)
				}
			}
		})
	}
}

// TestForwardUnchanged: the null sender and our own addresses are not
// rewritten.
func TestForwardUnchanged(t *testing.T) {
	r := newRewriter(t, "k", "fwd.example", &clock{day0})
	for _, a := range []smtp.Address{{}, {Local: "bob", Domain: "FWD.example"}, {Local: "SRS0=x", Domain: "fwd.example"}} {
		got, err := r.Forward(a)
		if err != nil || got != a {
			t.Errorf("Forward(%q) = %q, %v", a.String(), got.String(), err)
		}
	}
}

// TestChain: two forwarders with their own keys. The second turns the
// first's SRS0 into SRS1; a third keeps the first's domain; each reverses
// its own address to the previous hop, and only the first decodes the
// original.
func TestChain(t *testing.T) {
	c := &clock{day0}
	a := newRewriter(t, "key-a", "a.example", c)
	b := newRewriter(t, "key-b", "b.example", c)
	x := newRewriter(t, "key-x", "x.example", c)
	orig := addr(t, "alice@example.org")
	s0, _ := a.Forward(orig)
	s1, _ := b.Forward(s0)
	s1x, _ := x.Forward(s1)
	if !strings.HasPrefix(s1.Local, "SRS1=") || !strings.Contains(s1.Local, "=a.example==") {
		t.Fatalf("b.Forward(%s) = %s", s0, s1)
	}
	if !strings.HasPrefix(s1x.Local, "SRS1=") || !strings.Contains(s1x.Local, "=a.example==") || s1x.Domain != "x.example" {
		t.Fatalf("x.Forward(%s) = %s", s1, s1x)
	}
	for _, step := range []struct {
		r        *Rewriter
		in, want smtp.Address
	}{{x, s1x, s0}, {b, s1, s0}, {a, s0, orig}} {
		got, err := step.r.Reverse(step.in)
		if err != nil || got != step.want {
			t.Errorf("%s: Reverse(%s) = %s, %v; want %s", step.r.Domain(), step.in, got, err, step.want)
		}
	}
	// b's key does not verify a's address, nor x's b's.
	if _, err := b.Reverse(smtp.Address{Local: s0.Local, Domain: "b.example"}); !errors.Is(err, ErrForged) {
		t.Errorf("b verifies a's SRS0: %v", err)
	}
	if _, err := x.Reverse(smtp.Address{Local: s1.Local, Domain: "x.example"}); !errors.Is(err, ErrForged) {
		t.Errorf("x verifies b's SRS1: %v", err)
	}
}

// TestReverseErrors: forged, expired and malformed addresses.
func TestReverseErrors(t *testing.T) {
	c := &clock{day0}
	r := newRewriter(t, "k", "fwd.example", c)
	good, _ := r.Forward(addr(t, "alice@example.org"))
	f, _ := Parse(good.Local)
	other := newRewriter(t, "other key", "fwd.example", c)
	foreign, _ := other.Forward(addr(t, "alice@example.org"))
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	for _, tc := range []struct {
		name  string
		local string
		after time.Duration // clock moved on before Reverse
		want  error
	}{
		{"good", good.Local, 0, nil},
		{"good at 21 days", good.Local, 21 * 24 * time.Hour, nil},
		{"expired at 22 days", good.Local, 22 * 24 * time.Hour, ErrExpired},
		{"a stamp from tomorrow", good.Local, -24 * time.Hour, ErrExpired},
		{"other key", foreign.Local, 0, ErrForged},
		{"hash changed", "SRS0=" + flip(f.Hash, 0) + "=" + f.Stamp + "=example.org=alice", 0, ErrForged},
		{"local part changed", "SRS0=" + f.Hash + "=" + f.Stamp + "=example.org=mallory", 0, ErrForged},
		{"domain changed", "SRS0=" + f.Hash + "=" + f.Stamp + "=example.net=alice", 0, ErrForged},
		{"stamp changed", "SRS0=" + f.Hash + "=" + flip(f.Stamp, 1) + "=example.org=alice", 0, ErrForged},
		{"short hash", "SRS0=" + f.Hash[:4] + "=" + f.Stamp + "=example.org=alice", 0, ErrMalformed},
		{"bad stamp", "SRS0=" + f.Hash + "=1=example.org=alice", 0, ErrMalformed},
		{"stamp with 0", "SRS0=" + f.Hash + "=A0=example.org=alice", 0, ErrMalformed},
		{"no local", "SRS0=" + f.Hash + "=" + f.Stamp + "=example.org=", 0, ErrMalformed},
		{"no domain", "SRS0=" + f.Hash + "=" + f.Stamp + "==alice", 0, ErrMalformed},
		{"too few fields", "SRS0=" + f.Hash + "=" + f.Stamp, 0, ErrMalformed},
		{"SRS2", "SRS2=" + f.Hash + "=" + f.Stamp + "=example.org=alice", 0, ErrMalformed},
		{"no separator", "SRS0" + f.Hash, 0, ErrMalformed},
		{"plain address", "alice", 0, ErrMalformed},
		{"SRS1 without inner separator", "SRS1=" + f.Hash + "=a.example=x", 0, ErrMalformed},
		{"SRS1 forged", "SRS1=" + f.Hash + "=a.example==HHHH=TT=example.org=alice", 0, ErrForged},
		{"decodes to a bad domain", "SRS0=" + f.Hash + "=" + f.Stamp + "=exa..mple=alice", 0, ErrForged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.t = day0.Add(tc.after)
			defer func() { c.t = day0 }()
			_, err := r.Reverse(smtp.Address{Local: tc.local, Domain: "fwd.example"})
			if !errors.Is(err, tc.want) {
				t.Errorf("Reverse(%s) = %v, want %v", tc.local, err, tc.want)
			}
		})
	}
	if _, err := r.Reverse(smtp.Address{Local: good.Local, Domain: "elsewhere.example"}); !errors.Is(err, ErrMalformed) {
		t.Errorf("another domain: %v", err)
	}
}

// TestStampWraps: the day count wraps at 1024; an address made on day 1020
// is 9 days old on day 5 of the next cycle.
func TestStampWraps(t *testing.T) {
	epochDay := func(n int64) time.Time { return time.Unix(n*86400+3600, 0) }
	c := &clock{epochDay(1024*20 + 1020)}
	r := newRewriter(t, "k", "fwd.example", c)
	s, _ := r.Forward(addr(t, "alice@example.org"))
	c.t = epochDay(1024*21 + 5)
	if _, err := r.Reverse(s); err != nil {
		t.Errorf("after the wrap: %v", err)
	}
	c.t = epochDay(1024*21 + 20)
	if _, err := r.Reverse(s); !errors.Is(err, ErrExpired) {
		t.Errorf("24 days after, across the wrap: %v", err)
	}
}

// TestStampEncoding: days are two base32 characters.
func TestStampEncoding(t *testing.T) {
	for _, tc := range []struct {
		day  int64
		want string
	}{{0, "AA"}, {1, "AB"}, {31, "A7"}, {32, "BA"}, {1023, "77"}, {1024, "AA"}} {
		if got := stamp(time.Unix(tc.day*86400, 0)); got != tc.want {
			t.Errorf("day %d: %s, want %s", tc.day, got, tc.want)
		}
		if d, ok := decodeStamp(strings.ToLower(tc.want)); !ok || int64(d) != tc.day%1024 {
			t.Errorf("decode %s: %d %v", tc.want, d, ok)
		}
	}
}

// TestTooLong: a rewrite that would pass 64 octets is refused, not made.
func TestTooLong(t *testing.T) {
	r := newRewriter(t, "k", "fwd.example", &clock{day0})
	long := smtp.Address{Local: strings.Repeat("a", 40), Domain: "a-rather-long-domain.example"}
	if _, err := r.Forward(long); !errors.Is(err, ErrTooLong) {
		t.Errorf("Forward(%s): %v", long, err)
	}
}

func TestNew(t *testing.T) {
	for _, o := range []Options{{Domain: "d"}, {Secret: []byte("k")}, {Secret: []byte("k"), Domain: "d", MaxAge: time.Hour},
		{Secret: []byte("k"), Domain: "d", MaxAge: 1024 * 24 * time.Hour}} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

// TestKeyLabel: the SRS key is not the secret itself.
func TestKeyLabel(t *testing.T) {
	r := newRewriter(t, "k", "d", &clock{day0})
	if string(r.key) == "k" || len(r.key) != 32 {
		t.Errorf("key %x", r.key)
	}
}
