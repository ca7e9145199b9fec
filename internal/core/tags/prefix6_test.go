package tags

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
)

func TestParsePrefix6(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "2001:db8:7::/64", want: "2001:db8:7::/64"},
		{in: " 2001:db8::/48\n", want: "2001:db8::/48"},
		{in: "fd0a:6300:3:3::/64", want: "fd0a:6300:3:3::/64"},
		{in: "fc00::/7", want: "fc00::/7"},
		{in: "2000::/3", want: "2000::/3"},
		{in: "", err: "empty"},
		{in: "2001:db8::1", err: "has no prefix length"},
		{in: "2001:db8::/129", err: "is not an IPv6 prefix"},
		{in: "banana/64", err: "is not an IPv6 prefix"},
		{in: "fe80::1%eth0/64", err: "is not an IPv6 prefix"},
		{in: "10.0.0.0/8", err: "10.0.0.0/8 is not an IPv6 prefix"},
		{in: "::ffff:10.0.0.0/104", err: "::ffff:10.0.0.0/104 is not an IPv6 prefix"},
		{in: "::ffff:0:0/96", err: "is not an IPv6 prefix"},
		{in: "::ffff:0.0.0.0/64", err: "is not an IPv6 prefix"},
		{in: "2001:db8::/80", err: "2001:db8::/80 is longer than a /64"},
		{in: "2002:1000::1/64", err: "has host bits set (did you mean 2002:1000::/64?)"},
		{in: "fe80::/64", err: "not inside the global unicast range"},
		{in: "ff02::/16", err: "not inside the global unicast range"},
		{in: "::/0", err: "not inside the global unicast range"},
		{in: "::1/64", err: "has host bits set"},
		{in: "::/64", err: "not inside the global unicast range"},
		{in: "2000::/2", err: "has host bits set (did you mean ::/2?)"},
		{in: "fc00::/6", err: "not inside the global unicast range"},
		{in: "4000::/3", err: "not inside the global unicast range"},
		{in: strings.Repeat("1", 65), err: "65 bytes"},
	} {
		p, err := ParsePrefix6(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParsePrefix6(%q) = %v, %v; want error containing %q", tc.in, p, err, tc.err)
			} else if core.ErrorField(err) != SliversIPv6Prefix || core.ErrorCode(err) != core.Invalid {
				t.Errorf("ParsePrefix6(%q): error %v does not name the tag or is not Invalid", tc.in, err)
			}
			continue
		}
		if err != nil || p != netip.MustParsePrefix(tc.want) {
			t.Errorf("ParsePrefix6(%q) = %v, %v; want %s", tc.in, p, err, tc.want)
		}
	}
	if err := Check(SliversIPv6Prefix, "2001:db8::/96"); err == nil {
		t.Error("Check accepted a /96")
	}
}

func FuzzParsePrefix6(f *testing.F) {
	for _, s := range []string{"2001:db8:7::/64", "fd00::/8", "2001:db8::1/64", "10.0.0.0/8", "::ffff:0:0/96", "fe80::%x/64", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePrefix6(s)
		if err != nil {
			if core.ErrorField(err) != SliversIPv6Prefix {
				t.Fatalf("ParsePrefix6(%q) = %v: does not name the tag", s, err)
			}
			return
		}
		if !p.Addr().Is6() || p.Addr().Is4In6() || p.Bits() > MaxSliverPrefix6Bits || p.Masked() != p || p.Addr().Zone() != "" {
			t.Fatalf("ParsePrefix6(%q) accepted %v", s, p)
		}
		if !globalUnicast6.Overlaps(p) && !uniqueLocal6.Overlaps(p) {
			t.Fatalf("ParsePrefix6(%q) accepted %v outside the ranges", s, p)
		}
		// The canonical text parses to the same prefix.
		if q, err := ParsePrefix6(p.String()); err != nil || q != p {
			t.Fatalf("ParsePrefix6(%q) = %v, %v: not stable", p.String(), q, err)
		}
	})
}
