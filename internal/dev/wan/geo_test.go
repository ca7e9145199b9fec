package wan

import (
	"math"
	"testing"
	"time"
)

func TestDistance(t *testing.T) {
	princeton := Location{40.3487, -74.6593}
	tokyo := Location{35.7126, 139.7620}
	sydney := Location{-33.8888, 151.1872}
	for _, tc := range []struct {
		name   string
		a, b   Location
		wantKm float64
	}{
		{"same place", princeton, princeton, 0},
		{"princeton-tokyo", princeton, tokyo, 10870},
		{"tokyo-sydney", tokyo, sydney, 7820},
		{"antipodes", Location{0, 0}, Location{0, 180}, math.Pi * EarthRadius / 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Distance(tc.a, tc.b) / 1000
			if math.Abs(got-tc.wantKm) > 0.01*tc.wantKm+1 {
				t.Fatalf("Distance = %.0f km, want about %.0f km", got, tc.wantKm)
			}
			if back := Distance(tc.b, tc.a) / 1000; math.Abs(back-got) > 1e-6 {
				t.Fatalf("not symmetric: %f vs %f", got, back)
			}
		})
	}
}

func TestOneWayDelay(t *testing.T) {
	// 2000 km of fibre is 10 ms, plus the overhead.
	a := Location{0, 0}
	b := Location{0, 2000e3 / EarthRadius * 180 / math.Pi}
	got := OneWayDelay(a, b, 2*time.Millisecond)
	if d := got - 12*time.Millisecond; d < -10*time.Microsecond || d > 10*time.Microsecond {
		t.Fatalf("OneWayDelay = %v, want 12ms", got)
	}
}
