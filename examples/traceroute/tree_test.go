package traceroute

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// path builds a Path from addresses ("*" for a silent hop); the last one
// is the target when reached.
func path(server, target string, reached bool, hops ...string) Path {
	p := Path{Server: server, Target: netip.MustParseAddr(target), Reached: reached}
	for i, h := range hops {
		hop := Hop{TTL: i + 1, RTTs: []time.Duration{0}}
		if h != "*" {
			hop.Addr = netip.MustParseAddr(h)
			hop.RTTs[0] = time.Millisecond
		}
		p.Hops = append(p.Hops, hop)
	}
	return p
}

func TestMerge(t *testing.T) {
	target := netip.MustParseAddr("10.99.3.11")
	paths := []Path{
		// Two nodes of one site share their site router, then the core.
		path("n1", "10.99.3.11", true, "10.42.0.5", "10.99.1.1", "10.99.254.5", "10.99.254.14", "10.99.3.11"),
		path("n4", "10.99.3.11", true, "10.42.0.5", "10.99.1.1", "10.99.254.5", "10.99.254.14", "10.99.3.11"),
		// Another site joins at the target's site router.
		path("n2", "10.99.3.11", true, "10.42.0.5", "10.99.2.1", "10.99.254.9", "10.99.254.14", "10.99.3.11"),
		// The target's own node: one hop.
		path("n3", "10.99.3.11", true, "10.99.3.11"),
		// A silent router is never merged with another.
		path("n5", "10.99.3.11", true, "10.42.0.5", "*", "10.99.254.14", "10.99.3.11"),
		path("n6", "10.99.3.11", true, "10.42.0.5", "*", "10.99.254.14", "10.99.3.11"),
		// The target never answered: trailing stars go.
		path("n7", "10.99.3.11", false, "10.42.0.5", "10.99.7.1", "*", "*"),
		// Another target: not in this tree.
		path("n8", "10.99.9.9", true, "10.42.0.5", "10.99.9.9"),
	}
	root, skipped := Merge(target, paths)
	if !slices.Equal(skipped, []string{"n8"}) {
		t.Errorf("skipped %v, want [n8]", skipped)
	}
	var b strings.Builder
	root.Render(&b)
	want := `10.99.3.11 (target)
├── [n3]
├── 10.99.254.14
│   ├── 10.99.254.5
│   │   └── 10.99.1.1
│   │       ├── 10.42.0.5
│   │       │   └── [n1]
│   │       └── 10.42.0.5
│   │           └── [n4]
│   ├── 10.99.254.9
│   │   └── 10.99.2.1
│   │       └── 10.42.0.5
│   │           └── [n2]
│   ├── *
│   │   └── 10.42.0.5
│   │       └── [n5]
│   └── *
│       └── 10.42.0.5
│           └── [n6]
└── ? (target not reached)
    └── 10.99.7.1
        └── 10.42.0.5
            └── [n7]
`
	if b.String() != want {
		t.Errorf("tree:\n%s\nwant:\n%s", b.String(), want)
	}
	if got := root.Servers(); !slices.Equal(got, []string{"n3", "n1", "n4", "n2", "n5", "n6", "n7"}) {
		t.Errorf("servers in tree order: %v", got)
	}
	// Merging is independent of the order of the answers.
	slices.Reverse(paths)
	root2, _ := Merge(target, paths)
	var b2 strings.Builder
	root2.Render(&b2)
	if b2.String() != want {
		t.Errorf("reversed input gives another tree:\n%s", b2.String())
	}
}

func TestMergeEmpty(t *testing.T) {
	root, _ := Merge(netip.MustParseAddr("10.0.0.1"), nil)
	var b strings.Builder
	root.Render(&b)
	if b.String() != "10.0.0.1 (target)\n" || len(root.Servers()) != 0 {
		t.Errorf("empty tree: %q", b.String())
	}
}
