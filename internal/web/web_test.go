package web

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"smtpkit/internal/queue"
	"smtpkit/internal/smtp"
	"smtpkit/internal/userdb"
)

// deferAll is the queue's courier in these tests: every attempt fails
// temporarily, so messages stay queued for the page to act on.
type deferAll struct{}

func (deferAll) Deliver(ctx context.Context, a *queue.Attempt) []queue.Result {
	var out []queue.Result
	for _, r := range a.Recipients {
		out = append(out, queue.Result{Rcpt: r, Err: smtp.E(451, "4.3.0", "try later")})
	}
	return out
}

// clock is a settable clock for session and limiter expiry.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

type env struct {
	h     *Handler
	q     *queue.Queue
	users *userdb.File
	clk   *clock
}

// newEnv builds the page over a real queue and account store in a temp
// dir, with an admin root@example.com (password "root-pw") and a plain
// account alice@example.com ("alice-pw").
func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	dir := t.TempDir()
	q, err := queue.Open(queue.Options{Dir: filepath.Join(dir, "queue"), Courier: deferAll{}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	users, err := userdb.Open(filepath.Join(dir, "accounts.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := users.AddAdmin("root@example.com", "root-pw"); err != nil {
		t.Fatal(err)
	}
	if err := users.Add("alice@example.com", "alice-pw"); err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)}
	opts.Queue, opts.Accounts, opts.Now, opts.Hostname = queue.LocalBackend(q), users, clk.now, "mx.example.com"
	return &env{h: New(opts), q: q, users: users, clk: clk}
}

