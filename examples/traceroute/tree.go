package traceroute

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
)

// Tree is the merged view of many paths toward one target: the root is
// the target, each node's children are the hops one step further from it,
// and the leaves are the servers. Two paths share a tree node while they
// pass through the same addresses on the way to the target.
//
// Three kinds of hop are never shared, since their address does not name
// one router: a "*" hop (no answer), the first hop (the sliver's gateway,
// the node itself, at the same private address on every node), and
// anything beyond a target that did not answer, which hangs below the
// root's "unreached" child.
type Tree struct {
	Label    string // an address, "*", a server name, or the unreached marker
	Server   bool   // a leaf naming a server
	Children []*Tree
	key      string
}

// Unreached labels the root's child that holds the paths whose target
// never answered.
const Unreached = "? (target not reached)"

func (t *Tree) child(key, label string, server bool) *Tree {
	for _, c := range t.Children {
		if c.key == key {
			return c
		}
	}
	c := &Tree{Label: label, Server: server, key: key}
	t.Children = append(t.Children, c)
	return c
}

// Merge builds the tree of paths toward target. Paths to another target
// are skipped (their servers are returned).
func Merge(target netip.Addr, paths []Path) (root *Tree, skipped []string) {
	root = &Tree{Label: target.String(), key: "target"}
	for _, p := range paths {
		if p.Target != target {
			skipped = append(skipped, p.Server)
			continue
		}
		at, hops := root, p.Hops
		if p.Reached {
			hops = hops[:len(hops)-1]
		} else {
			for len(hops) > 0 && !hops[len(hops)-1].Addr.IsValid() {
				hops = hops[:len(hops)-1]
			}
			at = root.child("unreached", Unreached, false)
		}
		for i := len(hops) - 1; i >= 0; i-- {
			h := hops[i]
			switch {
			case !h.Addr.IsValid():
				at = at.child(fmt.Sprintf("*/%s/%d", p.Server, h.TTL), "*", false)
			case h.TTL == 1:
				at = at.child("gw/"+p.Server+"/"+h.Addr.String(), h.Addr.String(), false)
			default:
				at = at.child(h.Addr.String(), h.Addr.String(), false)
			}
		}
		at.child("server/"+p.Server, p.Server, true)
	}
	root.sort()
	return root, skipped
}

func (t *Tree) sort() {
	slices.SortFunc(t.Children, func(a, b *Tree) int {
		if a.Server != b.Server { // servers first, then hops
			if a.Server {
				return -1
			}
			return 1
		}
		if c := compareLabels(a.Label, b.Label); c != 0 {
			return c
		}
		return strings.Compare(a.key, b.key)
	})
	for _, c := range t.Children {
		c.sort()
	}
}

// compareLabels orders addresses numerically, the rest as text after them.
func compareLabels(a, b string) int {
	x, errA := netip.ParseAddr(a)
	y, errB := netip.ParseAddr(b)
	switch {
	case errA == nil && errB == nil:
		return x.Compare(y)
	case errA == nil:
		return -1
	case errB == nil:
		return 1
	}
	return strings.Compare(a, b)
}

// Servers returns the servers below t, in tree order.
func (t *Tree) Servers() []string {
	var out []string
	var walk func(*Tree)
	walk = func(n *Tree) {
		if n.Server {
			out = append(out, n.Label)
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(t)
	return out
}

// Render draws the tree, the target on top:
//
//	10.99.3.11 (target)
//	└── 10.99.254.14
//	    ├── 10.99.254.5
//	    │   └── 10.99.1.1
//	    │       └── 10.42.0.5
//	    │           └── [n1.princeton.example]
func (t *Tree) Render(w io.Writer) error {
	var b strings.Builder
	b.WriteString(t.Label + " (target)\n")
	var walk func(n *Tree, indent string)
	walk = func(n *Tree, indent string) {
		for i, c := range n.Children {
			branch, next := "├── ", "│   "
			if i == len(n.Children)-1 {
				branch, next = "└── ", "    "
			}
			label := c.Label
			if c.Server {
				label = "[" + label + "]"
			}
			b.WriteString(indent + branch + label + "\n")
			walk(c, indent+next)
		}
	}
	walk(t, "")
	_, err := io.WriteString(w, b.String())
	return err
}
