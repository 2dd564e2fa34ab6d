package cli

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"smtpkit/internal/metrics"
)

func TestHealth(t *testing.T) {
	h := newHealth("server", "queue")
	if err := h.check(); err == nil || err.Error() != "not running: queue, server" {
		t.Errorf("before start: %v", err)
	}
	stopQueue := make(chan struct{})
	queueDone := make(chan error)
	started := make(chan struct{})
	go func() {
		queueDone <- h.run("queue", func() error { close(started); <-stopQueue; return errors.New("queue failed") })
	}()
	<-started
	if err := h.check(); err == nil || err.Error() != "not running: server" {
		t.Errorf("queue only: %v", err)
	}
	h.set("server", true)
	if err := h.check(); err != nil {
		t.Errorf("all up: %v", err)
	}
	close(stopQueue)
	if err := <-queueDone; err == nil || err.Error() != "queue failed" {
		t.Errorf("run returned %v", err)
	}
	if err := h.check(); err == nil || err.Error() != "not running: queue" {
		t.Errorf("after the queue stopped: %v", err)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	if e, err := startHTTP(httpOptions{}, nil, nil, slog.New(slog.DiscardHandler)); e != nil || err != nil {
		t.Fatalf("disabled endpoint: %v %v", e, err)
	}
	m := metrics.New(metrics.Options{})
	m.ConnectionAccepted("mx")
	h := newHealth("server")
	e, err := startHTTP(httpOptions{Address: "127.0.0.1:0"}, m, h, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + e.addr.String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "server") {
		t.Errorf("healthz while down: %d %q", code, body)
	}
	h.set("server", true)
	if code, body := get("/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("healthz while up: %d %q", code, body)
	}
	if code, body := get("/metrics"); code != http.StatusOK || !strings.Contains(body, `smtpkit_connections_total{listener="mx"} 1`) {
		t.Errorf("metrics: %d\n%s", code, body)
	}
	if _, err := startHTTP(httpOptions{Address: e.addr.String()}, m, h, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("second endpoint on a busy address started")
	}
}
