// Package ports parses and formats port reservations: the values of the
// slice tag "ports" that reserves TCP/UDP ports on a node ("tcp/8080",
// "udp/5000-5010", "8080"). It is the one grammar of reservations: PLC
// checks values with it when the tag is written (through core/tags) and
// refuses reservations colliding with another slice's (Conflict); the node
// manager parses the tag with it and refuses collisions between slivers;
// netcfg keeps the parsed ports (List, persisted in canonical text) and
// forwards them. It has no dependencies so every side can import it.
//
// Syntax of a value: items separated by commas and/or white space; each item
// is [proto "/"] port [ "-" port ], proto is "tcp" or "udp"
// (case-insensitive, default tcp), ports are decimal 1..65535 without sign
// or leading "+", and a range is From <= To. An empty value is an empty
// reservation.
package ports

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MaxItems bounds the number of items in one value, so a hostile tag cannot
// make a node install thousands of rules.
const MaxItems = 64

// Port is a reserved port or range of one protocol.
type Port struct {
	Proto string // "tcp" or "udp"
	From  uint16
	To    uint16 // == From for a single port
}

// String renders p canonically: "tcp/8080" or "udp/5000-5010".
func (p Port) String() string {
	if p.To == p.From {
		return fmt.Sprintf("%s/%d", p.Proto, p.From)
	}
	return fmt.Sprintf("%s/%d-%d", p.Proto, p.From, p.To)
}

// Validate reports whether p is well formed.
func (p Port) Validate() error {
	if p.Proto != "tcp" && p.Proto != "udp" {
		return fmt.Errorf("port %s: protocol %q is not tcp or udp", p, p.Proto)
	}
	if p.From == 0 {
		return fmt.Errorf("port %s: port 0 cannot be reserved", p)
	}
	if p.To < p.From {
		return fmt.Errorf("port %s: range end %d is below its start %d", p, p.To, p.From)
	}
	return nil
}

// Overlaps reports whether p and q share a protocol and at least one port.
func (p Port) Overlaps(q Port) bool {
	return p.Proto == q.Proto && p.From <= q.To && q.From <= p.To
}

// Contains reports whether p covers port n of protocol proto.
func (p Port) Contains(proto string, n uint16) bool {
	return p.Proto == proto && p.From <= n && n <= p.To
}

// Parse parses one tag value. Errors name the offending item.
// The result is in input order; duplicates and overlaps inside one value are
// refused (they are almost certainly typos).
func Parse(value string) ([]Port, error) {
	fields := strings.FieldsFunc(value, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
	if len(fields) > MaxItems {
		return nil, fmt.Errorf("port reservation has %d items, more than the limit of %d", len(fields), MaxItems)
	}
	out := make([]Port, 0, len(fields))
	for _, f := range fields {
		p, err := parseItem(f)
		if err != nil {
			return nil, err
		}
		for _, q := range out {
			if p.Overlaps(q) {
				return nil, fmt.Errorf("port %q overlaps %q in the same reservation", f, q.String())
			}
		}
		out = append(out, p)
	}
	return out, nil
}

func parseItem(item string) (Port, error) {
	p := Port{Proto: "tcp"}
	rest := item
	if proto, nums, ok := strings.Cut(item, "/"); ok {
		p.Proto = strings.ToLower(proto)
		if p.Proto != "tcp" && p.Proto != "udp" {
			return Port{}, fmt.Errorf("port %q: protocol %q is not tcp or udp", item, proto)
		}
		rest = nums
	}
	from, to, isRange := strings.Cut(rest, "-")
	var err error
	if p.From, err = parseNum(item, from); err != nil {
		return Port{}, err
	}
	p.To = p.From
	if isRange {
		if p.To, err = parseNum(item, to); err != nil {
			return Port{}, err
		}
		if p.To < p.From {
			return Port{}, fmt.Errorf("port %q: range end %d is below its start %d", item, p.To, p.From)
		}
	}
	return p, nil
}

func parseNum(item, s string) (uint16, error) {
	if s == "" || len(s) > 5 || strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return 0, fmt.Errorf("port %q: %q is not a port number", item, s)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q: %s is out of range 1-65535", item, s)
	}
	return uint16(n), nil
}

// Format renders ports canonically, sorted, separated by ", ". Parse(Format(x))
// returns x sorted.
func Format(ps []Port) string {
	s := make([]string, 0, len(ps))
	for _, p := range Sorted(ps) {
		s = append(s, p.String())
	}
	return strings.Join(s, ", ")
}

// Sorted returns a sorted copy of ps (by protocol, then start, then end).
func Sorted(ps []Port) []Port {
	out := slices.Clone(ps)
	slices.SortFunc(out, func(a, b Port) int {
		if c := strings.Compare(a.Proto, b.Proto); c != 0 {
			return c
		}
		if a.From != b.From {
			return int(a.From) - int(b.From)
		}
		return int(a.To) - int(b.To)
	})
	return out
}

// List is a parsed set of reservations. As text (JSON, files) it is its
// canonical Format, so that what is stored is never parsed by hand.
type List []Port

// String returns Format(l).
func (l List) String() string { return Format(l) }

// MarshalText renders l canonically.
func (l List) MarshalText() ([]byte, error) { return []byte(Format(l)), nil }

// UnmarshalText parses text with Parse.
func (l *List) UnmarshalText(text []byte) error {
	ps, err := Parse(string(text))
	if err != nil {
		return err
	}
	*l = ps
	return nil
}

// Validate reports the first malformed port of l, or two that overlap.
func (l List) Validate() error {
	for i, p := range l {
		if err := p.Validate(); err != nil {
			return err
		}
		for _, q := range l[:i] {
			if p.Overlaps(q) {
				return fmt.Errorf("port %s overlaps %s", p, q)
			}
		}
	}
	return nil
}

// Conflict returns the first pair (a from as, b from bs) that overlap.
func Conflict(as, bs []Port) (a, b Port, found bool) {
	for _, a := range as {
		for _, b := range bs {
			if a.Overlaps(b) {
				return a, b, true
			}
		}
	}
	return Port{}, Port{}, false
}
