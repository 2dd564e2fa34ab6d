package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeHandler answers list with two items, show with its id, and fails
// everything else.
type fakeHandler struct{}

func (fakeHandler) Handle(ctx context.Context, req Request) (any, error) {
	switch req.Op {
	case OpList:
		return []string{"a", "b"}, nil
	case OpShow:
		return map[string]string{"id": req.ID}, nil
	case OpFlush:
		return nil, nil
	}
	return nil, errors.New("unknown op " + req.Op)
}

// serve starts Serve in a temporary directory and returns the socket path.
func serve(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ctl") // short: socket paths are limited to ~100 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "control.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- Serve(ctx, path, fakeHandler{}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	// Wait until it listens: Call until it connects (bounded; no sleeping).
	for i := 0; ; i++ {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return path
		}
		if i > 100000 {
			t.Fatal("server did not start")
		}
	}
}

func TestRoundTrip(t *testing.T) {
	path := serve(t)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v (%v)", fi.Mode(), err)
	}
	tests := []struct {
		req  Request
		ok   bool
		data string
		err  string
	}{
		{Request{Op: OpList}, true, `["a","b"]`, ""},
		{Request{Op: OpShow, ID: "x1"}, true, `{"id":"x1"}`, ""},
		{Request{Op: OpFlush}, true, ``, ""},
		{Request{Op: "explode"}, false, ``, "unknown op explode"},
	}
	for _, tt := range tests {
		resp, err := Call(path, tt.req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.OK != tt.ok || string(resp.Data) != tt.data || resp.Error != tt.err {
			t.Errorf("%+v → %+v", tt.req, resp)
		}
	}
}

// TestProtocol speaks the line protocol by hand: several requests on one
// connection, malformed ones, a line that is too long.
func TestProtocol(t *testing.T) {
	path := serve(t)
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	send := func(line string) Response {
		t.Helper()
		if _, err := c.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
		resp, err := br.ReadBytes('\n')
		if err != nil {
			t.Fatal(err)
		}
		var r Response
		if err := json.Unmarshal(resp, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := send(`{"op":"list"}`); !r.OK {
		t.Errorf("list: %+v", r)
	}
	if r := send(`{"op":"show","id":"z"}`); !r.OK || string(r.Data) != `{"id":"z"}` {
		t.Errorf("show: %+v", r)
	}
	if r := send(`not json`); r.OK || !strings.HasPrefix(r.Error, "bad request") {
		t.Errorf("bad json: %+v", r)
	}
	if r := send(`{"op":"list","extra":1}`); r.OK {
		t.Errorf("unknown field accepted: %+v", r)
	}
	if r := send(strings.Repeat("x", MaxLine+10)); r.OK || !strings.Contains(r.Error, "too long") {
		t.Errorf("long line: %+v", r)
	}
}

func TestStaleAndLiveSocket(t *testing.T) {
	path := serve(t)
	// A second server on a live socket refuses.
	if err := Serve(context.Background(), path, fakeHandler{}); err == nil || !strings.Contains(err.Error(), "another server") {
		t.Errorf("second Serve: %v", err)
	}
	// A stale socket (nobody listening) is replaced.
	dir, _ := os.MkdirTemp("", "ctl")
	defer os.RemoveAll(dir)
	stale := filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- Serve(ctx, stale, fakeHandler{}) }()
	for i := 0; ; i++ {
		if resp, err := Call(stale, Request{Op: OpList}); err == nil && resp.OK {
			break
		}
		if i > 100000 {
			t.Fatal("server on a stale socket did not start")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A regular file in the way is not removed.
	os.WriteFile(stale, []byte("x"), 0o600)
	if err := Serve(context.Background(), stale, fakeHandler{}); err == nil {
		t.Error("Serve replaced a regular file")
	}
	if _, err := Call(filepath.Join(dir, "none.sock"), Request{Op: OpList}); err == nil {
		t.Error("Call without a server succeeded")
	}
}

// TestListenErrors: a live socket is ErrInUse; a path longer than a unix
// socket address holds is ErrPathTooLong, said before any bind, and
// leaves nothing behind; Listen binds so that a client connects before
// Serve runs (what "ready" relies on), up to the longest path there is.
func TestListenErrors(t *testing.T) {
	path := serve(t)
	if _, err := Listen(path); !errors.Is(err, ErrInUse) {
		t.Errorf("Listen on a live socket: %v, want ErrInUse", err)
	}
	dir := t.TempDir()
	for _, n := range []int{MaxPath + 1, 200} {
		long := filepath.Join(dir, strings.Repeat("x", n-len(dir)-1))
		if len(long) != n {
			t.Fatalf("path of %d bytes, want %d", len(long), n)
		}
		_, err := Listen(long)
		if !errors.Is(err, ErrPathTooLong) || !strings.Contains(err.Error(), "at most 107") {
			t.Errorf("Listen(%d bytes): %v, want ErrPathTooLong", n, err)
		}
		if _, serr := os.Lstat(long); serr == nil {
			t.Errorf("Listen(%d bytes) left a file", n)
		}
	}
	longest := filepath.Join(dir, strings.Repeat("y", MaxPath-len(dir)-1))
	l, err := Listen(longest)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("unix", l.path)
	if err != nil {
		t.Fatalf("dial before Serve: %v", err)
	}
	c.Close()
	l.Close()
	if _, err := os.Lstat(l.path); err == nil {
		t.Error("Close left the socket file")
	}
}

// Serve is Listen then Listener.Serve (serve in cli listens first, to
// report a socket in use before it starts).
func Serve(ctx context.Context, path string, h Handler) error {
	l, err := Listen(path)
	if err != nil {
		return err
	}
	return l.Serve(ctx, h)
}
