package server

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"smtpkit/internal/smtp"
)

// TestReceived checks the whole trace header (RFC 5321 §4.4) for the
// session states that change it: HELO or EHLO, TLS, AUTH, SMTPUTF8, one or
// several recipients, IPv4, IPv4-mapped and IPv6 clients, and a hostile
// HELO name.
func TestReceived(t *testing.T) {
	date := time.Date(2026, 3, 2, 10, 4, 5, 0, time.FixedZone("", 3600))
	v4 := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7).To4(), Port: 2525}
	mapped := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 8), Port: 2525} // 16-byte form
	v6 := &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 2525}
	tlsState := &tls.ConnectionState{Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256}
	one := []smtp.Address{{Local: "alice", Domain: "example.com"}}
	two := []smtp.Address{{Local: "alice", Domain: "example.com"}, {Local: "bob", Domain: "example.com"}}
	tests := []struct {
		name   string
		info   SessionInfo
		esmtp  bool
		txn    txn
		header string
	}{
		{"helo", SessionInfo{Helo: "c.example", Remote: v4}, false, txn{rcpts: one},
			"Received: from c.example ([192.0.2.7])\r\n\tby mx.example.com (smtpkit) with SMTP id ID1\r\n\tfor <alice@example.com>;\r\n\tMon, 02 Mar 2026 10:04:05 +0100\r\n"},
		{"no helo, two recipients", SessionInfo{Remote: mapped}, true, txn{rcpts: two},
			"Received: from unknown ([192.0.2.8])\r\n\tby mx.example.com (smtpkit) with ESMTP id ID1;\r\n\tMon, 02 Mar 2026 10:04:05 +0100\r\n"},
		{"tls auth utf8 ipv6", SessionInfo{Helo: "c", Remote: v6, TLS: tlsState, AuthUser: "u"}, true,
			txn{rcpts: []smtp.Address{{Local: "a b", Domain: "bücher.de"}}, smtputf8: true},
			"Received: from c ([IPv6:2001:db8::1])\r\n\tby mx.example.com (smtpkit) with UTF8SMTPSA id ID1\r\n\t(using TLS 1.3 with cipher TLS_AES_128_GCM_SHA256)\r\n\tfor <\"a b\"@bücher.de>;\r\n\tMon, 02 Mar 2026 10:04:05 +0100\r\n"},
		{"hostile helo", SessionInfo{Helo: "a(b)\x01ü\r\nX", Remote: v4}, true, txn{rcpts: two},
			"Received: from a?b?????X ([192.0.2.7])\r\n\tby mx.example.com (smtpkit) with ESMTP id ID1;\r\n\tMon, 02 Mar 2026 10:04:05 +0100\r\n"},
		{"long helo", SessionInfo{Helo: strings.Repeat("h", 300), Remote: &net.UnixAddr{Name: "@", Net: "unix"}}, true, txn{rcpts: two},
			"Received: from " + strings.Repeat("h", 255) + " ([@])\r\n\tby mx.example.com (smtpkit) with ESMTP id ID1;\r\n\tMon, 02 Mar 2026 10:04:05 +0100\r\n"},
	}
	srv := New(Options{Hostname: "mx.example.com", Now: func() time.Time { return date }})
	for _, tt := range tests {
		tt.txn.started = srv.now() // set by begin
		s := &session{srv: srv, info: tt.info, esmtp: tt.esmtp, txn: tt.txn}
		if got := string(s.appendReceived(nil, "ID1")); got != tt.header {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.header)
		}
	}
}
