package acmecert

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
)

// challengeTimeout bounds one validation connection of the CA.
const challengeTimeout = 10 * time.Second

// http01Prefix is the path the CA fetches the key authorization from
// (RFC 8555 §8.3).
const http01Prefix = "/.well-known/acme-challenge/"

// responder answers the CA's validation requests for the challenges of
// one order: http-01 tokens or tls-alpn-01 certificates, by name.
type responder struct {
	mu     sync.Mutex
	tokens map[string]string           // http-01: token → key authorization
	certs  map[string]*tls.Certificate // tls-alpn-01: lower-case name → challenge certificate
}

func newResponder() *responder {
	return &responder{tokens: map[string]string{}, certs: map[string]*tls.Certificate{}}
}

func (r *responder) addToken(token, keyAuth string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tokens[token] = keyAuth
}

func (r *responder) addCert(name string, c *tls.Certificate) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.certs[strings.ToLower(name)] = c
}

// ServeHTTP answers http-01: the key authorization of a known token as
// text, 404 for anything else.
func (r *responder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	token, ok := strings.CutPrefix(req.URL.Path, http01Prefix)
	r.mu.Lock()
	ka, known := r.tokens[token]
	r.mu.Unlock()
	if !ok || !known || (req.Method != http.MethodGet && req.Method != http.MethodHead) {
		http.NotFound(w, req)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, ka)
}

// getCertificate answers tls-alpn-01 (RFC 8737 §3): only a client that
// offers acme-tls/1 and names one of the order's names gets its
// challenge certificate; every other handshake fails.
func (r *responder) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if !slices.Contains(hello.SupportedProtos, acme.ALPNProto) {
		return nil, errors.New("acme: not a tls-alpn-01 validation (no acme-tls/1)")
	}
	r.mu.Lock()
	c := r.certs[strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))]
	r.mu.Unlock()
	if c == nil {
		return nil, fmt.Errorf("acme: no tls-alpn-01 challenge for %q", hello.ServerName)
	}
	return c, nil
}

// listen binds addr and answers the challenge until the returned stop is
// called; stop waits until the listener's goroutines have ended.
func (r *responder) listen(challenge, addr string) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("acme: %s challenge listener: %w", challenge, err)
	}
	var wg sync.WaitGroup
	if challenge == HTTP01 {
		srv := &http.Server{Handler: r, ReadHeaderTimeout: challengeTimeout, WriteTimeout: challengeTimeout}
		wg.Go(func() { srv.Serve(ln) })
		return func() { srv.Close(); wg.Wait() }, nil
	}
	conf := &tls.Config{
		MinVersion:     tls.VersionTLS12, // RFC 8737 §4
		NextProtos:     []string{acme.ALPNProto},
		GetCertificate: r.getCertificate,
	}
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer func() { mu.Lock(); delete(open, c); mu.Unlock(); c.Close() }()
				c.SetDeadline(time.Now().Add(challengeTimeout))
				// RFC 8737 §3: the CA closes the connection after the
				// handshake; nothing is read or written.
				tls.Server(c, conf).Handshake()
			})
		}
	})
	return func() {
		ln.Close()
		mu.Lock()
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}, nil
}
