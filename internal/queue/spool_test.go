package queue

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestSpoolRoundTrip(t *testing.T) {
	rec := &recorder{}
	e := open(t, rec, nil)
	id := enqueue(t, e.q, "alice@example.org", "bob@example.net", "BOB@Example.NET", "bob@example.net", "carol@example.com")
	if !ValidID(id) {
		t.Fatalf("id %q", id)
	}
	checkpoint(e.q) // a journaled message's files are written by then
	for _, p := range []string{filepath.Join(e.dir, "msg", id), filepath.Join(e.dir, "env", id+".json")} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v", p, fi.Mode())
		}
	}
	if left, _ := os.ReadDir(filepath.Join(e.dir, "tmp")); len(left) != 0 {
		t.Errorf("tmp/ not empty after commit: %v", left)
	}
	e.q.Close()

	// Reopen: the message and its state come back from disk.
	q2, err := Open(Options{Dir: e.dir, Courier: rec, Now: e.clock.Now, Bounce: e.bounces.take})
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close()
	list := q2.List()
	if len(list) != 1 || list[0].ID != id || list[0].From != "alice@example.org" || list[0].Size != int64(len(testMessage)) {
		t.Fatalf("after reopen: %+v", list)
	}
	var addrs []string
	for _, r := range list[0].Recipients {
		addrs = append(addrs, r.Addr+"="+string(r.State))
	}
	if got := strings.Join(addrs, " "); got != "bob@example.net=queued BOB@Example.NET=queued carol@example.com=queued" {
		t.Errorf("recipients %s", got)
	}
	d, err := q2.Show(id)
	if err != nil {
		t.Fatal(err)
	}
	if d.Meta.AuthUser != "alice" || d.Meta.ReceivedFrom != "192.0.2.9" || !strings.HasPrefix(d.Headers, "From: alice") || strings.Contains(d.Headers, "Hello") {
		t.Errorf("Show = %+v", d)
	}
	if n := q2.RunOnce(context.Background()); n != 2 {
		t.Fatalf("%d attempts, want 2 (one per domain)", n)
	}
	for _, a := range rec.attempts {
		if a.body != testMessage || a.d.Size != int64(len(testMessage)) || a.d.From != "alice@example.org" || a.d.ID != id {
			t.Errorf("attempt %+v", a)
		}
		switch a.d.Domain {
		case "example.net":
			if fmt.Sprint(a.d.Recipients) != "[bob@example.net BOB@Example.NET]" {
				t.Errorf("example.net recipients %v", a.d.Recipients)
			}
		case "example.com":
			if fmt.Sprint(a.d.Recipients) != "[carol@example.com]" {
				t.Errorf("example.com recipients %v", a.d.Recipients)
			}
		default:
			t.Errorf("domain %q", a.d.Domain)
		}
	}
	if len(q2.List()) != 0 {
		t.Error("delivered message still queued")
	}
	for _, sub := range []string{"msg", "env", "tmp"} {
		if left, _ := os.ReadDir(filepath.Join(e.dir, sub)); len(left) != 0 {
			t.Errorf("%s/ not empty after delivery: %v", sub, left)
		}
	}
}

func TestBeginErrorsAndAbort(t *testing.T) {
	e := open(t, &recorder{}, nil)
	if _, err := e.q.Begin(envelopeOf("a@b", nil, Meta{})); err == nil {
		t.Error("no recipients accepted")
	}
	if _, err := e.q.Begin(envelopeOf("a@b", []string{"nodomain"}, Meta{})); err == nil {
		t.Error("recipient without domain accepted")
	}
	w, err := e.q.Begin(envelopeOf("", []string{"x@example.net"}, Meta{}))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "data")
	w.Abort()
	w.Abort()
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("write after abort")
	}
	if _, err := w.Commit(); err == nil {
		t.Error("commit after abort")
	}
	if left, _ := os.ReadDir(filepath.Join(e.dir, "tmp")); len(left) != 0 {
		t.Errorf("tmp/ not empty after abort: %v", left)
	}
	if len(e.q.List()) != 0 {
		t.Error("aborted message listed")
	}
	w, err = e.q.Begin(envelopeOf("a@b", []string{"x@example.net"}, Meta{}))
	if err != nil {
		t.Fatal(err)
	}
	e.q.Close()
	if _, err := w.Commit(); err == nil {
		t.Error("commit after Close succeeded")
	}
	if _, err := e.q.Begin(envelopeOf("a@b", []string{"x@example.net"}, Meta{})); err == nil {
		t.Error("Begin after Close succeeded")
	}
	for _, sub := range []string{"msg", "env", "tmp"} {
		if left, _ := os.ReadDir(filepath.Join(e.dir, sub)); len(left) != 0 {
			t.Errorf("%s/ not empty after a failed commit: %v", sub, left)
		}
	}
}

func TestConcurrentCommit(t *testing.T) {
	e := open(t, &recorder{}, nil)
	const workers, each = 8, 10
	ids := make(chan string, workers*each)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				wr, err := e.q.Begin(envelopeOf("a@example.org", []string{fmt.Sprintf("r%d-%d@example.net", w, i)}, Meta{}))
				if err != nil {
					t.Error(err)
					return
				}
				fmt.Fprintf(wr, "Subject: %d %d\r\n\r\nbody\r\n", w, i)
				if i%3 == 2 {
					wr.Abort()
					continue
				}
				id, err := wr.Commit()
				if err != nil {
					t.Error(err)
					return
				}
				ids <- id
			}
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if seen[id] {
			t.Fatalf("duplicate id %s", id)
		}
		seen[id] = true
	}
	if got := len(e.q.List()); got != len(seen) || got != workers*(each-each/3) {
		t.Fatalf("%d listed, %d committed", got, len(seen))
	}
	checkpoint(e.q) // a journaled message's files are written by then
	envs, _ := os.ReadDir(filepath.Join(e.dir, "env"))
	msgs, _ := os.ReadDir(filepath.Join(e.dir, "msg"))
	if len(envs) != len(seen) || len(msgs) != len(seen) {
		t.Fatalf("%d env, %d msg files for %d messages", len(envs), len(msgs), len(seen))
	}
}
