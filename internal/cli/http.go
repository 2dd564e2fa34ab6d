package cli

// http.go: the loopback HTTP listener of [http] address (the old [metrics]
// address): /metrics and /healthz, the status page (internal/web) and,
// with [http] pprof, net/http/pprof under /debug/pprof/.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"smtpkit/internal/metrics"
	"smtpkit/internal/web"
)

// httpOptions are what the listener serves.
type httpOptions struct {
	Address string       // host:port; "" = off
	PProf   bool         // mount /debug/pprof/
	Status  http.Handler // the status page at /, nil = none
}

// httpEndpoint is the running HTTP listener.
type httpEndpoint struct {
	srv  *http.Server
	addr net.Addr
	done chan struct{}
}

// pprofWriteTimeout replaces the listener's write timeout when pprof is
// on: /debug/pprof/profile runs 30 s by default and refuses a duration
// that reaches the server's write timeout.
const pprofWriteTimeout = 2 * time.Minute

// startHTTP listens on opts.Address (off when "") and serves m, h and
// the rest of opts. The listener is bound before it returns, so a bad
// address fails start-up.
func startHTTP(opts httpOptions, m *metrics.Metrics, h *health, log *slog.Logger) (*httpEndpoint, error) {
	if opts.Address == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", opts.Address)
	if err != nil {
		return nil, fmt.Errorf("http listener: %w", err)
	}
	mux := http.NewServeMux()
	mh := metrics.Handler(m, h.check)
	mux.Handle("/metrics", mh)
	mux.Handle("/healthz", mh)
	writeTimeout := 30 * time.Second
	if opts.PProf {
		mux.Handle("/debug/pprof/", web.LocalOnly(pprofHandler()))
		writeTimeout = pprofWriteTimeout
	}
	if opts.Status != nil {
		mux.Handle("/", opts.Status)
	}
	e := &httpEndpoint{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      writeTimeout,
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
			log.Error("http listener stopped", "err", err)
		}
	}()
	log.Info("http listening", "address", e.addr.String(), "pprof", opts.PProf, "status_page", opts.Status != nil)
	return e, nil
}

// pprofHandler is net/http/pprof on its own mux (the package's init
// registers on http.DefaultServeMux, which smtpkit never serves).
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // and the named profiles: heap, goroutine, …
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// Close stops the endpoint; nil-safe for the disabled endpoint.
func (e *httpEndpoint) Close() {
	if e == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e.srv.Shutdown(ctx)
	<-e.done
}
