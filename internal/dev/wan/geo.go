// Package wan emulates a wide-area network on one Linux machine: every
// emulated host is a network namespace, sites are router namespaces joined
// to a core router namespace, and the host (root namespace) reaches the WAN
// through a veth to the core router.
//
// Latency comes from geography: the one-way delay between two places is the
// great-circle distance between them divided by the speed of light in fibre
// plus a fixed overhead. The kernel on the machines this runs on has no tc
// netem, so the links between the site routers and the core router are pairs
// of TUN devices pumped by this process, which holds each packet until its
// release time (see Queue and Pump). Rate limits are kernel qdiscs (TBF) on
// the TUN devices.
//
// Picture (two sites, one node each):
//
//	host (root ns) --veth-- core ns --tun/tun (pumped, delayed)-- site ns s1 --bridge-- node ns n1
//	                                \--tun/tun (pumped, delayed)-- site ns s2 --bridge-- node ns n2
//
// A packet from n1 to n2 crosses the s1 router, the core router and the s2
// router, so traceroute shows three hops. The delay is applied once, at the
// source site's uplink; packets from the host (which has no uplink) are
// delayed at the destination site's downlink.
package wan

import (
	"time"

	"github.com/planetlab/pl/internal/core/geo"
)

// Location is a point on Earth in decimal degrees.
type Location struct {
	Lat, Lon float64
}

// EarthRadius is the mean radius of the Earth in metres.
const EarthRadius = geo.EarthRadius

// FibreSpeed is the speed of light in optical fibre, in metres per second
// (about two thirds of c).
const FibreSpeed = 2e8

// Distance returns the great-circle distance between a and b in metres
// (haversine formula).
func Distance(a, b Location) float64 {
	return geo.Distance(a.Lat, a.Lon, b.Lat, b.Lon)
}

// OneWayDelay is the emulated one-way latency between a and b: propagation
// over the great circle in fibre plus overhead (switching, last mile).
func OneWayDelay(a, b Location, overhead time.Duration) time.Duration {
	return time.Duration(Distance(a, b)/FibreSpeed*float64(time.Second)) + overhead
}
