package inbound

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"smtpkit/internal/dns"
	"smtpkit/internal/dns/dnstest"
	"smtpkit/internal/dnsbl"
	"smtpkit/internal/server"
	"smtpkit/internal/smtp"
)

// hitCounter records Events.DNSBLHit (the other events are ignored).
type hitCounter struct {
	noEvents
	mu   sync.Mutex
	hits map[string]int
}

func (h *hitCounter) DNSBLHit(zone string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hits == nil {
		h.hits = map[string]int{}
	}
	h.hits[zone]++
}

// screenedBackend is newBackend with a block list (weight 1), a second
// one (weight 1) and an allow list (weight -2) on a loopback DNS server,
// threshold 1.
func screenedBackend(t *testing.T) (*Backend, *hitCounter) {
	t.Helper()
	srv := dnstest.Start(t, dnstest.Zone{Host: "127.15.3.53", Records: []string{
		"2.3.15.127.bl.test. 60 A 127.0.0.2",
		"2.3.15.127.bl.test. 60 TXT \"spam source\"",
		"4.3.15.127.bl.test. 60 A 127.0.0.3",
		"4.3.15.127.wl.test. 60 A 127.0.10.1",
		"5.3.15.127.wl.test. 60 A 127.0.10.1",
	}})
	client, err := dns.New(dns.Options{Servers: []string{srv.Addr}, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	checker, err := dnsbl.New(dnsbl.Options{Resolver: dns.NewCache(client, dns.CacheOptions{}),
		Zones: []dnsbl.Zone{{Name: "bl.test"}, {Name: "wl.test", Weight: -2}}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newBackend(t, nil)
	hits := &hitCounter{}
	b.opts.DNSBL, b.opts.Events = checker, hits
	return b, hits
}

func TestScreen(t *testing.T) {
	b, hits := screenedBackend(t)
	tests := []struct {
		name        string
		ip          string
		role        server.Role
		trusted     bool
		auth        string
		want        string // "" = accepted
		allowlisted bool
		lookedUp    bool
	}{
		{"listed", "127.15.3.2", server.RoleMX, false, "",
			"554 5.7.1 Service unavailable; client [127.15.3.2] blocked using bl.test (127.0.0.2: spam source)", false, true},
		{"unlisted", "127.15.3.3", server.RoleMX, false, "", "", false, true},
		{"listed and allowlisted outweighs", "127.15.3.4", server.RoleMX, false, "", "", true, true},
		{"allowlisted", "127.15.3.5", server.RoleMX, false, "", "", true, true},
		{"trusted never looked up", "127.15.3.2", server.RoleMX, true, "", "", false, false},
		{"authenticated not applied", "127.15.3.2", server.RoleMX, false, "alice@example.com", "", false, true},
		{"not on submission", "127.15.3.2", server.RoleSubmission, false, "", "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &server.SessionInfo{ID: "c1", Role: tt.role, Trusted: tt.trusted, AuthUser: tt.auth,
				Remote: &net.TCPAddr{IP: net.ParseIP(tt.ip), Port: 4000}}
			if err := b.Connect(context.Background(), s); err != nil {
				t.Fatal(err)
			}
			st := b.sessions.get(s)
			if (st.dnsbl != nil) != tt.lookedUp {
				t.Fatalf("looked up: %v, want %v", st.dnsbl != nil, tt.lookedUp)
			}
			for range 2 { // every RCPT of the session gets the same answer
				err := b.Recipient(context.Background(), s, smtp.Address{}, addr("alice@example.com"))
				if got := replyText(err); got != tt.want {
					t.Fatalf("RCPT: %q, want %q", got, tt.want)
				}
			}
			if got := st.allowlisted(); got != tt.allowlisted {
				t.Errorf("allowlisted() = %v, want %v", got, tt.allowlisted)
			}
			b.Disconnect(s)
		})
	}
	want := map[string]int{"bl.test": 3, "wl.test": 2} // listed, listed+allowlisted, authenticated; the two allowlisted
	hits.mu.Lock()
	defer hits.mu.Unlock()
	for z, n := range want {
		if hits.hits[z] != n {
			t.Errorf("hits %v, want %v", hits.hits, want)
		}
	}
	if (*sessionState)(nil).allowlisted() {
		t.Error("nil state allowlisted")
	}
}

// replyText is err's reply as sent after EHLO, "" for nil.
func replyText(err error) string {
	if err == nil {
		return ""
	}
	var se *smtp.Error
	if !errors.As(err, &se) {
		return err.Error()
	}
	return se.Reply.OneLine()
}
