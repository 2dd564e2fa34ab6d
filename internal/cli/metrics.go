package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"smtpkit/internal/metrics"
)

// health tracks the long-running parts of serve (the SMTP listeners, the
// queue runner) for /healthz: healthy while every one of them runs.
type health struct {
	mu      sync.Mutex
	running map[string]bool
}

// newHealth expects the named components; each is down until run starts it.
func newHealth(components ...string) *health {
	h := &health{running: make(map[string]bool)}
	for _, c := range components {
		h.running[c] = false
	}
	return h
}

// run marks name up while fn runs and returns fn's result.
func (h *health) run(name string, fn func() error) error {
	h.set(name, true)
	defer h.set(name, false)
	return fn()
}

func (h *health) set(name string, up bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.running[name] = up
}

// check returns nil when every component runs, else which ones do not.
func (h *health) check() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var down []string
	for name, up := range h.running {
		if !up {
			down = append(down, name)
		}
	}
	if len(down) == 0 {
		return nil
	}
	slices.Sort(down)
	return fmt.Errorf("not running: %s", strings.Join(down, ", "))
}

// metricsEndpoint is the [metrics] HTTP listener serving /metrics and
// /healthz.
type metricsEndpoint struct {
	srv  *http.Server
	addr net.Addr
	done chan struct{}
}

// startMetrics listens on address (off when "") and serves m and h. The
// listener is bound before it returns, so a bad address fails start-up.
func startMetrics(address string, m *metrics.Metrics, h *health, log *slog.Logger) (*metricsEndpoint, error) {
	if address == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", address)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	e := &metricsEndpoint{
		srv: &http.Server{
			Handler:           metrics.Handler(m, h.check),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       time.Minute,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		addr: ln.Addr(),
		done: make(chan struct{}),
	}
	go func() {
		defer close(e.done)
		if err := e.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener stopped", "err", err)
		}
	}()
	log.Info("metrics listening", "address", e.addr.String())
	return e, nil
}

// Close stops the endpoint; nil-safe for the disabled endpoint.
func (e *metricsEndpoint) Close() {
	if e == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e.srv.Shutdown(ctx)
	<-e.done
}
