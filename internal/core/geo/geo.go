// Package geo is the one great-circle distance of the project: the
// emulated WAN derives its delays from it (dev/wan) and PLC chooses nodes
// near a place with it (plc/planet).
package geo

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// EarthRadius is the mean radius of the Earth in metres.
const EarthRadius = 6371e3

// Distance returns the great-circle distance in metres between two points
// given in decimal degrees (haversine formula).
func Distance(lat1, lon1, lat2, lon2 float64) float64 {
	rad := math.Pi / 180
	dLat := (lat2 - lat1) * rad
	dLon := (lon2 - lon1) * rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) +
		math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * EarthRadius * math.Asin(math.Min(1, math.Sqrt(h)))
}

// ParseLatLon parses "lat,lon" in decimal degrees. ok is false when s does
// not have that shape (it may be a name); err is set when it has the shape
// but a value is out of range.
func ParseLatLon(s string) (lat, lon float64, ok bool, err error) {
	a, b, found := strings.Cut(s, ",")
	if !found {
		return 0, 0, false, nil
	}
	lat, err1 := strconv.ParseFloat(strings.TrimSpace(a), 64)
	lon, err2 := strconv.ParseFloat(strings.TrimSpace(b), 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false, nil
	}
	if !(lat >= -90 && lat <= 90) {
		return 0, 0, true, fmt.Errorf("latitude %g out of -90..90", lat)
	}
	if !(lon >= -180 && lon <= 180) {
		return 0, 0, true, fmt.Errorf("longitude %g out of -180..180", lon)
	}
	return lat, lon, true, nil
}
