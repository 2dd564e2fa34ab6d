package config

import "testing"

func TestVerify(t *testing.T) {
	tests := []struct {
		name   string
		toml   string
		keys   []string // problem keys
		want   Verify
		servID string
	}{
		{name: "defaults: off, header when turned on", want: Verify{SPF: true, DKIM: true, DMARC: "header", IPRev: true}, servID: "mx.example.com"},
		{name: "enforce", toml: "[verify]\nenabled = true\ndmarc = \"enforce\"\niprev = false\nauthserv_id = \"auth.example.com\"\n",
			want: Verify{Enabled: true, SPF: true, DKIM: true, DMARC: "enforce", AuthServID: "auth.example.com"}, servID: "auth.example.com"},
		{name: "dmarc off", toml: "[verify]\nenabled = true\ndmarc = \"off\"\nspf = false\n",
			want: Verify{Enabled: true, DKIM: true, DMARC: "off", IPRev: true}, servID: "mx.example.com"},
		{name: "bad values", toml: "[verify]\ndmarc = \"reject\"\nauthserv_id = \"a;b\"\n", keys: []string{"verify.dmarc", "verify.authserv_id"}},
		{name: "enforce on nothing", toml: "[verify]\ndmarc = \"enforce\"\nspf = false\ndkim = false\n", keys: []string{"verify.dmarc"}},
		{name: "unknown key", toml: "[verify]\narc = true\n", keys: []string{"verify.arc"}},
	}
	const head = minimalConfig
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(head+tt.toml), "test.toml")
			got := problemKeys(t, err)
			if !sameSet(got, tt.keys) {
				t.Fatalf("problems %q, want %q (%v)", got, tt.keys, err)
			}
			if err != nil {
				return
			}
			if c.Verify != tt.want || c.AuthServID() != tt.servID {
				t.Errorf("got %+v authserv-id %q, want %+v %q", c.Verify, c.AuthServID(), tt.want, tt.servID)
			}
		})
	}
}
