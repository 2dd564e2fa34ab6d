package config

import (
	"reflect"
	"testing"
	"time"
)

func TestMilterConfig(t *testing.T) {
	const head = minimalConfig
	const listeners = "[[listener]]\naddress = \"127.0.0.1:25\"\nrole = \"mx\"\n" +
		"[[listener]]\naddress = \"127.0.0.1:587\"\nrole = \"submission\"\nmilters = []\n" +
		"[[listener]]\naddress = \"127.0.0.1:2525\"\nrole = \"sink\"\n"
	tests := []struct {
		name    string
		toml    string
		keys    []string // problem keys
		milters []Milter
		applies [][]string // Config.ListenerMilters of each listener
	}{
		{name: "none", toml: listeners, applies: [][]string{{}, {}, nil}},
		{name: "defaults",
			toml:    "[[milter]]\nname = \"rspamd\"\naddress = \"inet:127.0.0.1:11332\"\n" + listeners,
			milters: []Milter{{Name: "rspamd", Address: "inet:127.0.0.1:11332", Timeout: Duration(30 * time.Second), DefaultAction: "tempfail"}},
			applies: [][]string{{"rspamd"}, {}, nil}},
		{name: "two, chosen per listener",
			toml: "[[milter]]\nname = \"rspamd\"\naddress = \"unix:/run/rspamd.sock\"\ntimeout = \"5s\"\ndefault_action = \"accept\"\n" +
				"[[milter]]\nname = \"clamav\"\naddress = \"127.0.0.1:7357\"\n" +
				"[[listener]]\naddress = \"127.0.0.1:25\"\nrole = \"mx\"\nmilters = [\"clamav\"]\n" +
				"[[listener]]\naddress = \"127.0.0.1:587\"\nrole = \"submission\"\n",
			milters: []Milter{
				{Name: "rspamd", Address: "unix:/run/rspamd.sock", Timeout: Duration(5 * time.Second), DefaultAction: "accept"},
				{Name: "clamav", Address: "127.0.0.1:7357", Timeout: Duration(30 * time.Second), DefaultAction: "tempfail"},
			},
			applies: [][]string{{"clamav"}, {"rspamd", "clamav"}}},
		{name: "bad entries",
			toml: "[[milter]]\nname = \"\"\naddress = \"inet:nohost\"\ndefault_action = \"reject\"\n" +
				"[[milter]]\nname = \"a\"\naddress = \"unix:relative\"\n" +
				"[[milter]]\nname = \"a\"\naddress = \"inet:99999@127.0.0.1\"\n" +
				"[[listener]]\naddress = \"127.0.0.1:25\"\nrole = \"mx\"\nmilters = [\"nope\"]\n",
			keys: []string{"milter[0].name", "milter[0].address", "milter[0].default_action",
				"milter[1].address", "milter[2].name", "milter[2].address", "listener[0].milters"}},
		{name: "unknown key", toml: "[[milter]]\nname = \"a\"\naddress = \"127.0.0.1:1\"\nflags = 1\n" + listeners,
			keys: []string{"milter.flags"}},
	}
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
			if !reflect.DeepEqual(c.Milters, tt.milters) && len(c.Milters)+len(tt.milters) > 0 {
				t.Errorf("milters %+v, want %+v", c.Milters, tt.milters)
			}
			for i, want := range tt.applies {
				if got := c.ListenerMilters(c.Listeners[i]); !reflect.DeepEqual(got, want) && len(got)+len(want) > 0 {
					t.Errorf("listener %d milters %q, want %q", i, got, want)
				}
			}
		})
	}
}

func TestMilterAddress(t *testing.T) {
	tests := []struct {
		in, network, address string
		bad                  bool
	}{
		{in: "inet:127.0.0.1:11332", network: "tcp", address: "127.0.0.1:11332"},
		{in: "inet:11332@127.0.0.1", network: "tcp", address: "127.0.0.1:11332"},
		{in: "inet6:[::1]:11332", network: "tcp", address: "[::1]:11332"},
		{in: "inet6:11332@[::1]", network: "tcp", address: "[::1]:11332"},
		{in: "localhost:11332", network: "tcp", address: "localhost:11332"},
		{in: "unix:/run/rspamd/milter.sock", network: "unix", address: "/run/rspamd/milter.sock"},
		{in: "local:/var/run/clamav.sock", network: "unix", address: "/var/run/clamav.sock"},
		{in: "", bad: true},
		{in: "unix:", bad: true},
		{in: "unix:run/x", bad: true},
		{in: "inet:127.0.0.1", bad: true},
		{in: "inet::11332", bad: true},
		{in: "127.0.0.1:0", bad: true},
		{in: "127.0.0.1:http", bad: true},
	}
	for _, tt := range tests {
		network, address, err := MilterAddress(tt.in)
		if (err != nil) != tt.bad || network != tt.network || address != tt.address {
			t.Errorf("MilterAddress(%q) = %q, %q, %v; want %q, %q, bad %v", tt.in, network, address, err, tt.network, tt.address, tt.bad)
		}
	}
}
