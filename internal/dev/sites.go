package dev

import "github.com/planetlab/pl/internal/dev/wan"

// DemoSite is a demo site: a login_base, a name and real coordinates.
type DemoSite struct {
	LoginBase string
	Name      string
	wan.Location
}

// DemoSites are the sites of the emulated planet, in the order nodes are
// placed on them (so a few nodes already span several continents).
var DemoSites = []DemoSite{
	{"princeton", "Princeton University", wan.Location{Lat: 40.3487, Lon: -74.6593}},
	{"ethz", "ETH Zurich", wan.Location{Lat: 47.3763, Lon: 8.5480}},
	{"tokyo", "University of Tokyo", wan.Location{Lat: 35.7126, Lon: 139.7620}},
	{"usp", "Universidade de Sao Paulo", wan.Location{Lat: -23.5613, Lon: -46.7308}},
	{"sydney", "University of Sydney", wan.Location{Lat: -33.8888, Lon: 151.1872}},
	{"uct", "University of Cape Town", wan.Location{Lat: -33.9577, Lon: 18.4612}},
	{"mit", "Massachusetts Institute of Technology", wan.Location{Lat: 42.3601, Lon: -71.0942}},
	{"inria", "Inria Sophia Antipolis", wan.Location{Lat: 43.6163, Lon: 7.0686}},
}

// PLCSite is where the emulated PLC (the host) stands.
var PLCSite = DemoSites[0]

func wanSites(sites []DemoSite) []wan.Site {
	out := make([]wan.Site, len(sites))
	for i, s := range sites {
		out[i] = wan.Site{Name: s.LoginBase, Location: s.Location}
	}
	return out
}
