package geni

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strings"
)

// Slices of other GENI authorities live at this PLC as stand-ins
// (docs/geni.md, "Slices of other authorities"): each authority gets a
// local site whose login_base is ForeignLoginBase(authority), each of its
// slices the PlanetLab slice ForeignSliceName(login_base, name). Both
// names must satisfy PLC's naming policy and what nodes accept as a slice
// name (^[a-z][a-z0-9_]{0,31}$: a container id, a Unix login).

// MaxSliceName is the longest slice name nodes accept.
const MaxSliceName = 32

// ForeignLoginBase is the login_base of the site standing in for GENI
// authority auth (the authority part of its URNs, sub-authorities
// included): the first up to 6 letters and digits of its first label,
// lower case (a leading "g" when that would not start with a letter),
// then 5 characters of the SHA-256 of the lower-cased authority in base32
// (a-z, 2-7). It is deterministic, 6 to 11 characters of [a-z0-9]
// starting with a letter, and two authorities share one only by a hash
// collision, which PLC refuses when it happens (the login_base is taken).
func ForeignLoginBase(auth string) string {
	a := strings.ToLower(auth)
	var b []byte
	for i := 0; i < len(a) && len(b) < 6; i++ {
		c := a[i]
		if c == '.' || c == ':' {
			break
		}
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b = append(b, c)
		}
	}
	if len(b) == 0 || b[0] < 'a' || b[0] > 'z' {
		b = append([]byte{'g'}, b...)
		if len(b) > 6 {
			b = b[:6]
		}
	}
	h := sha256.Sum256([]byte(a))
	return string(b) + strings.ToLower(base32.StdEncoding.EncodeToString(h[:]))[:5]
}

// ForeignSliceName maps the name of a GENI slice (the last part of its
// URN) to the name of its stand-in slice at the site loginBase:
// loginBase_<name lower-cased, '-' as '_'>. GENI slice names are letters,
// digits and '-' (PlanetLab's add '_'); a name that is empty, starts with
// another character than a letter or digit, holds another character, or
// maps to more than MaxSliceName characters is refused, naming why. The
// mapping is not one-to-one ("Exp" and "exp", "a-b" and "a_b" map alike):
// PLC records which URN a stand-in slice is for and refuses a second URN
// that maps onto a live slice's name.
func ForeignSliceName(loginBase, name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("the slice name is empty")
	}
	if c := name[0]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
		return "", fmt.Errorf("slice name %q starts with %q: this aggregate maps names that start with a letter or digit", clip(name), c)
	}
	out := make([]byte, 0, len(name))
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_':
			out = append(out, c)
		case c >= 'A' && c <= 'Z':
			out = append(out, c-'A'+'a')
		case c == '-':
			out = append(out, '_')
		default:
			return "", fmt.Errorf("slice name %q holds %q: this aggregate maps names of letters, digits, '-' and '_' only", clip(name), c)
		}
	}
	local := loginBase + "_" + string(out)
	if len(local) > MaxSliceName {
		return "", fmt.Errorf("slice name %q is too long: its stand-in %s would have %d characters, nodes take at most %d (names of at most %d characters for this authority)",
			clip(name), clip(local), len(local), MaxSliceName, MaxSliceName-len(loginBase)-1)
	}
	return local, nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
