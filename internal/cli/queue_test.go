package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smtpkit/internal/control"
	"smtpkit/internal/queue"
	"smtpkit/internal/smtp"
)

// scriptedCourier fails every delivery temporarily.
type scriptedCourier struct{}

func (scriptedCourier) Deliver(ctx context.Context, d *queue.Attempt) []queue.Result {
	out := make([]queue.Result, len(d.Recipients))
	for i, r := range d.Recipients {
		greylisted := smtp.E(451, "4.7.1", "greylisted")
		out[i] = queue.Result{Rcpt: r, Err: greylisted, Reply: greylisted.Reply,
			Remote: queue.Remote{Host: "mx.example.net", Addr: netip.MustParseAddr("192.0.2.1")}}
	}
	return out
}

// queueTestServer opens a queue in the config's data dir, runs the
// control socket for it, and returns the config file and the queue.
func queueTestServer(t *testing.T) (string, *queue.Queue) {
	t.Helper()
	dir, err := os.MkdirTemp("", "q") // short path: unix socket names are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	dataDir := filepath.Join(dir, "data")
	cfgFile := filepath.Join(dir, "smtpkit.toml")
	cfg := "hostname = \"mx.example.com\"\ndata_dir = \"" + dataDir + "\"\n\n[[domain]]\nname = \"example.com\"\n\n" +
		"[[listener]]\naddress = \"127.0.0.1:0\"\nrole = \"mx\"\ntls = \"none\"\n"
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	q, err := queue.Open(queue.Options{Dir: filepath.Join(dataDir, "queue"), Courier: scriptedCourier{}, Logger: log,
		Bounce: func(context.Context, queue.Bounce) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- serveControl(ctx, dataDir, q, log) }()
	t.Cleanup(func() {
		cancel()
		<-done
		q.Close()
	})
	for i := 0; ; i++ { // until it listens; bounded, no sleeping
		if c, err := net.Dial("unix", controlSocket(dataDir)); err == nil {
			c.Close()
			break
		}
		if i > 100000 {
			t.Fatal("control socket did not come up")
		}
	}
	return cfgFile, q
}

func runQueueCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(append([]string{"queue"}, args...), Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

func TestQueueCommand(t *testing.T) {
	cfg, q := queueTestServer(t)
	if code, out, _ := runQueueCmd("list", "-config", cfg); code != 0 || out != "queue is empty\n" {
		t.Fatalf("empty list: %d %q", code, out)
	}
	w, err := q.Begin(queue.Envelope{
		From: smtp.Address{Local: "alice", Domain: "example.com"},
		To:   []smtp.Address{{Local: "bob", Domain: "example.net"}, {Local: "carol", Domain: "example.org"}},
		Meta: queue.Meta{AuthUser: "alice@example.com", ReceivedFrom: "192.0.2.7", Relay: "auth"},
	})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: hi\r\nFrom: alice@example.com\r\n\r\nbody\r\n")
	id, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	q.RunOnce(context.Background()) // both deferred, retried in 5m

	code, out, errs := runQueueCmd("list", "-config", cfg)
	if code != 0 {
		t.Fatalf("list: %d %s", code, errs)
	}
	for _, want := range []string{"ID", id, "alice@example.com", "bob@example.net  deferred, next in 4m, 1 attempt(s), last: mx.example.net[192.0.2.1] said: 451 4.7.1 greylisted",
		"carol@example.org  deferred", "1 message(s), 2 recipient(s) not delivered"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runQueueCmd("list", "--json", "-config", cfg)
	var list []queue.Summary
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0].ID != id || len(list[0].Recipients) != 2 {
		t.Fatalf("list --json: %d %s", code, out)
	}
	// show without an id lists the queue, saying so (issue #19); the
	// config named by SMTPKIT_CONFIG, with no -config.
	t.Setenv(ConfigEnv, cfg)
	code, out, errs = runQueueCmd("show")
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "1 message(s)") || !strings.Contains(errs, "no message ID given") {
		t.Errorf("show without id: %d\n%s\n%s", code, out, errs)
	}
	code, out, _ = runQueueCmd("show", id, "-config", cfg)
	for _, want := range []string{"ID:        " + id, "From:      alice@example.com", `Submitted: by "alice@example.com" from 192.0.2.7`, "Relay:     auth", "    Subject: hi"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	if code, out, _ := runQueueCmd("hold", "-config", cfg, id); code != 0 || out != id+": held\n" {
		t.Errorf("hold: %d %q", code, out)
	}
	if code, out, _ := runQueueCmd("list", "-config", cfg); code != 0 || !strings.Contains(out, "(held)") {
		t.Errorf("list after hold: %s", out)
	}
	if code, _, errs := runQueueCmd("retry", "-config", cfg, id); code != 1 || !strings.Contains(errs, "held") {
		t.Errorf("retry of held: %d %s", code, errs)
	}
	if code, _, _ := runQueueCmd("release", "-config", cfg, id); code != 0 {
		t.Error("release failed")
	}
	if code, out, _ := runQueueCmd("flush", "-config", cfg); code != 0 || !strings.HasPrefix(out, "flushed") {
		t.Errorf("flush: %d %q", code, out)
	}
	if code, _, _ := runQueueCmd("delete", "-config", cfg, id); code != 0 || len(q.List()) != 0 {
		t.Error("delete failed")
	}
	if code, _, errs := runQueueCmd("delete", "-config", cfg, id); code != 1 || !strings.Contains(errs, "no such message") {
		t.Errorf("second delete: %d %s", code, errs)
	}
	if code, _, errs := runQueueCmd("show", "-config", cfg, "../x"); code != 1 || !strings.Contains(errs, "invalid message id") {
		t.Errorf("bad id: %d %s", code, errs)
	}
}

func TestQueueUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"bogus"}, {"show", "a", "b"}, {"list", "extra"}, {"hold", "a", "b"}, {"list", "-nope"}} {
		if code, _, _ := runQueueCmd(args...); code != 2 {
			t.Errorf("queue %v: exit %d, want 2", args, code)
		}
	}
	if code, out, _ := runQueueCmd("help"); code != 0 || !strings.Contains(out, "smtpkit queue list") {
		t.Errorf("help: %d", code)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.toml")
	os.WriteFile(cfg, []byte("data_dir = \""+dir+"\"\n[[domain]]\nname = \"example.com\"\n[[listener]]\naddress = \"127.0.0.1:0\"\nrole = \"mx\"\ntls = \"none\"\n"), 0o600)
	if code, _, errs := runQueueCmd("list", "-config", cfg); code != 1 || !strings.Contains(errs, "server running") {
		t.Errorf("no server: %d %s", code, errs)
	}
}

