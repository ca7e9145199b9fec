package sfa

import (
	"strings"

	"github.com/planetlab/pl/internal/core"
)

// URN is a GENI identifier, urn:publicid:IDN+<authority>+<type>+<name>.
type URN struct {
	Authority string // e.g. plc.example.org, or plc.example.org:site
	Type      string // authority, slice, sliver, node, image, user, interface, link
	Name      string
}

const urnPrefix = "urn:publicid:IDN+"

var urnTypes = map[string]bool{
	"authority": true, "slice": true, "sliver": true, "node": true,
	"image": true, "user": true, "interface": true, "link": true,
}

// ParseURN reads a GENI URN; the prefix is case-insensitive, as publicid
// URNs are.
func ParseURN(s string) (URN, error) {
	if len(s) > 512 {
		return URN{}, core.FieldErrorf("urn", "longer than 512 bytes")
	}
	if len(s) < len(urnPrefix) || !strings.EqualFold(s[:len(urnPrefix)], urnPrefix) {
		return URN{}, core.FieldErrorf("urn", "%q does not start with %s", clip(s), urnPrefix)
	}
	parts := strings.Split(s[len(urnPrefix):], "+")
	if len(parts) != 3 {
		return URN{}, core.FieldErrorf("urn", "%q is not urn:publicid:IDN+<authority>+<type>+<name>", clip(s))
	}
	u := URN{Authority: parts[0], Type: parts[1], Name: parts[2]}
	switch {
	case u.Authority == "" || u.Name == "":
		return URN{}, core.FieldErrorf("urn", "%q has an empty authority or name", clip(s))
	case !urnTypes[u.Type]:
		return URN{}, core.FieldErrorf("urn", "%q: unknown type %q", clip(s), u.Type)
	case strings.ContainsAny(s, " \t\r\n\x00"):
		return URN{}, core.FieldErrorf("urn", "%q contains white space", clip(s))
	}
	return u, nil
}

// String is the canonical text of the URN.
func (u URN) String() string {
	return urnPrefix + u.Authority + "+" + u.Type + "+" + u.Name
}

// Top is the top-level authority, the part before the first ':'.
func (u URN) Top() string {
	top, _, _ := strings.Cut(u.Authority, ":")
	return top
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
