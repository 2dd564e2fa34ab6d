package config

import (
	"fmt"
	"net/netip"
)

// frontend.go: the per-listener keys for what stands in front of the
// server. proxy_protocol with proxy_from: a load balancer (HAProxy's
// send-proxy / send-proxy-v2) whose connections begin with a PROXY
// protocol header naming the client; the header is required from those
// addresses and refused from any other. xclient_from: the peers that may
// use Postfix's XCLIENT (replace the client's identity) and XFORWARD
// (record the original client of relayed mail). Both lists take the
// trusted_networks syntax (ParseNetwork).

// Networks parses a list of networks that Validate accepted; entries
// that do not parse are left out.
func Networks(list []string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if p, err := ParseNetwork(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func (v *validator) frontEnds(ls []Listener) {
	for i, l := range ls {
		key := fmt.Sprintf("listener[%d]", i)
		v.networks(key+".proxy_from", l.ProxyFrom)
		v.networks(key+".xclient_from", l.XClientFrom)
		switch {
		case l.ProxyProtocol && len(l.ProxyFrom) == 0:
			v.add(key+".proxy_from", "proxy_protocol = true needs proxy_from: the addresses of the load balancers whose PROXY headers are believed")
		case !l.ProxyProtocol && len(l.ProxyFrom) > 0:
			v.add(key+".proxy_from", "set without proxy_protocol = true: no PROXY header would be read (set proxy_protocol, or remove proxy_from)")
		}
	}
}
