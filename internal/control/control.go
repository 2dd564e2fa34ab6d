// Package control is the local control API of a running smtpkit: a unix
// socket (<data_dir>/control.sock, mode 0600) speaking one JSON request per
// line and one JSON response per line. `smtpkit queue` is its client.
//
// The package knows nothing of what it controls: the server side passes a
// Handler (the cli adapts the queue to it), so control imports no other
// smtpkit package.
package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"sync"
	"time"
)

// Operations of the queue protocol.
const (
	OpList    = "list"
	OpShow    = "show"
	OpFlush   = "flush"
	OpRetry   = "retry"
	OpHold    = "hold"
	OpRelease = "release"
	OpDelete  = "delete"
)

// Request is one line from the client: {"op":"show","id":"..."}.
type Request struct {
	Op string `json:"op"`
	ID string `json:"id,omitempty"`
}

// Response is one line from the server. OK is false when Error says why.
type Response struct {
	OK    bool            `json:"ok"`
	Error string          `json:"error,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
}

// Handler answers requests. The result is encoded as the response's Data;
// an error becomes its Error.
type Handler interface {
	Handle(ctx context.Context, req Request) (any, error)
}

// Limits of the server: everything a client sends is bounded (house rule 4),
// even on a local socket.
const (
	MaxLine     = 64 << 10         // longest request line
	MaxConns    = 16               // concurrent clients
	IdleTimeout = 60 * time.Second // a connection with no request for this long is closed
	// MaxResponse bounds what Call reads: a list of a very large queue is
	// big, but not unbounded.
	MaxResponse = 256 << 20
)

// MaxPath is the longest socket path a unix socket address holds on
// Linux: sun_path is 108 bytes with the terminating NUL.
const MaxPath = 107

// ErrInUse is returned by Listen when a server already answers on the
// socket: another smtpkit is running on the same data directory.
var ErrInUse = errors.New("another server is listening")

// ErrPathTooLong is returned by Listen for a path longer than MaxPath.
var ErrPathTooLong = errors.New("socket path too long")

// Listener is a bound control socket. Serve answers on it; Close releases
// it when Serve is never called.
type Listener struct {
	ln   net.Listener
	path string
}

// Listen binds the unix socket path with mode 0600. A stale socket left by
// a crashed server is replaced; a live one is ErrInUse. Binding before
// serving lets a caller say it is ready only once the socket answers.
func Listen(path string) (*Listener, error) {
	ln, err := listen(path)
	if err != nil {
		return nil, err
	}
	return &Listener{ln: ln, path: path}, nil
}

// Close closes the socket and removes its file.
func (l *Listener) Close() error {
	err := l.ln.Close()
	os.Remove(l.path)
	return err
}

// Serve answers requests until ctx is done, then closes the listener and
// every connection, removes the socket and returns nil.
func (l *Listener) Serve(ctx context.Context, h Handler) error {
	ln, path := l.ln, l.path
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
		slots = make(chan struct{}, MaxConns)
	)
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	defer stop()
	defer os.Remove(path)
	for {
		c, err := ln.Accept()
		if err != nil {
			wg.Wait()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("control: %w", err)
		}
		select {
		case slots <- struct{}{}:
		default:
			writeResponse(c, Response{Error: "too many control connections"})
			c.Close()
			continue
		}
		mu.Lock()
		conns[c] = true
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveConn(ctx, c, h)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
			c.Close()
			<-slots
		}()
	}
}

// listen creates the socket with mode 0600, replacing a stale one.
func listen(path string) (net.Listener, error) {
	if len(path) > MaxPath {
		return nil, fmt.Errorf("control: %s: %w (%d bytes; a unix socket address holds at most %d)", path, ErrPathTooLong, len(path), MaxPath)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("control: %s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("control: %s: %w", path, ErrInUse)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("control: removing stale socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	// The data directory is 0700 already; the socket itself is 0600 too.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control: %w", err)
	}
	return ln, nil
}

// serveConn answers requests on c until the client closes it, stays idle
// too long or sends a line that is too long.
func serveConn(ctx context.Context, c net.Conn, h Handler) {
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 4096), MaxLine)
	for {
		c.SetReadDeadline(time.Now().Add(IdleTimeout))
		if !sc.Scan() {
			if errors.Is(sc.Err(), bufio.ErrTooLong) {
				writeResponse(c, Response{Error: "request line too long"})
			}
			return
		}
		var req Request
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		var resp Response
		if err := dec.Decode(&req); err != nil {
			resp.Error = "bad request: " + err.Error()
		} else {
			resp = handle(ctx, h, req)
		}
		c.SetWriteDeadline(time.Now().Add(IdleTimeout))
		if err := writeResponse(c, resp); err != nil {
			return
		}
	}
}

func handle(ctx context.Context, h Handler, req Request) Response {
	v, err := h.Handle(ctx, req)
	if err != nil {
		return Response{Error: err.Error()}
	}
	if v == nil {
		return Response{OK: true}
	}
	data, err := json.Marshal(v)
	if err != nil {
		return Response{Error: "encoding the response: " + err.Error()}
	}
	return Response{OK: true, Data: data}
}

func writeResponse(c net.Conn, r Response) error {
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = c.Write(append(line, '\n'))
	return err
}

// Call sends one request to the server at path and returns its response.
// A response with OK false is returned as is (its Error says why); err is
// for failures to talk to the server at all.
func Call(path string, req Request) (Response, error) {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return Response{}, fmt.Errorf("control: is the server running? %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	line, err := json.Marshal(req)
	if err != nil {
		return Response{}, err
	}
	if _, err := c.Write(append(line, '\n')); err != nil {
		return Response{}, fmt.Errorf("control: %w", err)
	}
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), MaxResponse)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return Response{}, fmt.Errorf("control: reading the response: %w", err)
		}
		return Response{}, errors.New("control: the server closed the connection")
	}
	var resp Response
	if err := json.Unmarshal(sc.Bytes(), &resp); err != nil {
		return Response{}, fmt.Errorf("control: bad response: %w", err)
	}
	return resp, nil
}
