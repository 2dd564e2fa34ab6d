// Package web is the status page on the loopback HTTP listener: the
// listeners and their certificates, the queue (search, show, hold,
// release, retry, delete), the last deliveries with their TLS plan and
// result, the TLS-RPT outcomes per destination and the accounts, behind
// a login with an admin account (userdb's Account.Admin).
//
// Plain html/template, no script: every action is a form POST carrying
// the session's CSRF token. Sessions live in memory (a restart logs
// everyone out); the cookie holds only a random id.
package web

import (
	"context"
	"embed"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"smtpkit/internal/certs"
	"smtpkit/internal/metrics"
	"smtpkit/internal/queue"
	"smtpkit/internal/tlsrpt"
	"smtpkit/internal/userdb"
)

// Queue is what the page needs of the outbound queue (queue.Backend,
// the files or PostgreSQL).
type Queue interface {
	List(ctx context.Context) ([]queue.Summary, error)
	Show(ctx context.Context, id string) (queue.Detail, error)
	Hold(ctx context.Context, id string) error
	Release(ctx context.Context, id string) error
	Retry(ctx context.Context, id string) error
	Delete(ctx context.Context, id string) error
}

// Accounts is what the page needs of the account store (*userdb.File).
type Accounts interface {
	Authenticate(ctx context.Context, username, password string) (userdb.Account, error)
	Lookup(username string) (userdb.Account, bool)
	List() []userdb.Account
}

// Deliveries gives the last delivery events (*metrics.Metrics).
type Deliveries interface {
	RecentDeliveries() []metrics.Delivery
}

// TLSReports gives the TLS-RPT counters not yet reported (*tlsrpt.Store).
type TLSReports interface {
	Snapshot() []tlsrpt.Pending
}

// Listener is one SMTP listener as the page shows it.
type Listener struct {
	Address string // the bound address
	Role    string // mx, submission, submissions, sink
	TLS     string // opportunistic, required, implicit, none
	Auth    string // "no", "after TLS", …
}

// Options configure New. Queue and Accounts are required; the others may
// be nil (their section says so).
type Options struct {
	Queue        Queue
	Accounts     Accounts
	Deliveries   Deliveries
	TLSReports   TLSReports
	Listeners    func() []Listener
	Certificates func() []certs.Info
	Hostname     string
	// SessionTTL is how long a login lasts unused (default 30m); a
	// session ends MaxSession after the login at the latest.
	SessionTTL time.Duration
	// SecureCookie marks cookies Secure on plain HTTP too (a TLS reverse
	// proxy in front); requests over TLS always get Secure cookies.
	SecureCookie bool
	Now          func() time.Time
	Logger       *slog.Logger
}

// MaxSession bounds a session's life whatever its use.
const MaxSession = 12 * time.Hour

// Handler serves the status page. It is safe for concurrent use.
type Handler struct {
	opts     Options
	log      *slog.Logger
	mux      *http.ServeMux
	tmpl     map[string]*template.Template
	sessions *sessions
	limiter  *limiter
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/style.css
var styleCSS []byte

// New returns the status page handler.
func New(opts Options) *Handler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 30 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Listeners == nil {
		opts.Listeners = func() []Listener { return nil }
	}
	if opts.Certificates == nil {
		opts.Certificates = func() []certs.Info { return nil }
	}
	h := &Handler{
		opts:     opts,
		log:      opts.Logger,
		mux:      http.NewServeMux(),
		tmpl:     parseTemplates(),
		sessions: newSessions(opts.Now, opts.SessionTTL),
		limiter:  newLimiter(opts.Now),
	}
	h.mux.HandleFunc("GET /static/style.css", serveStyle)
	h.mux.HandleFunc("GET /login", h.loginForm)
	h.mux.HandleFunc("POST /login", h.login)
	h.mux.HandleFunc("POST /logout", h.admin(h.logout))
	h.mux.HandleFunc("GET /{$}", h.admin(h.overview))
	h.mux.HandleFunc("GET /queue", h.admin(h.queueList))
	h.mux.HandleFunc("GET /queue/{id}", h.admin(h.queueShow))
	h.mux.HandleFunc("POST /queue/{id}/{action}", h.admin(h.queueAction))
	return h
}

// ServeHTTP implements http.Handler: only for a loopback Host
// (LocalOnly), with headers that keep the page out of frames and caches
// and forbid scripts.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	if !localHost(r.Host) {
		http.Error(w, "this listener answers only to a loopback address or localhost as Host", http.StatusMisdirectedRequest)
		return
	}
	h.mux.ServeHTTP(w, r)
}

func serveStyle(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Write(styleCSS)
}

// secure reports whether r's cookies get the Secure flag.
func (h *Handler) secure(r *http.Request) bool { return r.TLS != nil || h.opts.SecureCookie }
