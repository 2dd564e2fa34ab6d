package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	mdns "github.com/miekg/dns"
)

// DefaultResolvConf is where New finds name servers when Options.Servers is empty.
const DefaultResolvConf = "/etc/resolv.conf"

// DefaultTimeout bounds one query to one server when Options.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// ednsSize is the UDP payload size advertised with EDNS0: the 2020 DNS flag
// day value, small enough to avoid IP fragmentation.
const ednsSize = 1232

// Options configures a Client.
type Options struct {
	// Servers are the recursive name servers, "host:port" (a bare host
	// means port 53), asked in order until one answers. Empty: the
	// nameserver lines of ResolvConf.
	Servers []string
	// ResolvConf is the resolv.conf(5) file read when Servers is empty;
	// "" means DefaultResolvConf.
	ResolvConf string
	// Timeout bounds one query to one server (UDP, and TCP after a
	// truncated answer, each); zero means DefaultTimeout.
	Timeout time.Duration
	// EDNS0 adds an OPT record (RFC 6891) advertising a 1232-byte UDP
	// payload and with the DO bit set (RFC 3225), which asks a validating
	// resolver to report the AD bit. Without it the query still sets AD in
	// the header (RFC 6840 §5.7), which many resolvers honour too.
	EDNS0 bool
}

// Client is a stub resolver that implements Resolver. It is safe for
// concurrent use and keeps no cache: the recursive server caches.
type Client struct {
	servers []string
	timeout time.Duration
	edns0   bool
}

var _ Resolver = (*Client)(nil)

// New returns a Client for opts. It fails when no server is configured, or
// when Servers is empty and the resolv.conf file cannot be read or names none.
func New(opts Options) (*Client, error) {
	c := &Client{timeout: opts.Timeout, edns0: opts.EDNS0}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	servers := opts.Servers
	if len(servers) == 0 {
		path := opts.ResolvConf
		if path == "" {
			path = DefaultResolvConf
		}
		conf, err := mdns.ClientConfigFromFile(path)
		if err != nil {
			return nil, fmt.Errorf("dns: reading %s: %w", path, err)
		}
		for _, s := range conf.Servers {
			servers = append(servers, net.JoinHostPort(s, conf.Port))
		}
		if len(servers) == 0 {
			return nil, fmt.Errorf("dns: %s names no nameserver", path)
		}
	}
	for _, s := range servers {
		addr, err := serverAddr(s)
		if err != nil {
			return nil, err
		}
		c.servers = append(c.servers, addr)
	}
	return c, nil
}

// serverAddr normalises "host", "host:port", "[v6]:port" and a bare IPv6
// address to host:port, defaulting the port to 53.
func serverAddr(s string) (string, error) {
	if s == "" {
		return "", errors.New("dns: empty server address")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		// No port: a bare name, IPv4 or IPv6 address.
		host, port = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"), "53"
	}
	if host == "" || port == "" {
		return "", fmt.Errorf("dns: bad server address %q", s)
	}
	return net.JoinHostPort(host, port), nil
}

// query asks the servers in turn for name/qtype and returns the first
// response whose RCODE is NOERROR or NXDOMAIN. Any other outcome from every
// server is an error wrapping ErrTemporary.
func (c *Client) query(ctx context.Context, name string, qtype uint16) (*mdns.Msg, error) {
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	m.AuthenticatedData = true // RFC 6840 §5.7: ask for the AD bit
	if c.edns0 {
		m.SetEdns0(ednsSize, true)
	}
	var last error
	for _, server := range c.servers {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%w: %s %s: %w", ErrTemporary, typeName(qtype), name, err)
		}
		resp, err := c.exchange(ctx, m, server)
		if err == nil {
			switch resp.Rcode {
			case mdns.RcodeSuccess, mdns.RcodeNameError:
				return resp, nil
			}
			err = fmt.Errorf("server answered %s", mdns.RcodeToString[resp.Rcode])
		}
		last = fmt.Errorf("%s: %w", server, err)
	}
	return nil, fmt.Errorf("%w: %s %s: %w", ErrTemporary, typeName(qtype), name, last)
}

// exchange sends m to one server over UDP and, when the answer comes back
// truncated (TC bit, RFC 1035 §4.1.1), again over TCP (RFC 7766 §5).
func (c *Client) exchange(ctx context.Context, m *mdns.Msg, server string) (*mdns.Msg, error) {
	resp, err := c.exchangeNet(ctx, m, server, "udp")
	if err == nil && resp.Truncated {
		resp, err = c.exchangeNet(ctx, m, server, "tcp")
		if err == nil && resp.Truncated {
			err = errors.New("answer truncated over TCP")
		}
	}
	if err != nil {
		return nil, err
	}
	if err := checkResponse(m, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// exchangeNet performs one exchange on one network. The context's
// cancellation, not only its deadline, ends the exchange.
func (c *Client) exchangeNet(ctx context.Context, m *mdns.Msg, server, network string) (*mdns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cl := &mdns.Client{Net: network, Timeout: c.timeout}
	conn, err := cl.DialContext(ctx, server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	resp, _, err := cl.ExchangeWithConnContext(ctx, m, conn)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return resp, err
}

// checkResponse rejects a response whose question is not the one asked: the
// ID alone (checked by the library) is 16 bits.
func checkResponse(q, r *mdns.Msg) error {
	if !r.Response {
		return errors.New("reply without the QR bit")
	}
	if len(r.Question) != 1 {
		return fmt.Errorf("reply with %d questions", len(r.Question))
	}
	a, b := q.Question[0], r.Question[0]
	if a.Qtype != b.Qtype || a.Qclass != b.Qclass || !strings.EqualFold(a.Name, b.Name) {
		return fmt.Errorf("reply for %s %s, asked %s %s", typeName(b.Qtype), b.Name, typeName(a.Qtype), a.Name)
	}
	return nil
}

func typeName(t uint16) string {
	if s, ok := mdns.TypeToString[t]; ok {
		return s
	}
	return fmt.Sprintf("TYPE%d", t)
}
