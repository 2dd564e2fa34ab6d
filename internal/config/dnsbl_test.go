package config

import (
	"slices"
	"testing"
	"time"
)

func TestDNSBL(t *testing.T) {
	const head = "hostname = \"mx.example.com\"\n"
	const tail = "[tls]\nself_signed = true\n[[domain]]\nname = \"example.com\"\n" +
		"[[listener]]\naddress = \"127.0.0.1:25\"\nrole = \"mx\"\n" +
		"[[listener]]\naddress = \"127.0.0.1:587\"\nrole = \"submission\"\n"
	tests := []struct {
		name      string
		top, rest string
		keys      []string
		zones     []DNSBL
		threshold int
		pregreet  []time.Duration // per listener
	}{
		{name: "defaults: off", threshold: 1, pregreet: []time.Duration{0, 0}},
		{name: "lists", top: "dnsbl_threshold = 3\npregreet = \"3s\"\n",
			rest: "[[dnsbl]]\nzone = \"zen.example\"\nweight = 3\nanswers = [\"127.0.0.2\", \"127.0.0.8/29\"]\n[[dnsbl]]\nzone = \"wl.example.\"\nweight = -5\n",
			zones: []DNSBL{{Zone: "zen.example", Weight: 3, Answers: []string{"127.0.0.2", "127.0.0.8/29"}},
				{Zone: "wl.example.", Weight: -5}},
			threshold: 3, pregreet: []time.Duration{3 * time.Second, 0}},
		{name: "bad values", top: "dnsbl_threshold = 0\ndnsbl_timeout = \"0s\"\n",
			rest: "[[dnsbl]]\nzone = \"not a zone\"\n[[dnsbl]]\nzone = \"bl.example\"\nanswers = [\"10.0.0.2\", \"x\"]\n[[dnsbl]]\nzone = \"BL.example\"\n[[dnsbl]]\nzone = \"bl.example.\"\n",
			keys: []string{"dnsbl_threshold", "dnsbl_timeout", "dnsbl[0].zone", "dnsbl[1].answers", "dnsbl[3].zone"}},
		{name: "one zone, two parts", rest: "[[dnsbl]]\nzone = \"zen.example\"\nanswers = [\"127.0.0.2/31\"]\nweight = 3\n[[dnsbl]]\nzone = \"zen.example\"\nanswers = [\"127.0.0.10/31\"]\nweight = -1\n",
			zones:     []DNSBL{{Zone: "zen.example", Weight: 3, Answers: []string{"127.0.0.2/31"}}, {Zone: "zen.example", Weight: -1, Answers: []string{"127.0.0.10/31"}}},
			threshold: 1, pregreet: []time.Duration{0, 0}},
		{name: "pregreet too long", top: "pregreet = \"5m\"\n", keys: []string{"pregreet"}},
		{name: "unknown key", rest: "[[dnsbl]]\nzone = \"bl.example\"\nscore = 2\n", keys: []string{"dnsbl.score"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(head+tt.top+tail+tt.rest), "test.toml")
			var got []string
			for _, e := range Problems(err) {
				got = append(got, e.(*Problem).Key)
			}
			if !sameSet(got, tt.keys) {
				t.Fatalf("problems %q, want %q (%v)", got, tt.keys, err)
			}
			if err != nil {
				return
			}
			if !slices.EqualFunc(c.DNSBL, tt.zones, func(a, b DNSBL) bool {
				return a.Zone == b.Zone && a.Weight == b.Weight && slices.Equal(a.Answers, b.Answers)
			}) || c.DNSBLThreshold != tt.threshold || c.DNSBLTimeout.D() != DefaultDNSBLTimeout {
				t.Errorf("got %+v threshold %d timeout %s", c.DNSBL, c.DNSBLThreshold, c.DNSBLTimeout)
			}
			for i, want := range tt.pregreet {
				if got := c.ListenerPregreet(c.Listeners[i]); got != want {
					t.Errorf("listener %d pregreet %s, want %s", i, got, want)
				}
			}
		})
	}
}

// A listener's pregreet overrides the top-level one, and is for mx only.
func TestListenerPregreet(t *testing.T) {
	src := "hostname = \"mx.example.com\"\npregreet = \"3s\"\n[tls]\nself_signed = true\n[[domain]]\nname = \"example.com\"\n" +
		"[[listener]]\naddress = \"127.0.0.1:25\"\nrole = \"mx\"\npregreet = \"6s\"\n" +
		"[[listener]]\naddress = \"127.0.0.1:26\"\nrole = \"mx\"\npregreet = \"0s\"\n" +
		"[[listener]]\naddress = \"127.0.0.1:27\"\nrole = \"mx\"\n"
	c, err := Parse([]byte(src), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []time.Duration{6 * time.Second, 0, 3 * time.Second} {
		if got := c.ListenerPregreet(c.Listeners[i]); got != want {
			t.Errorf("listener %d: %s, want %s", i, got, want)
		}
	}
	_, err = Parse([]byte(src+"[[listener]]\naddress = \"127.0.0.1:587\"\nrole = \"submission\"\npregreet = \"2s\"\n"), "t.toml")
	if ps := Problems(err); len(ps) != 1 || ps[0].(*Problem).Key != "listener[3].pregreet" {
		t.Errorf("pregreet on submission: %v", err)
	}
}

func TestAnswerPrefixes(t *testing.T) {
	tests := []struct {
		in   []string
		want []string
		ok   bool
	}{
		{nil, nil, true},
		{[]string{"127.0.0.2", "127.0.0.9/29", "127.0.0.0/8"}, []string{"127.0.0.2/32", "127.0.0.8/29", "127.0.0.0/8"}, true},
		{[]string{"127.0.0.0/7"}, nil, false},
		{[]string{"::1"}, nil, false},
		{[]string{"128.0.0.2"}, nil, false},
		{[]string{""}, nil, false},
	}
	for _, tt := range tests {
		ps, err := DNSBL{Answers: tt.in}.AnswerPrefixes()
		if (err == nil) != tt.ok {
			t.Errorf("%q: err %v", tt.in, err)
			continue
		}
		var got []string
		for _, p := range ps {
			got = append(got, p.String())
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%q: %q, want %q", tt.in, got, tt.want)
		}
	}
}