// enqueue puts one message from alice to rcpt in the queue.
func (e *env) enqueue(t *testing.T, rcpt string) string {
	t.Helper()
	from, _ := smtp.ParseAddress("alice@example.com")
	to, err := smtp.ParseAddress(rcpt)
	if err != nil {
		t.Fatal(err)
	}
	w, err := e.q.Begin(queue.Envelope{From: from, To: []smtp.Address{to}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, "Subject: status page test\r\nFrom: alice@example.com\r\n\r\nhello\r\n"); err != nil {
		t.Fatal(err)
	}
	id, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// browser keeps cookies like a browser would for one origin.
type browser struct {
	t       *testing.T
	h       http.Handler
	cookies map[string]*http.Cookie
	tls     bool
	host    string
}

func (e *env) browser(t *testing.T) *browser {
	return &browser{t: t, h: e.h, cookies: map[string]*http.Cookie{}, host: "127.17.7.1:9325"}
}

func (b *browser) do(method, path string, form url.Values) *http.Response {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, "http://"+b.host+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if b.tls {
		req.TLS = &tls.ConnectionState{}
	}
	for _, c := range b.cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	rec := httptest.NewRecorder()
	b.h.ServeHTTP(rec, req)
	resp := rec.Result()
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
	return resp
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// token is the CSRF token of the page at path.
func (b *browser) token(path string) string {
	b.t.Helper()
	resp := b.do("GET", path, nil)
	m := csrfField.FindStringSubmatch(body(b.t, resp))
	if m == nil {
		b.t.Fatalf("GET %s: %d, no csrf field", path, resp.StatusCode)
	}
	return m[1]
}

// login logs in and returns the answer.
func (b *browser) login(address, password string) *http.Response {
	b.t.Helper()
	tok := b.token("/login")
	return b.do("POST", "/login", url.Values{"csrf": {tok}, "address": {address}, "password": {password}})
}

func wantRedirect(t *testing.T, resp *http.Response, to string) {
	t.Helper()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != to {
		t.Errorf("answer %d Location %q, want 303 to %s", resp.StatusCode, resp.Header.Get("Location"), to)
	}
}

// TestNoSessionRedirects: every page and action without a session
// redirects to the login form, and does nothing.
func TestNoSessionRedirects(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.enqueue(t, "bob@example.net")
	b := e.browser(t)
	for _, path := range []string{"/", "/queue", "/queue/" + id} {
		wantRedirect(t, b.do("GET", path, nil), "/login")
	}
	wantRedirect(t, b.do("POST", "/queue/"+id+"/hold", url.Values{"csrf": {"x"}}), "/login")
	b.cookies[sessionCookie] = &http.Cookie{Name: sessionCookie, Value: "made-up"}
	wantRedirect(t, b.do("GET", "/", nil), "/login")
	if d, _ := e.q.Show(id); d.Held {
		t.Error("a POST without a session held the message")
	}
	if resp := b.do("GET", "/login", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("login form: %d", resp.StatusCode)
	}
}

// TestLoginRefusals: a wrong password, an unknown name and an account
// that is not admin get the same answer; the form's token is required.
func TestLoginRefusals(t *testing.T) {
	e := newEnv(t, Options{})
	b := e.browser(t)
	var answers []string
	for _, c := range [][2]string{{"root@example.com", "wrong"}, {"nobody@example.com", "root-pw"}, {"alice@example.com", "alice-pw"}} {
		resp := b.login(c[0], c[1])
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("login %s: %d, want 401", c[0], resp.StatusCode)
		}
		if _, ok := b.cookies[sessionCookie]; ok {
			t.Fatalf("login %s set a session cookie", c[0])
		}
		answers = append(answers, csrfField.ReplaceAllString(body(t, resp), ""))
	}
	if answers[0] != answers[1] || answers[1] != answers[2] {
		t.Errorf("refusals differ:\n%s\n---\n%s\n---\n%s", answers[0], answers[1], answers[2])
	}
	b.token("/login")
	for name, tok := range map[string]string{"missing": "", "wrong": "not-the-token"} {
		resp := b.do("POST", "/login", url.Values{"csrf": {tok}, "address": {"root@example.com"}, "password": {"root-pw"}})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("login with the token %s: %d, want 403", name, resp.StatusCode)
		}
	}
	// A token without its cookie (another site's form) is refused too.
	tok := b.token("/login")
	delete(b.cookies, loginCookie)
	if resp := b.do("POST", "/login", url.Values{"csrf": {tok}, "address": {"root@example.com"}, "password": {"root-pw"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("login without the token's cookie: %d, want 403", resp.StatusCode)
	}
}

// TestCookieFlags: HttpOnly and SameSite=Strict always; Secure over TLS
// or with SecureCookie, not on the plain loopback listener.
func TestCookieFlags(t *testing.T) {
	for _, tt := range []struct {
		name       string
		tls, force bool
		secure     bool
	}{
		{"plain http", false, false, false},
		{"tls", true, false, true},
		{"secure_cookie", false, true, true},
	} {
		e := newEnv(t, Options{SecureCookie: tt.force})
		b := e.browser(t)
		b.tls = tt.tls
		resp := b.login("root@example.com", "root-pw")
		wantRedirect(t, resp, "/")
		name := sessionCookie
		if tt.secure {
			name = "__Host-" + sessionCookie
		}
		c := b.cookies[name]
		if c == nil {
			t.Fatalf("%s: no session cookie %s among %v", tt.name, name, b.cookies)
		}
		if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure != tt.secure || c.Path != "/" {
			t.Errorf("%s: session cookie %+v: want HttpOnly, SameSite=Strict, Secure=%v, Path=/", tt.name, c, tt.secure)
		}
		if len(c.Value) < 43 {
			t.Errorf("%s: session id %q is short", tt.name, c.Value)
		}
		if len(b.cookies) != 1 {
			t.Errorf("%s: cookies %v, want only the session's (the login token's deleted)", tt.name, b.cookies)
		}
		if resp := b.do("GET", "/", nil); resp.StatusCode != http.StatusOK {
			t.Errorf("%s: overview after login: %d", tt.name, resp.StatusCode)
		}
		if got := resp.Header.Get("Content-Security-Policy"); !strings.Contains(got, "default-src 'none'") {
			t.Errorf("%s: CSP %q", tt.name, got)
		}
	}
}

// TestCSRF: an action without the session's token, or with another one,
// is 403 and does nothing; with it the message is held and released.
func TestCSRF(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.enqueue(t, "bob@example.net")
	b := e.browser(t)
	wantRedirect(t, b.login("root@example.com", "root-pw"), "/")
	other := e.browser(t)
	wantRedirect(t, other.login("root@example.com", "root-pw"), "/")
	otherTok := other.token("/")
	for name, form := range map[string]url.Values{"missing": {}, "wrong": {"csrf": {"nope"}}, "another session's": {"csrf": {otherTok}}} {
		resp := b.do("POST", "/queue/"+id+"/hold", form)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("hold with the %s token: %d, want 403", name, resp.StatusCode)
		}
	}
	if d, _ := e.q.Show(id); d.Held {
		t.Fatal("a refused POST held the message")
	}
	tok := b.token("/queue/" + id)
	wantRedirect(t, b.do("POST", "/queue/"+id+"/hold", url.Values{"csrf": {tok}}), "/queue/"+id+"?done="+url.QueryEscape(id+" held"))
	if d, _ := e.q.Show(id); !d.Held {
		t.Fatal("hold with the token did not hold")
	}
	wantRedirect(t, b.do("POST", "/logout", url.Values{"csrf": {tok}}), "/login")
	wantRedirect(t, b.do("GET", "/", nil), "/login")
}

// TestQueuePages: search by recipient, show, hold, retry refused while
// held, release, retry, delete; a missing message is 404.
func TestQueuePages(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.enqueue(t, "bob@example.net")
	e.enqueue(t, "carol@example.org")
	b := e.browser(t)
	wantRedirect(t, b.login("root@example.com", "root-pw"), "/")
	page := body(t, b.do("GET", "/queue?q=BOB@example", nil))
	if !strings.Contains(page, id) || strings.Contains(page, "carol@example.org") || !strings.Contains(page, "1 of 2 messages") {
		t.Errorf("search for bob:\n%s", page)
	}
	page = body(t, b.do("GET", "/queue/"+id, nil))
	if !strings.Contains(page, "Subject: status page test") || !strings.Contains(page, "bob@example.net") {
		t.Errorf("show:\n%s", page)
	}
	tok := b.token("/queue/" + id)
	post := func(action string) *http.Response {
		return b.do("POST", "/queue/"+id+"/"+action, url.Values{"csrf": {tok}})
	}
	post("hold")
	if page := body(t, b.do("GET", "/queue/"+id, nil)); !strings.Contains(page, `id="held"`) || !strings.Contains(page, "when released") {
		t.Errorf("show of a held message:\n%s", page)
	}
	if resp := post("retry"); resp.StatusCode != http.StatusConflict || !strings.Contains(body(t, resp), "held") {
		t.Errorf("retry while held: %d", resp.StatusCode)
	}
	post("release")
	if d, _ := e.q.Show(id); d.Held {
		t.Error("release did not release")
	}
	wantRedirect(t, post("retry"), "/queue/"+id+"?done="+url.QueryEscape(id+" retrying now"))
	wantRedirect(t, post("delete"), "/queue?done="+url.QueryEscape(id+" deleted"))
	if _, err := e.q.Show(id); err == nil {
		t.Error("delete did not delete")
	}
	if resp := b.do("GET", "/queue/"+id, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("show of a deleted message: %d", resp.StatusCode)
	}
	if resp := post("hold"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("hold of a deleted message: %d", resp.StatusCode)
	}
	if resp := post("explode"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown action: %d", resp.StatusCode)
	}
}

// TestLoginLimit: after nameFailures failures a name is refused even
// with the right password until its window ends.
func TestLoginLimit(t *testing.T) {
	e := newEnv(t, Options{})
	b := e.browser(t)
	for range nameFailures {
		if resp := b.login("root@example.com", "wrong"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure: %d", resp.StatusCode)
		}
	}
	if resp := b.login("root@example.com", "root-pw"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("right password while blocked: %d, want 429", resp.StatusCode)
	}
	e.clk.add(nameWindow)
	wantRedirect(t, b.login("root@example.com", "root-pw"), "/")
}

// TestSessionEnds: a session ends after SessionTTL unused, after
// MaxSession whatever its use, and when the account stops being admin.
func TestSessionEnds(t *testing.T) {
	e := newEnv(t, Options{SessionTTL: 10 * time.Minute})
	b := e.browser(t)
	wantRedirect(t, b.login("root@example.com", "root-pw"), "/")
	e.clk.add(9 * time.Minute)
	if resp := b.do("GET", "/", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("after 9m: %d", resp.StatusCode)
	}
	e.clk.add(11 * time.Minute)
	wantRedirect(t, b.do("GET", "/", nil), "/login")

	wantRedirect(t, b.login("root@example.com", "root-pw"), "/")
	for elapsed := time.Duration(0); elapsed < MaxSession; elapsed += 5 * time.Minute {
		e.clk.add(5 * time.Minute)
		if resp := b.do("GET", "/queue", nil); elapsed+5*time.Minute <= MaxSession && resp.StatusCode != http.StatusOK {
			t.Fatalf("in use after %v: %d", elapsed, resp.StatusCode)
		}
	}
	e.clk.add(5 * time.Minute)
	wantRedirect(t, b.do("GET", "/", nil), "/login")

	wantRedirect(t, b.login("root@example.com", "root-pw"), "/")
	if err := e.users.SetAdmin("root@example.com", false); err != nil {
		t.Fatal(err)
	}
	wantRedirect(t, b.do("GET", "/", nil), "/login")
}

// TestHostCheck: a Host that is not the loopback (DNS rebinding) is 421.
func TestHostCheck(t *testing.T) {
	e := newEnv(t, Options{})
	b := e.browser(t)
	for host, want := range map[string]int{"127.17.7.1:9325": 200, "localhost:9325": 200, "[::1]:9325": 200, "evil.example:9325": 421, "127.17.7.1.nip.io": 421} {
		b.host = host
		if resp := b.do("GET", "/login", nil); resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
}

// TestLocalHost is the table of Host headers the listener answers.
func TestLocalHost(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:9325": true, "127.17.7.1": true, "localhost": true, "LocalHost:80": true, "[::1]:9325": true, "::1": true,
		"[::ffff:127.0.0.1]:1": true, "evil.example": false, "127.0.0.1.nip.io": false, "": false, "10.0.0.1:80": false, "0x7f000001": false,
	} {
		if got := localHost(host); got != want {
			t.Errorf("localHost(%q) = %v, want %v", host, got, want)
		}
	}
}
