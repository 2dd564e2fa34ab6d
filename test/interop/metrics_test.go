package interop

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMetricsEndpoint: with [metrics] set, serve answers /healthz and
// /metrics over HTTP; a message sent by curl moves the accepted counter, a
// refused recipient and a STARTTLS handshake show up, and the queue gauges
// are there. The scrapes are made with curl too.
func TestMetricsEndpoint(t *testing.T) {
	curl := Need(t, "curl")
	metricsAddr := freeAddr(t)
	s := StartServer(t, ServerOptions{ExtraTOML: fmt.Sprintf("[metrics]\naddress = %q", metricsAddr)})
	s.AddUser(t, "user@test.example", "correct horse battery staple")
	get := func(path string) (int, string) {
		t.Helper()
		r := mustRun(t, nil, curl, "-sS", "--max-time", "10", "-w", "\n%{http_code}", "http://"+metricsAddr+path)
		body, code, _ := cutLast(r.Stdout, "\n")
		n, err := strconv.Atoi(code)
		if err != nil {
			t.Fatalf("curl %s: no status code in %q", path, r.Stdout)
		}
		return n, body
	}

	// The listeners and the queue runner start right after the ready line.
	deadline := time.Now().Add(pollTimeout)
	for {
		code, body := get("/healthz")
		if code == 200 && body == "ok\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz never became healthy: %d %q", code, body)
		}
		time.Sleep(pollStep)
	}

	before := scrape(t, get)
	msg := testMessage("metrics")
	host, resolve := resolveArg(s.MX)
	mustRun(t, nil, curl, "-sS", "smtp://"+host, "--resolve", resolve, "--mail-from", "a@b.example",
		"--mail-rcpt", "user@test.example", "--upload-file", writeMessage(t, msg), "--ssl-reqd",
		"--cacert", s.CertPath, "--max-time", "20")
	s.WaitMessages(t, "user@test.example", 1)
	c := Dial(t, s.MX)
	c.Greeting()
	c.Hello()
	c.Cmd("MAIL FROM:<a@b.example>", 250)
	c.Cmd("RCPT TO:<nobody@test.example>", 550)
	c.Cmd("QUIT", 221)
	c.Close()

	after := scrape(t, get)
	mx := fmt.Sprintf("listener=%q", s.MX)
	tests := []struct {
		series string
		delta  float64
	}{
		{`smtpkit_messages_accepted_total{` + mx + `,tls="true"}`, 1},
		{`smtpkit_messages_accepted_bytes_total{` + mx + `}`, -1}, // grew
		{`smtpkit_message_accept_duration_seconds_count{` + mx + `}`, 1},
		{`smtpkit_connections_total{` + mx + `}`, 2},
		{`smtpkit_tls_handshakes_total{` + mx + `,version="TLS 1.3"}`, 1},
		{`smtpkit_recipients_refused_total{` + mx + `,reason="unknown_user"}`, 1},
	}
	for _, tt := range tests {
		got, ok := after[tt.series]
		switch {
		case !ok:
			t.Errorf("%s missing from /metrics", tt.series)
		case tt.delta < 0 && got <= before[tt.series]:
			t.Errorf("%s = %v, want more than %v", tt.series, got, before[tt.series])
		case tt.delta >= 0 && got-before[tt.series] != tt.delta:
			t.Errorf("%s went %v → %v, want +%v", tt.series, before[tt.series], got, tt.delta)
		}
	}
	for _, series := range []string{"smtpkit_queue_messages", `smtpkit_queue_recipients{state="deferred"}`,
		"smtpkit_queue_oldest_age_seconds", "smtpkit_deliveries_in_flight", "go_goroutines"} {
		if _, ok := after[series]; !ok {
			t.Errorf("%s missing from /metrics", series)
		}
	}
	if !strings.Contains(s.Logs(), "msg=\"message accepted\"") || !regexp.MustCompile(`rcpt="?\[user@test.example\]"? size=\d+ tls=true tls_version="TLS 1.3"`).MatchString(s.Logs()) {
		t.Errorf("no message accepted log line with rcpt and tls_version:\n%s", s.Logs())
	}
}

// TestSystemdNotify: under a NOTIFY_SOCKET, serve says READY=1 once it
// listens, RELOADING=1 then READY=1 around a SIGHUP reload, and STOPPING=1
// on SIGTERM.
func TestSystemdNotify(t *testing.T) {
	dir, err := os.MkdirTemp("", "sd") // short: socket paths are limited to ~108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := dir + "/notify"
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	next := func() string {
		t.Helper()
		ln.SetReadDeadline(time.Now().Add(readyTimeout))
		buf := make([]byte, 4096)
		n, _, err := ln.ReadFromUnix(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:n])
	}

	s := StartServer(t, ServerOptions{})
	if got := next(); !strings.HasPrefix(got, "READY=1\n") {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	c := Dial(t, s.MX) // it really listens
	c.Greeting()
	c.Cmd("QUIT", 221)
	c.Close()

	s.hup(t)
	if got := next(); !regexp.MustCompile(`^RELOADING=1\n(.*\n)*MONOTONIC_USEC=\d+\n`).MatchString(got) {
		t.Errorf("reload started with %q", got)
	}
	if got := next(); !strings.HasPrefix(got, "READY=1\n") {
		t.Errorf("reload ended with %q, want READY=1", got)
	}
	s.Stop(t)
	if got := next(); !strings.HasPrefix(got, "STOPPING=1\n") {
		t.Errorf("shutdown sent %q, want STOPPING=1", got)
	}
}

// scrape reads /metrics into series → value (the text exposition format:
// comments start with #, samples are "name{labels} value").
func scrape(t *testing.T, get func(string) (int, string)) map[string]float64 {
	t.Helper()
	code, body := get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: status %d\n%s", code, body)
	}
	out := make(map[string]float64)
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		series, value, ok := cutLast(line, " ")
		v, err := strconv.ParseFloat(value, 64)
		if !ok || err != nil {
			t.Fatalf("bad sample line %q", line)
		}
		out[series] = v
	}
	return out
}

// cutLast splits s around the last sep.
func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}
