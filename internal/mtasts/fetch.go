package mtasts

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	neturl "net/url"
	"strconv"
	"time"
)

// wellKnownPath is where a policy host serves the policy (RFC 8461 §3.3).
const wellKnownPath = "/.well-known/mta-sts.txt"

// maxAddrs bounds how many addresses of a policy host are tried.
const maxAddrs = 8

// fetcher gets policies over HTTPS as RFC 8461 §3.3 says: the policy host
// mta-sts.<domain> is resolved through our resolver and dialled directly
// (no proxy, no system resolver); TLS 1.2 or later with a certificate
// that chains to roots and is valid for the host name; HTTP caching is not
// used, redirects are not followed, only 200 with Content-Type text/plain
// and a body of at most maxBody bytes is accepted.
type fetcher struct {
	res           Resolver
	port          int
	maxBody       int64
	allowLoopback bool
	client        *http.Client
}

func newFetcher(opts Options) *fetcher {
	f := &fetcher{res: opts.Resolver, port: opts.Port, maxBody: opts.MaxBody, allowLoopback: opts.AllowLoopback}
	tr := &http.Transport{
		Proxy:       nil, // never through a proxy: the certificate check is ours to make
		DialContext: f.dial,
		TLSClientConfig: &tls.Config{
			RootCAs:    opts.Roots, // nil: the system roots
			MinVersion: tls.VersionTLS12,
		},
		TLSHandshakeTimeout:    opts.Timeout,
		ResponseHeaderTimeout:  opts.Timeout,
		DisableKeepAlives:      true, // one request per fetch, every hour at most
		DisableCompression:     true,
		MaxResponseHeaderBytes: 16 << 10,
	}
	f.client = &http.Client{
		Transport: tr,
		// RFC 8461 §3.3: "HTTP 3xx redirects MUST NOT be followed".
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return f
}

// fetch gets and parses the policy of domain. Every error is an *Error.
func (f *fetcher) fetch(ctx context.Context, domain string) (*Policy, error) {
	host := "mta-sts." + domain
	url := "https://" + host + wellKnownPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fetchError(domain, err, "building the request")
	}
	req.Header.Set("User-Agent", "smtpkit")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, classify(domain, url, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return nil, fetchError(domain, nil, "%s: redirect (%s) to %q refused (RFC 8461 §3.3)", url, resp.Status, resp.Header.Get("Location"))
	case resp.StatusCode != http.StatusOK:
		return nil, fetchError(domain, nil, "%s: HTTP status %s, want 200", url, resp.Status)
	}
	ct := resp.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "text/plain" {
		return nil, fetchError(domain, nil, "%s: Content-Type %q, want text/plain (RFC 8461 §3.2)", url, ct)
	}
	if resp.ContentLength > f.maxBody {
		return nil, fetchError(domain, nil, "%s: policy of %d bytes, more than the %d allowed", url, resp.ContentLength, f.maxBody)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.maxBody+1))
	if err != nil {
		return nil, classify(domain, url, err)
	}
	if int64(len(body)) > f.maxBody {
		return nil, fetchError(domain, nil, "%s: policy larger than the %d bytes allowed", url, f.maxBody)
	}
	p, err := ParsePolicy(body)
	if err != nil {
		return nil, invalidError(domain, err, "%s: invalid policy", url)
	}
	return &p, nil
}

// classify turns a transport error into an *Error: a certificate that
// does not verify is sts-webpki-invalid (RFC 8460 §4.3.2.2), anything
// else sts-policy-fetch-error.
func classify(domain, url string, err error) *Error {
	if uerr, ok := err.(*neturl.Error); ok {
		err = uerr.Err // it repeats the URL
	}
	var (
		verr *tls.CertificateVerificationError
		uerr x509.UnknownAuthorityError
		herr x509.HostnameError
		cerr x509.CertificateInvalidError
	)
	if errors.As(err, &verr) || errors.As(err, &uerr) || errors.As(err, &herr) || errors.As(err, &cerr) {
		return webPKIError(domain, err, "%s: certificate not valid for mta-sts.%s", url, domain)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fetchError(domain, err, "%s: timed out", url)
	}
	return fetchError(domain, err, "%s", url)
}

// dial connects to the policy host: addr's host is resolved through our
// resolver and its addresses are tried in order on f.port. Loopback and
// unspecified addresses are refused unless allowLoopback (as for MX hosts,
// route.Options.AllowLoopback).
func (f *fetcher) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ans, err := f.res.LookupIP(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", host, err)
	}
	var d net.Dialer
	var last error
	tried := 0
	for _, ip := range ans.IPs {
		if tried == maxAddrs {
			break
		}
		if !f.allowLoopback && refused(ip) {
			last = fmt.Errorf("%s resolves to %s: loopback and unspecified addresses are refused", host, ip)
			continue
		}
		tried++
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ip.Unmap().String(), strconv.Itoa(f.port)))
		if err == nil {
			return conn, nil
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	if last == nil {
		last = fmt.Errorf("%s has no addresses", host)
	}
	return nil, last
}

// refused reports an address a policy host may not have (unless allowed).
func refused(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsLoopback() || ip.IsUnspecified()
}

// Defaults of Options.
const (
	DefaultPort    = 443
	DefaultTimeout = 10 * time.Second
	DefaultMaxBody = 64 << 10 // RFC 8461 §3.3 suggests 64 KiB
)
