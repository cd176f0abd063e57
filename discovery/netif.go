package discovery

import (
	"fmt"
	"net"
	"net/netip"
)

// systemPrefixes returns the addresses of interface ifIndex, each with its
// prefix length, or of every interface when ifIndex is 0 (a socket that
// cannot tell which interface a datagram came in on).
func systemPrefixes(ifIndex int) ([]netip.Prefix, error) {
	var addrs []net.Addr
	var err error
	if ifIndex > 0 {
		var ifi *net.Interface
		if ifi, err = net.InterfaceByIndex(ifIndex); err != nil {
			return nil, fmt.Errorf("interface %d: %w", ifIndex, err)
		}
		addrs, err = ifi.Addrs()
	} else {
		addrs, err = net.InterfaceAddrs()
	}
	if err != nil {
		return nil, fmt.Errorf("interface %d addresses: %w", ifIndex, err)
	}
	return toPrefixes(addrs), nil
}

// toPrefixes keeps the address (not the network) in each prefix: callers
// want both "is src on this subnet" and "what is my address there".
func toPrefixes(addrs []net.Addr) []netip.Prefix {
	var ps []netip.Prefix
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ones, bits := ipn.Mask.Size()
		if ip.Is4In6() && bits == 128 {
			ones -= 96
		}
		ip = ip.Unmap()
		if p := netip.PrefixFrom(ip, ones); p.IsValid() {
			ps = append(ps, p)
		}
	}
	return ps
}

// localAddrFor returns our address in the first prefix that contains src:
// the address the probe's sender can reach us at. This is the RFC 6762
// §11 on-link test; ok is false when src is on none of the prefixes.
func localAddrFor(prefixes []netip.Prefix, src netip.Addr) (netip.Addr, bool) {
	for _, p := range prefixes {
		if p.Contains(src) {
			return p.Addr(), true
		}
	}
	return netip.Addr{}, false
}

// directedBroadcast returns the broadcast address of an IPv4 prefix, or
// false for prefixes that have none (IPv6, /31 point-to-point, /32).
func directedBroadcast(p netip.Prefix) (netip.Addr, bool) {
	if !p.Addr().Is4() || p.Bits() > 30 {
		return netip.Addr{}, false
	}
	a := p.Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}
