package web

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// LocalOnly serves next only to requests whose Host names the loopback
// listener (a loopback IP literal or "localhost", any port); others get
// 421 Misdirected Request. A web page elsewhere that rebinds its own name
// to 127.0.0.1 (DNS rebinding) then reaches nothing: its requests carry
// its own name.
func LocalOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !localHost(r.Host) {
			http.Error(w, "this listener answers only to a loopback address or localhost as Host", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// localHost reports whether a Host header names the loopback.
func localHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
