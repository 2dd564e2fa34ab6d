package web

// pages.go: the overview, the queue list and one message, and the queue
// actions.

import (
	"bytes"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"smtpkit/internal/certs"
	"smtpkit/internal/metrics"
	"smtpkit/internal/queue"
	"smtpkit/internal/tlsrpt"
	"smtpkit/internal/userdb"
)

// Bounds on what a page lists.
const (
	shownDeliveries = 50
	shownMessages   = 500
	certWarn        = 14 * 24 * time.Hour // a certificate closer to expiry is marked
)

// page is what every template gets.
type page struct {
	Title   string
	Account string // who is logged in
	CSRF    string // the session's token for the forms
	Flash   string // what the last action did
	Error   string
	Now     time.Time
	Data    any
}

type overviewData struct {
	Hostname     string
	Listeners    []Listener
	Certificates []certView
	Queue        queueCounts
	QueueError   string // the queue could not be listed
	Deliveries   []metrics.Delivery
	HaveDeliv    bool
	TLSReports   []tlsrpt.Pending
	HaveTLSRPT   bool
	Accounts     []userdb.Account
}

type certView struct {
	certs.Info
	Left time.Duration
	Warn bool
}

type queueCounts struct {
	Messages, Held, Deferred int
	Oldest                   time.Duration
}

func (h *Handler) overview(w http.ResponseWriter, r *http.Request, s *session) {
	now := h.opts.Now()
	d := overviewData{Hostname: h.opts.Hostname, Listeners: h.opts.Listeners(), Accounts: h.opts.Accounts.List()}
	for _, c := range h.opts.Certificates() {
		left := c.NotAfter.Sub(now)
		d.Certificates = append(d.Certificates, certView{Info: c, Left: left, Warn: left < certWarn})
	}
	msgs, err := h.opts.Queue.List(r.Context())
	if err != nil {
		d.QueueError = err.Error()
	}
	for _, m := range msgs {
		d.Queue.Messages++
		if m.Held {
			d.Queue.Held++
		}
		if age := now.Sub(m.Arrival); age > d.Queue.Oldest {
			d.Queue.Oldest = age
		}
		for _, rc := range m.Recipients {
			if rc.State == queue.Deferred {
				d.Queue.Deferred++
			}
		}
	}
	if h.opts.Deliveries != nil {
		d.HaveDeliv = true
		d.Deliveries = h.opts.Deliveries.RecentDeliveries()
		if len(d.Deliveries) > shownDeliveries {
			d.Deliveries = d.Deliveries[:shownDeliveries]
		}
	}
	if h.opts.TLSReports != nil {
		d.HaveTLSRPT = true
		d.TLSReports = h.opts.TLSReports.Snapshot()
	}
	h.render(w, http.StatusOK, "overview", h.page(r, s, "Status", d))
}

type queueData struct {
	Query    string
	Messages []queue.Summary
	Total    int // before the search
	More     bool
}

// matches reports whether message m matches the search q (lower case): a
// substring of its id, sender or a recipient.
func matches(m queue.Summary, q string) bool {
	if q == "" {
		return true
	}
	if strings.Contains(strings.ToLower(m.ID), q) || strings.Contains(strings.ToLower(m.From), q) {
		return true
	}
	return slices.ContainsFunc(m.Recipients, func(r queue.RcptStatus) bool {
		return strings.Contains(strings.ToLower(r.Addr), q)
	})
}

func (h *Handler) queueList(w http.ResponseWriter, r *http.Request, s *session) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	all, err := h.opts.Queue.List(r.Context())
	if err != nil {
		p := h.page(r, s, "Queue", queueData{Query: q})
		p.Error = "listing the queue: " + err.Error()
		h.render(w, http.StatusInternalServerError, "queue", p)
		return
	}
	d := queueData{Query: q, Total: len(all)}
	lq := strings.ToLower(q)
	for _, m := range all {
		if matches(m, lq) {
			if len(d.Messages) == shownMessages {
				d.More = true
				break
			}
			d.Messages = append(d.Messages, m)
		}
	}
	h.render(w, http.StatusOK, "queue", h.page(r, s, "Queue", d))
}

