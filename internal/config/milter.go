package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Milter is one [[milter]]: a content filter speaking Sendmail's milter
// protocol (rspamd's proxy worker in milter mode, clamav-milter,
// OpenDKIM, …), asked at every stage of the SMTP sessions of the
// listeners it applies to (internal/inbound, milter.go).
type Milter struct {
	// Name names the milter in listener.milters, the logs and the
	// metrics. Required, unique.
	Name string `toml:"name"`
	// Address is where the milter listens: "inet:127.0.0.1:11332" (or
	// Sendmail's "inet:11332@127.0.0.1"), "inet6:[::1]:11332",
	// "unix:/run/rspamd/milter.sock" (or "local:/path"), or a bare
	// "host:port". See MilterAddress.
	Address string `toml:"address"`
	// Timeout bounds the connection and each reply of the milter,
	// default 30s. A milter that does not answer in time is treated as
	// down (DefaultAction).
	Timeout Duration `toml:"timeout"`
	// DefaultAction is what happens when the milter cannot be reached,
	// times out or breaks the protocol: "tempfail" (the default: 451
	// 4.7.1 at the stage where it failed, the client retries later) or
	// "accept" (the session goes on without this milter).
	DefaultAction string `toml:"default_action"`
}

// The values of milter.default_action.
const (
	MilterTempfail = "tempfail"
	MilterAccept   = "accept"
)

// defaultMilterTimeout is milter.timeout when left out: Postfix's
// milter_command_timeout is 30s too.
const defaultMilterTimeout = Duration(30 * time.Second)

// fillMilters gives each [[milter]] the defaults of the keys it left out.
func fillMilters(ms []Milter) []Milter {
	if len(ms) == 0 {
		return nil
	}
	out := make([]Milter, len(ms))
	for i, m := range ms {
		if m.Timeout == 0 {
			m.Timeout = defaultMilterTimeout
		}
		if m.DefaultAction == "" {
			m.DefaultAction = MilterTempfail
		}
		out[i] = m
	}
	return out
}

// MilterAddress splits a milter address into the network and address
// net.Dial takes: "tcp" with host:port, or "unix" with a path. It accepts
// Postfix's and Sendmail's forms — "inet:host:port", "inet:port@host",
// "inet6:…", "unix:/path", "local:/path" — and a bare "host:port".
func MilterAddress(s string) (network, address string, err error) {
	kind, rest, found := strings.Cut(s, ":")
	switch {
	case found && (kind == "unix" || kind == "local"):
		if !strings.HasPrefix(rest, "/") {
			return "", "", errors.New("a unix socket needs an absolute path")
		}
		return "unix", rest, nil
	case found && (kind == "inet" || kind == "inet6"):
		return tcpAddress(rest)
	}
	return tcpAddress(s)
}

// tcpAddress checks host:port, or Sendmail's port@host.
func tcpAddress(s string) (string, string, error) {
	if port, host, ok := strings.Cut(s, "@"); ok {
		s = net.JoinHostPort(strings.Trim(host, "[]"), port)
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return "", "", fmt.Errorf("want inet:host:port, unix:/path or host:port")
	}
	switch host {
	case "inet", "inet6", "unix", "local":
		// "inet:1" would read as the socket type, not as this host.
		return "", "", fmt.Errorf("host %q is a socket type's name: want inet:host:port", host)
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Zone() != "" || err != nil && host != "localhost" && !validDomain(host) {
		return "", "", fmt.Errorf("host %q: want an IP address or a host name", host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("port %q: want 1 to 65535", port)
	}
	return "tcp", net.JoinHostPort(host, port), nil
}

// ListenerMilters is the names of the milters that apply to l: its
// milters key when given ([] = none), else every [[milter]] on mx,
// submission and submissions listeners (never on a sink).
func (c Config) ListenerMilters(l Listener) []string {
	if l.Milters != nil {
		return *l.Milters
	}
	if l.Role == RoleSink {
		return nil
	}
	names := make([]string, len(c.Milters))
	for i, m := range c.Milters {
		names[i] = m.Name
	}
	return names
}

func (v *validator) milters(c Config) {
	known := map[string]bool{}
	for i, m := range c.Milters {
		key := fmt.Sprintf("milter[%d]", i)
		switch {
		case m.Name == "":
			v.add(key+".name", "missing: a name for listener.milters, the logs and the metrics")
		case strings.ContainsAny(m.Name, " \t\",") || !isPrintableASCII(m.Name):
			v.add(key+".name", "%q: want a plain word (letters, digits, - _ .)", m.Name)
		case known[m.Name]:
			v.add(key+".name", "%q is used by another [[milter]]", m.Name)
		}
		known[m.Name] = true
		if _, _, err := MilterAddress(m.Address); err != nil {
			v.add(key+".address", "%q: %v", m.Address, err)
		}
		if m.Timeout < 0 {
			v.add(key+".timeout", "must not be negative, got %s", m.Timeout)
		}
		if !oneOf(m.DefaultAction, MilterTempfail, MilterAccept, "") {
			v.add(key+".default_action", "%q: want \"tempfail\" or \"accept\"", m.DefaultAction)
		}
	}
	for i, l := range c.Listeners {
		if l.Milters == nil {
			continue
		}
		for _, name := range *l.Milters {
			if !known[name] {
				v.add(fmt.Sprintf("listener[%d].milters", i), "%q: no [[milter]] has this name", name)
			}
		}
	}
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
