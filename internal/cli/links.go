package cli

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/vlinks"
)

// linkProps are the properties `pl slice links` gives every link.
type linkProps struct{ rate, delay, loss string }

func (p linkProps) String() string {
	var s []string
	for _, kv := range [][2]string{{"rate", p.rate}, {"delay", p.delay}, {"loss", p.loss}} {
		if kv[1] != "" {
			s = append(s, kv[0]+"="+kv[1])
		}
	}
	return strings.Join(s, " ")
}

// defaultLinksPrefix is the private range `pl slice links` uses without
// --prefix: a /24 of 10.128.0.0/9 chosen by the slice id, so slices using
// the default do not overlap while their ids differ modulo 32768.
func defaultLinksPrefix(sliceID int64) netip.Prefix {
	n := uint32(sliceID) % (1 << 15)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(128 + n>>8), byte(n), 0}), 24)
}

// linksValue composes a vlinks value of one shape through hosts, in
// order: "ring" (link r<i> joins host i and host i+1, the last joins the
// last host and the first; two hosts make one link) or "lan" (one LAN of
// them all, named name). It is checked with the tag's grammar and
// returned in its canonical form.
func linksValue(shape, name string, prefix netip.Prefix, hosts []string, p linkProps) (string, error) {
	stmts := []string{"prefix " + prefix.String()}
	switch shape {
	case "ring":
		if len(hosts) < 2 {
			return "", usagef("a ring needs at least 2 nodes, got %d", len(hosts))
		}
		n := len(hosts)
		if n == 2 {
			n = 1 // a ring of two is one link
		}
		for i := range n {
			stmts = append(stmts, strings.TrimSpace(fmt.Sprintf("r%d %s %s %s", i+1, hosts[i], hosts[(i+1)%len(hosts)], p)))
		}
	case "lan":
		stmts = append(stmts, strings.TrimSpace(fmt.Sprintf("lan %s %s %s", name, strings.Join(hosts, " "), p)))
	default:
		return "", usagef("unknown shape %q: want ring or lan", shape)
	}
	top, err := vlinks.Parse(strings.Join(stmts, "; "))
	if err != nil {
		return "", err
	}
	return top.String(), nil
}

// sliceLinksCmd sets a slice's whole topology (the vlinks tag) to a ring
// or a LAN through the nodes given.
func sliceLinksCmd() *cobra.Command {
	var prefix, name string
	var props linkProps
	var printOnly bool
	cmd := &cobra.Command{
		Use:   "links <slice> ring|lan <node>... [--prefix P] [--rate R] [--delay D] [--loss L]",
		Short: "Set a slice's virtual topology (the vlinks tag) to a ring or a LAN of its nodes",
		Long: `Compose the slice's vlinks tag (docs/networks.md) and set it, replacing any
topology it had. "ring" joins the nodes in the order given, the last back to
the first, with links named r1, r2, ...; "lan" puts them all on one LAN
(--name, default lan0). Every link gets --rate, --delay and --loss (the tag's
syntax: 20mbit, 10ms, 0.5%). The private range is --prefix, by default a /24
of 10.128.0.0/9 chosen by the slice's id. --print shows the value without
setting it.`,
		Example: `  pl slice links princeton_isp ring n1.example.org n2.example.org n3.example.org n4.example.org --delay 10ms --rate 20mbit
  pl slice links princeton_isp lan n1.example.org n2.example.org n3.example.org --name core`,
		Args: cobra.MinimumNArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			sid, err := e.resolve(core.Slice, args[0])
			if err != nil {
				return err
			}
			p := defaultLinksPrefix(sid)
			if prefix != "" {
				if p, err = netip.ParsePrefix(prefix); err != nil {
					return usagef("--prefix %q is not a prefix (a.b.c.d/n)", prefix)
				}
			}
			value, err := linksValue(args[1], name, p, args[2:], props)
			if err != nil {
				return err
			}
			if printOnly {
				_, err := fmt.Fprintln(e.out, value)
				return err
			}
			if err := e.setSliceTag(args[0], sid, vlinks.Tag, value); err != nil {
				return err
			}
			return e.done(fmt.Sprintf("%s %s = %s", args[0], vlinks.Tag, value))
		},
	}
	cmd.Flags().StringVar(&prefix, "prefix", "", "the slice's private range (default: a /24 of 10.128.0.0/9 by slice id)")
	cmd.Flags().StringVar(&name, "name", "lan0", "the LAN's name (its interface in the slivers)")
	cmd.Flags().StringVar(&props.rate, "rate", "", "each link's rate (20mbit; default 10mbit)")
	cmd.Flags().StringVar(&props.delay, "delay", "", "each link's one-way delay (10ms)")
	cmd.Flags().StringVar(&props.loss, "loss", "", "each link's loss (0.5%)")
	cmd.Flags().BoolVar(&printOnly, "print", false, "print the value, do not set it")
	return cmd
}

// setSliceTag sets the slice-wide value of a tag: it replaces the one
// value there is, or adds it.
func (e *env) setSliceTag(slice string, sid int64, tag, value string) error {
	existing, err := e.scopedTags(sid, tag, core.Record{"node_id": nil, "nodegroup_id": nil})
	if err != nil {
		return err
	}
	switch len(existing) {
	case 0:
		ttid, err := e.resolve(core.TagType, tag)
		if err != nil {
			return err
		}
		_, err = e.cl.Add(e.ctx, nil, core.SliceTag, core.Record{"slice_id": sid, "tag_type_id": ttid, "value": value})
		return err
	case 1:
		tid, _ := existing[0]["slice_tag_id"].(int64)
		return e.cl.Update(e.ctx, nil, core.SliceTag, tid, core.Record{"value": value})
	default:
		return core.Errorf(core.Conflict, "%s has %d values of %s; unset it first", slice, len(existing), tag)
	}
}
