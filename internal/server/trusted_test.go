package server

import (
	"net/netip"
	"strings"
	"testing"
)

// TestTrustedExemptFromPerIPLimits: a client in the listener's trusted
// networks is exempt from connections_per_ip and connection_rate (issue
// #15: 200 connections from 127.0.0.1 all get 220), not from the total
// limit; an untrusted client still gets 421 after the 20th.
func TestTrustedExemptFromPerIPLimits(t *testing.T) {
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		limits  Limits
		open    int    // connections opened and held
		want220 int    // how many of them are greeted
		refusal string // the reply of the first refused one
	}{
		{"trusted: 200 concurrent all greeted", loopback, Limits{}, 200, 200, ""},
		{"untrusted: 421 after the 20th", nil, Limits{}, 21, 20, "421 4.7.0 mx.example.com too many connections from your address"},
		{"other network trusted: 421 after the 20th", []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, Limits{}, 21, 20, "421 4.7.0"},
		{"trusted: not past the connection rate either", loopback, Limits{ConnectionRate: 5, ConnectionsPerIP: 1000}, 30, 30, ""},
		{"untrusted: the connection rate holds", nil, Limits{ConnectionRate: 5, ConnectionsPerIP: 1000}, 6, 5, "421 4.7.0 mx.example.com connecting too fast"},
		{"trusted: the total limit holds", loopback, Limits{Connections: 30, ConnectionsPerIP: 10}, 31, 30, "421 4.7.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, tt.limits, Listener{Role: RoleMX, TLS: TLSNone, TrustedNetworks: tt.trusted})
			greeted := 0
			var refused string
			for range tt.open {
				c := rawDial(t, ts.addrs[0]) // held open until the test ends
				r := c.reply()
				if strings.HasPrefix(r, "220 ") {
					greeted++
				} else if refused == "" {
					refused = r
				}
			}
			if greeted != tt.want220 {
				t.Errorf("%d of %d connections greeted, want %d (first refusal %q)", greeted, tt.open, tt.want220, refused)
			}
			if tt.refusal != "" && !strings.HasPrefix(refused, tt.refusal) {
				t.Errorf("refusal %q, want prefix %q", refused, tt.refusal)
			}
		})
	}
}

// TestTrustedNotCountedOnOtherListeners: the trusted sessions of one
// listener are not counted under their IP, so a listener of the same
// server that does not trust the address still admits its 20.
func TestTrustedNotCountedOnOtherListeners(t *testing.T) {
	ts := startServer(t, Limits{},
		Listener{Name: "trusting", Role: RoleMX, TLS: TLSNone, TrustedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}},
		Listener{Name: "plain", Role: RoleMX, TLS: TLSNone})
	for range 50 {
		rawDial(t, ts.addrs[0]).expect("220 ")
	}
	for range 20 {
		rawDial(t, ts.addrs[1]).expect("220 ")
	}
	rawDial(t, ts.addrs[1]).expect("421 4.7.0")
	// And they are given back: once closed, the count is unchanged.
	ts.srv.mu.Lock()
	n := ts.srv.perIP["127.0.0.1"]
	ts.srv.mu.Unlock()
	if n != 20 {
		t.Errorf("perIP[127.0.0.1] = %d, want 20 (the trusted sessions are not counted)", n)
	}
}

// TestTrustedStillAuthenticatesOnSubmission: trust does not waive AUTH on
// a submission listener (RFC 6409 §4.3): MAIL without it is 530 5.7.0,
// for a trusted client as for anyone.
func TestTrustedStillAuthenticatesOnSubmission(t *testing.T) {
	ts := startServer(t, Limits{}, Listener{Role: RoleSubmission, TLS: TLSNone, Auth: true,
		TrustedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	c := runScript(t, ts.addrs[0], []step{{"EHLO c", "250-"}})
	c.cmd("MAIL FROM:<alice@example.com>", "530 5.7.0 Authentication required")
}