func (h *Handler) queueShow(w http.ResponseWriter, r *http.Request, s *session) {
	det, err := h.opts.Queue.Show(r.Context(), r.PathValue("id"))
	if errors.Is(err, queue.ErrNotFound) {
		p := h.page(r, s, "Not in the queue", nil)
		p.Error = "No message " + r.PathValue("id") + " in the queue (delivered, bounced or deleted)."
		h.render(w, http.StatusNotFound, "message", p)
		return
	}
	if err != nil {
		p := h.page(r, s, "Queue", nil)
		p.Error = err.Error()
		h.render(w, http.StatusInternalServerError, "message", p)
		return
	}
	h.render(w, http.StatusOK, "message", h.page(r, s, "Message "+det.ID, det))
}

// actions are the queue operations a form may ask for, with what the
// page says after.
var actions = map[string]string{
	"hold": "held", "release": "released", "retry": "retrying now", "delete": "deleted",
}

func (h *Handler) queueAction(w http.ResponseWriter, r *http.Request, s *session) {
	id, action := r.PathValue("id"), r.PathValue("action")
	done, ok := actions[action]
	if !ok {
		http.Error(w, "unknown action", http.StatusNotFound)
		return
	}
	var err error
	switch action {
	case "hold":
		err = h.opts.Queue.Hold(r.Context(), id)
	case "release":
		err = h.opts.Queue.Release(r.Context(), id)
	case "retry":
		err = h.opts.Queue.Retry(r.Context(), id)
	case "delete":
		err = h.opts.Queue.Delete(r.Context(), id)
	}
	if err != nil {
		code := http.StatusConflict
		if errors.Is(err, queue.ErrNotFound) {
			code = http.StatusNotFound
		}
		h.log.Warn("status page: queue action failed", "account", s.account, "action", action, "msgid", id, "err", err)
		p := h.page(r, s, "Message "+id, nil)
		p.Error = action + " " + id + ": " + err.Error()
		if det, serr := h.opts.Queue.Show(r.Context(), id); serr == nil {
			p.Data = det
		}
		h.render(w, code, "message", p)
		return
	}
	h.log.Info("status page: queue action", "account", s.account, "action", action, "msgid", id)
	target := "/queue/" + url.PathEscape(id)
	if action == "delete" {
		target = "/queue"
	}
	http.Redirect(w, r, target+"?done="+url.QueryEscape(id+" "+done), http.StatusSeeOther)
}

// page fills the common fields; the flash comes from ?done= of the
// redirect after an action.
func (h *Handler) page(r *http.Request, s *session, title string, data any) page {
	return page{Title: title, Account: s.account, CSRF: s.csrf, Flash: r.URL.Query().Get("done"), Now: h.opts.Now(), Data: data}
}

func (h *Handler) render(w http.ResponseWriter, code int, name string, data any) {
	var buf bytes.Buffer
	if err := h.tmpl[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		h.log.Error("status page: template", "page", name, "err", err)
		http.Error(w, "template error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"dur": func(d time.Duration) string {
		if d < 0 {
			return "-" + roundDur(-d)
		}
		return roundDur(d)
	},
	"actionArgs": func(id string, held bool, csrf string) actionArgs { return actionArgs{id, held, csrf} },
	"sender": func(s string) string {
		if s == "" {
			return "<>"
		}
		return s
	},
}

// actionArgs are the data of the actions template: one message's buttons.
type actionArgs struct {
	ID   string
	Held bool
	CSRF string
}

func roundDur(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	case d >= time.Second:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Millisecond).String()
}

// parseTemplates parses each page with the layout.
func parseTemplates() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, name := range []string{"login", "overview", "queue", "message"} {
		out[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/actions.html", "templates/"+name+".html"))
	}
	return out
}
