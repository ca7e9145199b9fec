package dev

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/planetlab/pl/internal/client"
	"github.com/planetlab/pl/internal/core"
)

// Federation is two peered planets (pl dev --plcs 2, docs/federation.md):
// PLC A with its sites and nodes, PLC B with other sites and nodes on a
// WAN of its own, each the other's peer. The demo slice is A's and spans
// the nodes of both.
type Federation struct {
	A, B *Planet
}

// PeerName is the name each PLC of a federation gives the other.
func PeerName(p *Planet) string { return "plc-" + p.Sites[0].LoginBase }

// secondConfig derives B's configuration from A's: instance id + "b", the
// next /16 below A's WAN, the next PLC port, the other half of the demo
// sites, a data directory of its own.
func secondConfig(a Config) (Config, error) {
	b := a
	if len(a.ID) > 3 {
		return b, fmt.Errorf("--id %q: at most 3 characters with --plcs 2 (the second PLC's id appends \"b\")", a.ID)
	}
	b.ID = a.ID + "b"
	w := a.WAN.Addr().As4()
	if w[1] == 0 {
		return b, fmt.Errorf("--wan %s: no /16 below it for the second PLC", a.WAN)
	}
	w[1]--
	b.WAN = netip.PrefixFrom(netip.AddrFrom4(w), 16)
	b.PLCPort = a.PLCPort + 1
	half := len(DemoSites) / 2
	b.Sites = append(append([]DemoSite{}, DemoSites[half:]...), DemoSites[:half]...)
	if a.Nodes > half {
		return b, fmt.Errorf("--nodes %d: at most %d with --plcs 2 (the PLCs' sites must differ)", a.Nodes, half)
	}
	if a.DataDir != "" {
		b.DataDir = filepath.Join(a.DataDir, "plc-b")
	}
	b.NoDemo = true
	return b, nil
}

// UpFederation brings up two planets and peers them. On failure
// everything created so far is removed.
func UpFederation(ctx context.Context, cfg Config) (_ *Federation, err error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	cfgB, err := secondConfig(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.DataDir != "" {
		cfg.DataDir = filepath.Join(cfg.DataDir, "plc-a")
	}
	demo := !cfg.NoDemo
	cfg.NoDemo = true
	f := &Federation{}
	defer func() {
		if err != nil {
			if cerr := f.Close(); cerr != nil {
				cfg.Log.Error("cleanup after failed start", "err", cerr)
			}
		}
	}()
	if f.A, err = Up(ctx, cfg); err != nil {
		return nil, fmt.Errorf("PLC A: %w", err)
	}
	if f.B, err = Up(ctx, cfgB); err != nil {
		return nil, fmt.Errorf("PLC B: %w", err)
	}
	if err := Peer(ctx, f.A, f.B); err != nil {
		return nil, err
	}
	if demo {
		var hosts []string
		for _, n := range f.B.Nodes {
			hosts = append(hosts, n.Hostname)
		}
		if err := f.A.setupDemoWith(ctx, hosts); err != nil {
			return nil, fmt.Errorf("demo slice: %w", err)
		}
		cb, err := f.B.AdminClient(ctx)
		if err != nil {
			return nil, err
		}
		if err := f.B.writeKnownHosts(ctx, cb); err != nil {
			return nil, err
		}
		// The demo's service runs on B's nodes too (its tags travel).
		if err := f.B.waitHTTP(ctx, DemoPort, 2*time.Minute); err != nil {
			return nil, fmt.Errorf("demo slice on PLC B's nodes: %w", err)
		}
	}
	return f, nil
}

// Peer makes a and b peers, as their admins would (pl peer add on each
// side with the other's URL, key and certificate fingerprint), and has
// each refresh the other once.
func Peer(ctx context.Context, a, b *Planet) error {
	ca, err := a.AdminClient(ctx)
	if err != nil {
		return err
	}
	cb, err := b.AdminClient(ctx)
	if err != nil {
		return err
	}
	type side struct {
		p   *Planet
		reg *client.Client
	}
	sides := []side{{a, ca}, {b, cb}}
	ids := make([]int64, 2)
	for i, s := range sides {
		other := sides[1-i]
		key, err := other.reg.PeerKey(ctx)
		if err != nil {
			return fmt.Errorf("the key of %s: %w", PeerName(other.p), err)
		}
		if ids[i], err = s.reg.Add(ctx, nil, core.Peer, core.Record{
			"peername": PeerName(other.p), "peer_url": other.p.PLCURL + "/", "key": key, "cacert": other.p.Fingerprint,
		}); err != nil {
			return fmt.Errorf("AddPeer %s at %s: %w", PeerName(other.p), PeerName(s.p), err)
		}
	}
	for i, s := range sides {
		if _, err := s.reg.RefreshPeer(ctx, nil, ids[i]); err != nil {
			return fmt.Errorf("%s refreshing %s: %w", PeerName(s.p), PeerName(sides[1-i].p), err)
		}
	}
	return nil
}

// Close stops both planets.
func (f *Federation) Close() error {
	var errs []error
	for _, p := range []*Planet{f.B, f.A} {
		if p != nil {
			errs = append(errs, p.Close())
		}
	}
	return errors.Join(errs...)
}

// PrintSummary prints both planets' summaries and how they peer.
func (f *Federation) PrintSummary(w io.Writer) {
	fmt.Fprintf(w, "\n== PLC A (%s), peer %q of PLC B\n", f.A.PLCURL, PeerName(f.A))
	f.A.PrintSummary(w)
	fmt.Fprintf(w, "\n== PLC B (%s), peer %q of PLC A\n", f.B.PLCURL, PeerName(f.B))
	f.B.PrintSummary(w)
	fmt.Fprintf(w, "\nThe PLCs peer (pl peer list at either). A's demo slice also runs on B's nodes, with its service on port %d.\n", DemoPort)
}
