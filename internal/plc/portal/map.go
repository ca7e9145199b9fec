package portal

import (
	"math"
	"strconv"
)

// The world map of a slice's nodes (slice.html): an inline SVG whose
// background is the embedded country outlines static/world.svg (made by
// worldgen from Natural Earth's 1:110m countries) and whose dots are the
// nodes, in the same equirectangular projection: x = (lon+180)*10,
// y = (90-lat)*10 in a 3600x1800 viewBox, so it scales to any width.

// mapXY projects a site's latitude and longitude to the map's
// coordinates, clamped to the map.
func mapXY(lat, lon float64) (x, y string) {
	lat = math.Max(-90, math.Min(90, lat))
	lon = math.Max(-180, math.Min(180, lon))
	return strconv.Itoa(int(math.Round((lon + 180) * 10))), strconv.Itoa(int(math.Round((90 - lat) * 10)))
}
