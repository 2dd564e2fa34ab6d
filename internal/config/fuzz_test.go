package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// FuzzParseByteSize checks that parsing never panics and that every
// accepted size survives String → ParseByteSize unchanged.
func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"1024", "50MiB", "10MB", "512 KiB", "1GiB", "9223372036854775807", "1.5MB", "-1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseByteSize(s)
		if err != nil {
			return
		}
		if b < 0 {
			t.Fatalf("ParseByteSize(%q) = %d, negative", s, int64(b))
		}
		again, err := ParseByteSize(b.String())
		if err != nil || again != b {
			t.Fatalf("round trip %q → %d → %q → %d, %v", s, int64(b), b.String(), int64(again), err)
		}
	})
}

// FuzzParseDuration checks that parsing never panics, never yields a
// negative duration, and that String → ParseDuration round-trips.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30s", "5m", "4h", "5d", "1h30m", "500ms", "3µs", "0", "106751d", "300", "1.5h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %v, negative", s, time.Duration(d))
		}
		again, err := ParseDuration(d.String())
		if err != nil || again != d {
			t.Fatalf("round trip %q → %v → %q → %v, %v", s, time.Duration(d), d.String(), time.Duration(again), err)
		}
	})
}

// FuzzParse checks that no input panics the decoder or the line index, and
// that whatever Parse accepts also validates and every problem it reports
// is a *Problem naming the file.
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte(minimal + "[[listener]]\naddress = \":25\"\nrole = \"mx\"\ntsl = 1\n"))
	f.Add([]byte("a = \"\"\"\nx = 1\n\"\"\"\nb = [\n 1,\n]\n[x.'y z']\nc = {d = 1}\n"))
	f.Add([]byte("[[tls.certificate]]\ncert = \"c\"\n[limits\n"))
	f.Add([]byte(minimal + "[cluster]\ndatabase = \"postgres://u:p@127.0.0.1:5432/mail?sslmode=disable\"\nnode = \"mx1\"\nlease = \"30s\"\npoll_interval = \"1s\"\n"))
	f.Add([]byte("hostname = \"mx.example.com\"\n[[domain]]\nname = \"example.com\"\nlmtp = \"unix:/run/dovecot/lmtp\"\nlmtp_accounts = { alice = \"127.0.0.1:24\", postmaster = \"maildir\", \"a@b\" = \"x:0\" }\n[tls]\nself_signed = true\n"))
	f.Add([]byte(minimal + "[acme]\ndirectory = \"https://acme.example/dir\"\nemail = \"a@example.com\"\nnames = [\"mx.example.com\"]\nchallenge = \"http-01\"\nchallenge_address = \":8080\"\nretry_min = \"1m\"\nretry_max = \"1h\"\n"))
	f.Add([]byte(minimal + "[acme]\ndirectory = \"https://[::1\"\nemail = \"<@>\"\nnames = [\"*.x\", \"1.2.3.4\"]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "f.toml")
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("Parse accepted a config that does not validate: %v", verr)
			}
			return
		}
		for _, e := range Problems(err) {
			p, ok := e.(*Problem)
			if !ok || p.File != "f.toml" || p.Line < 0 {
				t.Fatalf("problem %#v (%T)", e, e)
			}
		}
	})
}

// FuzzParseNetwork checks that a trusted_networks entry never panics the
// parser and that every accepted one is canonical: its String parses
// back to itself, with no host bits and no IPv4-mapped form.
func FuzzParseNetwork(f *testing.F) {
	for _, s := range []string{"127.0.0.0/8", "::1/128", "192.0.2.7", "2001:db8::/32", "192.0.2.1/24", "::ffff:10.0.0.0/104", "fe80::1%eth0", "", "0.0.0.0/0", "1.2.3.4/-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseNetwork(s)
		if err != nil {
			return
		}
		if p.Masked() != p || p.Addr().Is4In6() {
			t.Fatalf("ParseNetwork(%q) = %v: not canonical", s, p)
		}
		again, err := ParseNetwork(p.String())
		if err != nil || again != p {
			t.Fatalf("round trip %q → %v → %v, %v", s, p, again, err)
		}
	})
}

// FuzzMilterAddress checks that MilterAddress never panics and that what
// it accepts is something net.Dial takes: "unix" with an absolute path,
// or "tcp" with a host:port that parses again to itself.
func FuzzMilterAddress(f *testing.F) {
	for _, s := range []string{"inet:127.0.0.1:11332", "inet:11332@127.0.0.1", "inet6:[::1]:1", "unix:/run/x.sock",
		"local:/x", "host:25", "inet:", "unix:", "@", "inet:@", "inet6:1@[::1", ":1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		network, address, err := MilterAddress(s)
		if err != nil {
			return
		}
		switch network {
		case "unix":
			if !strings.HasPrefix(address, "/") {
				t.Fatalf("MilterAddress(%q) = unix %q, not absolute", s, address)
			}
		case "tcp":
			n2, a2, err := MilterAddress(address)
			if err != nil || n2 != "tcp" || a2 != address {
				t.Fatalf("MilterAddress(%q) = %q, which gives %q %q %v", s, address, n2, a2, err)
			}
		default:
			t.Fatalf("MilterAddress(%q): network %q", s, network)
		}
	})
}

// FuzzAnswerPrefixes checks that a [[dnsbl]] answers entry never panics
// the parser and that whatever it accepts is a masked IPv4 prefix
// inside 127.0.0.0/8 (RFC 5782 §2.1).
func FuzzAnswerPrefixes(f *testing.F) {
	for _, s := range []string{"127.0.0.2", "127.0.0.8/29", "127.0.0.9/29", "127.0.0.0/8", "127.0.0.0/7", "::1", "::ffff:127.0.0.2", "10.0.0.2", "127.0.0.256", "127.0.0.2/33", "", "/"} {
		f.Add(s)
	}
	loop := netip.MustParsePrefix("127.0.0.0/8")
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := DNSBL{Answers: []string{s}}.AnswerPrefixes()
		if err != nil {
			return
		}
		for _, p := range ps {
			if !p.Addr().Is4() || p.Bits() < 8 || !loop.Contains(p.Addr()) || p != p.Masked() {
				t.Fatalf("%q accepted as %s", s, p)
			}
		}
	})
}
