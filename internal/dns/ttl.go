package dns

import (
	"context"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
)

// ttlSink collects the TTL of the responses one lookup used, for Cache:
// the smallest record TTL (RFC 2181 §5.2: the records of an RRset share
// one; a CNAME chain lives as long as its shortest link), or for a
// negative answer the SOA's (RFC 2308 §5: the smaller of its TTL and
// MINIMUM). The answer types stay as they are: the TTL travels beside
// them, through the context, only when a Cache asks.
type ttlSink struct {
	mu    sync.Mutex
	ttl   uint32
	known bool
}

type ttlKey struct{}

func withTTLSink(ctx context.Context, s *ttlSink) context.Context {
	return context.WithValue(ctx, ttlKey{}, s)
}

// noteTTL records resp's TTL in the context's sink, if there is one.
func noteTTL(ctx context.Context, resp *mdns.Msg) {
	s, _ := ctx.Value(ttlKey{}).(*ttlSink)
	if s == nil {
		return
	}
	ttl, ok := responseTTL(resp)
	if !ok {
		return
	}
	s.mu.Lock()
	if !s.known || ttl < s.ttl {
		s.ttl, s.known = ttl, true
	}
	s.mu.Unlock()
}

func responseTTL(resp *mdns.Msg) (uint32, bool) {
	if len(resp.Answer) > 0 {
		ttl := resp.Answer[0].Header().Ttl
		for _, rr := range resp.Answer[1:] {
			ttl = min(ttl, rr.Header().Ttl)
		}
		return ttl, true
	}
	for _, rr := range resp.Ns {
		if soa, ok := rr.(*mdns.SOA); ok {
			return min(soa.Hdr.Ttl, soa.Minttl), true
		}
	}
	return 0, false
}

// duration is the sink's TTL, or def when no response told one.
func (s *ttlSink) duration(def time.Duration) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.known {
		return def
	}
	return time.Duration(s.ttl) * time.Second
}
