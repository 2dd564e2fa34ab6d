package cli

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"smtpkit/internal/metrics"
)

// TestHTTPPProf: [http] pprof mounts net/http/pprof on the listener, off by
// default, and only for a loopback Host (DNS rebinding).
func TestHTTPPProf(t *testing.T) {
	m := metrics.New(metrics.Options{NoRuntime: true})
	h := newHealth()
	get := func(e *httpEndpoint, path, host string) (int, string) {
		t.Helper()
		req, err := http.NewRequest("GET", "http://"+e.addr.String()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	off, err := startHTTP(httpOptions{Address: "127.17.7.1:0"}, m, h, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	if code, _ := get(off, "/debug/pprof/", ""); code != http.StatusNotFound {
		t.Errorf("pprof off: /debug/pprof/ answered %d, want 404", code)
	}
	on, err := startHTTP(httpOptions{Address: "127.17.7.1:0", PProf: true}, m, h, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer on.Close()
	if code, body := get(on, "/debug/pprof/", ""); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("pprof on: /debug/pprof/ answered %d %.200q", code, body)
	}
	if code, body := get(on, "/debug/pprof/goroutine?debug=1", ""); code != http.StatusOK || !strings.Contains(body, "goroutine profile") {
		t.Errorf("pprof on: goroutine profile answered %d %.200q", code, body)
	}
	if code, _ := get(on, "/debug/pprof/", "rebound.example:80"); code != http.StatusMisdirectedRequest {
		t.Errorf("pprof for Host rebound.example answered %d, want 421", code)
	}
	if code, _ := get(on, "/metrics", ""); code != http.StatusOK {
		t.Errorf("/metrics beside pprof answered %d", code)
	}
}
