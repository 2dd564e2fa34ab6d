package tlsrpt

// post.go: a report as an HTTPS POST (RFC 8460 §5.4).

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"smtpkit/internal/dns"
)

// IPResolver resolves the host of an https rua (dns.Resolver has it).
type IPResolver interface {
	LookupIP(ctx context.Context, host string) (dns.IPAnswer, error)
}

// poster POSTs gzip'd reports to https rua URIs: the host is resolved
// through the configured resolver (not the system's), the certificate is
// verified against roots (WebPKI), redirects are not followed (a 3xx is
// a failure), and the whole exchange has a timeout.
type poster struct {
	client *http.Client
}

func newPoster(res IPResolver, roots *x509.CertPool, timeout time.Duration, allowLoopback bool) *poster {
	dialer := &net.Dialer{Timeout: timeout}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		ips, err := resolveHost(ctx, res, host)
		if err != nil {
			return nil, err
		}
		var errs []error
		for _, ip := range ips {
			if (ip.IsLoopback() || ip.IsUnspecified()) && !allowLoopback {
				errs = append(errs, fmt.Errorf("%s is a loopback address (outbound.allow_loopback is off)", ip))
				continue
			}
			c, err := dialer.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
			if err == nil {
				return c, nil
			}
			errs = append(errs, err)
		}
		if len(errs) == 0 {
			return nil, fmt.Errorf("%s has no address", host)
		}
		return nil, errors.Join(errs...)
	}
	return &poster{client: &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:       dial,
			TLSClientConfig:   &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			DisableKeepAlives: true,
			Proxy:             nil, // the report goes where the domain said, not via $HTTPS_PROXY
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func resolveHost(ctx context.Context, res IPResolver, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip.Unmap()}, nil
	}
	if res == nil {
		return nil, errors.New("no resolver")
	}
	ans, err := res.LookupIP(ctx, host)
	if err != nil {
		return nil, err
	}
	return ans.IPs, nil
}

// post sends gz to u as application/tlsrpt+gzip (RFC 8460 §5.4). Any 2xx
// is success.
func (p *poster) post(ctx context.Context, u *url.URL, gz []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(gz))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/tlsrpt+gzip")
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return fmt.Errorf("%s: redirect (%s) not followed", u.Redacted(), resp.Status)
	}
	return fmt.Errorf("%s: %s: %q", u.Redacted(), resp.Status, body)
}
