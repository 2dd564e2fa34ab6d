package userdb

import "testing"

func FuzzCanonical(f *testing.F) {
	for _, s := range []string{"alice@example.com", "A.B@EX.com", "a+b@c", "@", "x@y..z", "jörg@x.de"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Canonical(s)
		if err != nil {
			return
		}
		again, err := Canonical(c)
		if err != nil || again != c {
			t.Fatalf("Canonical not idempotent: %q -> %q -> %q, %v", s, c, again, err)
		}
		if _, ok := stripTag(c); ok {
			t.Fatalf("canonical address %q has a plus tag", c)
		}
	})
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"version":1,"accounts":[{"address":"a@b","password_hash":"x"}],"aliases":{"c@b":["a@b"]}}`))
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := parse(raw)
		if err != nil {
			return
		}
		out, err := d.encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parse(out); err != nil {
			t.Fatalf("re-encoded file does not parse: %v\n%s", err, out)
		}
	})
}

func FuzzParsePHC(f *testing.F) {
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePHC(s)
		if err == nil && (p.memory > 1<<21 || p.time > 64 || p.threads == 0) {
			t.Fatalf("out-of-range parameters accepted: %+v", p)
		}
	})
}