func TestPrintQueueList(t *testing.T) {
	now := time.Date(2025, 3, 2, 12, 0, 0, 0, time.UTC)
	list := []queue.Summary{{
		ID: "019551260100406a692b8a69", From: "", Arrival: now.Add(-26 * time.Hour), Size: 2048, Held: true,
		Recipients: []queue.RcptStatus{
			{Addr: "a@example.net", State: queue.Delivered, Attempts: 1},
			{Addr: "b@example.net", State: queue.Queued, NextAttempt: now},
			{Addr: "c@example.net", State: queue.Deferred, Attempts: 2, InFlight: true, LastReply: "421 busy"},
		},
	}}
	var b bytes.Buffer
	printQueueList(&b, list, now)
	want := "ID                           AGE    SIZE  FROM\n" +
		"019551260100406a692b8a69    1d2h    2.0K  <>  (held)\n" +
		"    b@example.net  queued, due now\n" +
		"    c@example.net  deferred, delivering now, 2 attempt(s), last: 421 busy\n" +
		"1 message(s), 2 recipient(s) not delivered\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// serveControl answers the control socket of dataDir with q until ctx is
// done, as serve does (without its in-use diagnosis).
func serveControl(ctx context.Context, dataDir string, q *queue.Queue, log *slog.Logger) error {
	l, err := control.Listen(controlSocket(dataDir))
	if err != nil {
		return err
	}
	return l.Serve(ctx, queueHandler{q: queue.LocalBackend(q), log: log})
}
