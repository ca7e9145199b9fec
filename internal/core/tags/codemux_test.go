package tags

import (
	"strings"
	"testing"
)

func TestParseRoute(t *testing.T) {
	for in, want := range map[string]Route{
		"www.example.org,8080":                 {Host: "www.example.org", Port: 8080},
		" WWW.Example.ORG. , 80 ":              {Host: "www.example.org", Port: 80},
		"shop.example.org,8080,tls=8443,proxy": {Host: "shop.example.org", Port: 8080, TLSPort: 8443, Proxy: true},
		"shop.example.org,8080,proxy,tls=8443": {Host: "shop.example.org", Port: 8080, TLSPort: 8443, Proxy: true},
		"localhost,1":                          {Host: "localhost", Port: 1},
	} {
		got, err := ParseRoute(in)
		if err != nil || got != want {
			t.Errorf("ParseRoute(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if back, err := ParseRoute(got.String()); err != nil || back != got {
			t.Errorf("%q: String %q reads back as %+v, %v", in, got.String(), back, err)
		}
	}
	for in, want := range map[string]string{
		"www.example.org":                    "is not <host>,<port>",
		"www.example.org,0":                  `port "0" is not a port from 1 to 65535`,
		"www.example.org,65536":              `port "65536" is not a port`,
		"www.example.org,80,tls=x":           `tls port "x" is not a port`,
		"www.example.org,80,gzip":            `unknown or repeated option "gzip"`,
		"www.example.org,80,proxy,proxy":     `unknown or repeated option "proxy"`,
		"ex ample.org,80":                    "is not a DNS name",
		"-a.example.org,80":                  `label "-a"`,
		"a..b,80":                            `label ""`,
		"a_b.org,80":                         `character '_'`,
		",80":                                "is not a DNS name of 1 to 253",
		strings.Repeat("a.", 130) + "org,80": "1 to 253",
	} {
		_, err := ParseRoute(in)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "codemux") {
			t.Errorf("ParseRoute(%q): %v, want an error on codemux saying %q", in, err, want)
		}
		if Check(Codemux, in) == nil {
			t.Errorf("Check accepts %q", in)
		}
	}
}

func FuzzParseRoute(f *testing.F) {
	f.Add("www.example.org,8080,tls=8443,proxy")
	f.Add("a,1")
	f.Fuzz(func(t *testing.T, in string) {
		r, err := ParseRoute(in)
		if err != nil {
			return
		}
		back, err := ParseRoute(r.String())
		if err != nil || back != r {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", in, r, r.String(), back, err)
		}
		if h, err := NormalizeHost(r.Host); err != nil || h != r.Host {
			t.Fatalf("host %q not normal: %q, %v", r.Host, h, err)
		}
	})
}
