package tags

import (
	"fmt"
	"strings"
)

// Markdown renders the table as the body of docs/tags.md.
func Markdown() string {
	var b strings.Builder
	b.WriteString(`# Tags

<!-- Generated from internal/core/tags (the one table of tags):
     go test ./internal/core/tags -update. Do not edit by hand. -->

Every tag this implementation knows. PLC seeds a tag type for each, refuses a
value outside the kind and range below when the tag is written (REST 400,
PLCAPI fault 102, naming the tag and the reason), and the node manager and the
sliver runtime accept exactly the same values. Tags not listed here (an admin
may add tag types) carry any text. "Set by" lists who may write the tag besides
admins. For single-valued tags the last value wins.

`)
	sections := []struct{ title, prefix string }{
		{"Slice tags", "slice/"}, {"General tags", "general"}, {"Node tags", "node/"},
		{"Interface tags", "interface/"}, {"Person tags", "person/"}, {"Site tags", "site/"},
	}
	for _, s := range sections {
		fmt.Fprintf(&b, "## %s\n\n| tag | category | value | default | set by | meaning |\n|---|---|---|---|---|---|\n", s.title)
		for _, t := range table {
			if !strings.HasPrefix(t.Category, s.prefix) {
				continue
			}
			def := t.Default
			if def != "" {
				def = "`" + def + "`"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s |\n", t.Name, t.Category, t.valueDoc(), def, setBy(t.Roles), t.meaning())
		}
		b.WriteString("\n")
	}
	return b.String()
}

func (t Tag) valueDoc() string {
	switch t.Kind {
	case Int:
		r := fmt.Sprintf("%d..%d", t.Min, t.Max)
		if t.ZeroMeans != "" && t.Min > 0 {
			r = "0 or " + r
		}
		if t.Unit != "" {
			r += " " + t.Unit
		}
		if t.ZeroMeans != "" {
			r += fmt.Sprintf(", 0 = %s", t.ZeroMeans)
		}
		return "integer " + r
	case Ports:
		return "ports: `tcp/80`, `udp/5000-5010`, `8080` (tcp), comma or space separated, at most 64"
	case Host:
		return "route: `<host>,<port>[,tls=<port>][,proxy]`, e.g. `www.example.org,8080,tls=8443`"
	case Image:
		return "image name"
	case Topology:
		return "topology: `prefix 10.200.0.0/24; ab n1.org n2.org rate=20mbit delay=10ms loss=0.5%; lan core n1.org n2.org n3.org rate=50mbit`, statements separated by `;` or new lines"
	case IPv6Prefix:
		return "IPv6 prefix: a /64 or shorter of 2000::/3 or fc00::/7, no host bits, e.g. `2001:db8:7::/64`"
	case Enum:
		return "one of " + strings.Join(t.Values, ", ")
	case VsysOp:
		return "operation: `<op>` or `<op>:<scope>`, e.g. `sensor`, `dataset:census`"
	}
	return "text"
}

func (t Tag) meaning() string {
	m := t.Doc
	if t.Multi {
		m += " (repeatable: every value applies)"
	}
	return m
}

func setBy(roles []string) string {
	if len(roles) == 0 {
		return "admin"
	}
	return "admin, " + strings.Join(roles, ", ")
}
