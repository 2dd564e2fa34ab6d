package dnsbl

import (
	"net/netip"
	"strconv"
	"strings"
)

// QueryName is the name to look up for ip in zone (RFC 5782 §2.1, §2.4):
// for IPv4 the four octets in reverse order ("2.0.0.127.zone" for
// 127.0.0.2), for IPv6 the 32 nibbles of the address in reverse order,
// each a lower-case hex digit. An IPv4-mapped IPv6 address is asked as
// the IPv4 address it maps. zone has no trailing dot; neither has the
// result.
func QueryName(ip netip.Addr, zone string) string {
	ip = ip.Unmap()
	var b strings.Builder
	if ip.Is4() {
		a := ip.As4()
		for i := 3; i >= 0; i-- {
			b.WriteString(strconv.Itoa(int(a[i])))
			b.WriteByte('.')
		}
	} else {
		const hex = "0123456789abcdef"
		a := ip.As16()
		for i := 15; i >= 0; i-- {
			b.WriteByte(hex[a[i]&0x0f])
			b.WriteByte('.')
			b.WriteByte(hex[a[i]>>4])
			b.WriteByte('.')
		}
	}
	b.WriteString(zone)
	return b.String()
}
