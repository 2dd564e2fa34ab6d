package config

// http.go: [http], the loopback HTTP listener of /metrics, /healthz, the
// status page and (when asked for) pprof. [metrics] address is its old name
// and stays accepted.

import "time"

// HTTP is [http].
type HTTP struct {
	// Address is host:port of the listener, loopback only; "" = off
	// unless the old [metrics] address is set.
	Address string `toml:"address"`
	// PProf mounts net/http/pprof under /debug/pprof/ (default off).
	PProf bool `toml:"pprof"`
	// SecureCookie marks the status page's cookies Secure even though the
	// request arrived over plain HTTP: for a TLS reverse proxy in front of
	// the loopback listener. Requests that arrive over TLS always get Secure
	// cookies.
	SecureCookie bool `toml:"secure_cookie"`
	// SessionTTL is how long a status-page login lasts without use
	// (default 30m); a session ends at the latest 12 hours after login.
	SessionTTL Duration `toml:"session_ttl"`
}

// DefaultSessionTTL is http.session_ttl's default.
const DefaultSessionTTL = 30 * time.Minute

func defaultHTTP() HTTP { return HTTP{SessionTTL: Duration(DefaultSessionTTL)} }

// HTTPAddress is the address of the HTTP listener: [http] address, else
// the old [metrics] address, else "" (off).
func (c Config) HTTPAddress() string {
	if c.HTTP.Address != "" {
		return c.HTTP.Address
	}
	return c.Metrics.Address
}

// httpKey names the key the effective HTTP address came from, for problems.
func (c Config) httpKey() string {
	if c.HTTP.Address == "" && c.Metrics.Address != "" {
		return "metrics.address"
	}
	return "http.address"
}

func (v *validator) http(c Config) {
	if c.HTTP.Address != "" && c.Metrics.Address != "" && c.HTTP.Address != c.Metrics.Address {
		v.add("metrics.address", "%q differs from http.address %q: [metrics] address is the old name of [http] address; set only http.address", c.Metrics.Address, c.HTTP.Address)
	}
	if c.HTTP.PProf && c.HTTPAddress() == "" {
		v.add("http.pprof", "needs http.address: pprof is served on the HTTP listener")
	}
	if c.HTTP.SessionTTL < 0 {
		v.add("http.session_ttl", "must not be negative")
	}
	addr := c.HTTPAddress()
	if addr == "" {
		return
	}
	key := c.httpKey()
	host, _, err := splitAddress(addr)
	if err != nil {
		v.add(key, "%q: %v", addr, err)
		return
	}
	if !isLoopback(host) {
		// /metrics and pprof have no authentication: keep the listener on
		// loopback and let a scraper or a browser reach it through a tunnel,
		// a local agent or a reverse proxy.
		v.add(key, "%q: must be a loopback address (127.0.0.1, [::1] or localhost); /metrics and pprof have no authentication", addr)
	}
	for _, l := range c.Listeners {
		if l.Address == addr {
			v.add(key, "%q is also a listener address", addr)
		}
	}
}
