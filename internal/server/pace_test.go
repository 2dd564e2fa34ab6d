package server

import (
	"strings"
	"testing"
	"time"
)

func TestPaceDeadline(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(d time.Duration) time.Time { return start.Add(d) }
	tests := []struct {
		name     string
		now      time.Duration // since start
		received int64
		timeout  time.Duration
		rate     int64
		want     time.Duration // since start
	}{
		{"nothing yet", 0, 0, 10 * time.Minute, 500, 10 * time.Minute},
		{"fast client: the wait bounds", time.Second, 1 << 20, 10 * time.Minute, 500, time.Second + 10*time.Minute},
		{"exactly at the rate", 100 * time.Second, 50000, 10 * time.Second, 500, 110 * time.Second},
		{"a trickle: the rate bounds", 9 * time.Minute, 100, 10 * time.Minute, 500, 10*time.Minute + 200*time.Millisecond},
		{"behind the rate", 11 * time.Minute, 100, 10 * time.Minute, 500, 10*time.Minute + 200*time.Millisecond},
		{"stress timeout", 5 * time.Second, 10, 10 * time.Second, 500, 10*time.Second + 20*time.Millisecond},
		{"fractions of a second", time.Second, 1, time.Second, 3, time.Second + 333333333*time.Nanosecond},
		{"rate 0 counts as 1", 0, 2, time.Second, 0, time.Second},
		{"no overflow", time.Hour, 1 << 62, time.Minute, 1, time.Hour + time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := paceDeadline(at(tt.now), start, tt.received, tt.timeout, tt.rate)
			if !got.Equal(at(tt.want)) {
				t.Errorf("deadline %v after start, want %v", got.Sub(start), tt.want)
			}
		})
	}
}

// trickle writes raw one octet at a time, every step, until it is written
// or stop is closed; it paces a client, the test waits for replies.
func trickle(c *client, raw string, step time.Duration, stop <-chan struct{}) {
	tick := time.NewTicker(step)
	defer tick.Stop()
	for i := range len(raw) {
		if _, err := c.conn.Write([]byte{raw[i]}); err != nil {
			return
		}
		select {
		case <-tick.C:
		case <-stop:
			return
		}
	}
}

// TestMinDataRate: DATA and BDAT that trickle in faster than DataTimeout
// per octet but slower than MinDataRate are cut with 421 4.4.2 (RFC 5321
// §4.5.3.2) long before the session deadline, and nothing is stored;
// without the rate only the session deadline (a minute here) would end
// them. A client at a normal pace is not affected.
func TestMinDataRate(t *testing.T) {
	lim := Limits{DataTimeout: 300 * time.Millisecond, MinDataRate: 100, SessionTimeout: time.Minute}
	ts := startServer(t, lim, Listener{Role: RoleMX, TLS: TLSNone})
	body := strings.Repeat("Subject: trickle\r\n", 1000)
	tests := []struct {
		name string
		send func(c *client, stop <-chan struct{})
	}{
		{"DATA", func(c *client, stop <-chan struct{}) {
			c.cmd("DATA", "354")
			go trickle(c, body, 20*time.Millisecond, stop)
		}},
		{"BDAT one octet a chunk", func(c *client, stop <-chan struct{}) {
			go func() {
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				for range 1000 {
					if _, err := c.conn.Write([]byte("BDAT 1\r\nx")); err != nil {
						return
					}
					select {
					case <-tick.C:
					case <-stop:
						return
					}
				}
			}()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, ts.addrs[0])
			c.cmd("EHLO c", "250-")
			c.cmd("MAIL FROM:<a@b.example>", "250")
			c.cmd("RCPT TO:<alice@example.com>", "250")
			stop := make(chan struct{})
			defer close(stop)
			tt.send(c, stop)
			for {
				r := c.reply() // fails the test at the client's 10 s deadline
				if strings.HasPrefix(r, "250 ") {
					continue // a BDAT chunk
				}
				if !strings.HasPrefix(r, "421 4.4.2") {
					t.Fatalf("got %q, want 421 4.4.2", r)
				}
				break
			}
			c.closed()
		})
	}
	c := dial(t, ts.addrs[0])
	c.cmd("EHLO c", "250-")
	c.cmd("MAIL FROM:<a@b.example>", "250")
	c.cmd("RCPT TO:<alice@example.com>", "250")
	c.cmd("DATA", "354")
	c.cmd("Subject: fast\r\n\r\n"+body+".", "250 2.0.0")
	if n := len(ts.backend.messages()); n != 1 {
		t.Errorf("%d messages stored, want only the fast one", n)
	}
}
