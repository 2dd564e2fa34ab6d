package route

// hosts.go: static route hosts are looked up in the hosts file
// (/etc/hosts) first, then in DNS, as the system's resolver library
// does for every other program: a route to "localhost:2525" or to a name
// only /etc/hosts knows must work.

import (
	"bytes"
	"net/netip"
	"os"
	"strings"
)

// HostsLookup answers a host name from a local table; ok is false when
// the table does not know the name (then DNS is asked).
type HostsLookup interface {
	LookupHost(name string) (addrs []netip.Addr, ok bool)
}

// HostsFile is a hosts(5) file, read at every lookup (it is small, and an
// edit takes effect at the next delivery without a reload).
type HostsFile string

// SystemHosts is the system's hosts file.
const SystemHosts HostsFile = "/etc/hosts"

// LookupHost reads the file and returns the addresses listed for name. A
// file that cannot be read knows no name.
func (f HostsFile) LookupHost(name string) ([]netip.Addr, bool) {
	data, err := os.ReadFile(string(f))
	if err != nil {
		return nil, false
	}
	addrs := ParseHosts(data)[canonicalHost(name)]
	return addrs, len(addrs) > 0
}

// maxHostsLine bounds one line of a hosts file.
const maxHostsLine = 4096

// ParseHosts reads hosts(5) text: lines of an IP address and one or more
// names, "#" starting a comment; names are matched case-insensitively
// without a trailing dot. Lines that are not of that form (a bad address,
// an address with a zone, a line over 4096 octets) are skipped, as the C
// library does. The addresses of a name are in file order, without
// duplicates.
func ParseHosts(data []byte) map[string][]netip.Addr {
	out := map[string][]netip.Addr{}
	for len(data) > 0 {
		raw := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			raw, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(raw) > maxHostsLine {
			continue
		}
		line := string(raw)
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		ip, err := netip.ParseAddr(fields[0])
		if err != nil || ip.Zone() != "" {
			continue
		}
		ip = ip.Unmap()
		for _, n := range fields[1:] {
			n = canonicalHost(n)
			if !validDomain(n) || containsAddr(out[n], ip) {
				continue
			}
			out[n] = append(out[n], ip)
		}
	}
	return out
}

func canonicalHost(n string) string { return strings.ToLower(strings.TrimSuffix(n, ".")) }

func containsAddr(list []netip.Addr, ip netip.Addr) bool {
	for _, a := range list {
		if a == ip {
			return true
		}
	}
	return false
}
