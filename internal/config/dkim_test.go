package config

import "testing"

func TestDKIM(t *testing.T) {
	tests := []struct {
		name string
		toml string
		keys []string // problem keys
		n    int      // entries
	}{
		{name: "none"},
		{name: "dual signing", n: 2, toml: "[[dkim]]\ndomain = \"example.com\"\nselector = \"ed1\"\nkey = \"/k/ed.pem\"\n" +
			"[[dkim]]\ndomain = \"example.com\"\nselector = \"rsa1\"\nkey = \"/k/rsa.pem\"\nsubdomains = true\n"},
		{name: "missing fields", toml: "[[dkim]]\n", keys: []string{"dkim[0].domain", "dkim[0].selector", "dkim[0].key"}},
		{name: "bad names", toml: "[[dkim]]\ndomain = \"a b\"\nselector = \"s_1\"\nkey = \"k\"\n", keys: []string{"dkim[0].domain", "dkim[0].selector"}},
		{name: "duplicate selector", toml: "[[dkim]]\ndomain = \"example.com\"\nselector = \"s\"\nkey = \"a\"\n" +
			"[[dkim]]\ndomain = \"Example.com\"\nselector = \"S\"\nkey = \"b\"\n", keys: []string{"dkim[1].selector"}},
		{name: "unknown key", toml: "[[dkim]]\ndomain = \"example.com\"\nselector = \"s\"\nkey = \"a\"\nalgorithm = \"rsa\"\n", keys: []string{"dkim.algorithm"}},
	}
	const head = minimalConfig
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(head+tt.toml), "test.toml")
			got := problemKeys(t, err)
			if !sameSet(got, tt.keys) {
				t.Fatalf("problems %q, want %q (%v)", got, tt.keys, err)
			}
			if err == nil && len(c.DKIM) != tt.n {
				t.Errorf("%d entries, want %d", len(c.DKIM), tt.n)
			}
		})
	}
}
