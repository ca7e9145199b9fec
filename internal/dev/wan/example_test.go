package wan_test

import (
	"fmt"
	"time"

	"github.com/planetlab/pl/internal/dev/wan"
)

func ExampleOneWayDelay() {
	princeton := wan.Location{Lat: 40.3487, Lon: -74.6593}
	tokyo := wan.Location{Lat: 35.7126, Lon: 139.7620}
	d := wan.OneWayDelay(princeton, tokyo, 2*time.Millisecond)
	fmt.Printf("%.0f km, one way %v, ping %v\n", wan.Distance(princeton, tokyo)/1000,
		d.Round(time.Millisecond), (2 * d).Round(time.Millisecond))
	// Output: 10854 km, one way 56ms, ping 113ms
}
