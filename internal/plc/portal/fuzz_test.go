package portal

import (
	"strings"
	"testing"
)

// FuzzSafeNext: whatever a login form's next says, the redirect stays on
// this site.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"", "/", "/keys", "//evil.example/", "/\\evil.example", "https://evil.example/", "/slices/x?y=1", "/\t/evil.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		clean := strings.Map(func(r rune) rune { // what a browser makes of it
			if r == '\t' || r == '\n' || r == '\r' {
				return -1
			}
			return r
		}, got)
		if !strings.HasPrefix(clean, "/") || strings.HasPrefix(clean, "//") || strings.HasPrefix(clean, "/\\") {
			t.Fatalf("safeNext(%q) = %q leaves the site", next, got)
		}
		if got != "/slices" && got != next {
			t.Fatalf("safeNext(%q) = %q: a kept target must be kept as given", next, got)
		}
	})
}

// FuzzAcceptsGzip: any Accept-Encoding is read without a panic, and a
// header that does not name gzip never gets gzip.
func FuzzAcceptsGzip(f *testing.F) {
	for _, s := range []string{"", "gzip", "gzip;q=0", "br, gzip;q=0.5", "GZIP ; q = 1", "identity", ";;,,=q"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ae string) {
		if acceptsGzip(ae) && !strings.Contains(strings.ToLower(ae), "gzip") {
			t.Fatalf("acceptsGzip(%q) without gzip", ae)
		}
	})
}
