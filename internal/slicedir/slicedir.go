// Package slicedir resolves slices and nodes to the ssh endpoints of their
// slivers, from PLC's registry: the address, port and host key of each node.
// Used by the ssh client commands and the portal.
package slicedir

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/tags"
	"golang.org/x/crypto/ssh"
)

// DefaultPort is the SSH port of a node whose record has no ssh_port tag.
const DefaultPort = 22

// PortTag is the node tag giving the port of the node's SSH gateway when
// it is not 22 (emulated nodes sharing one host use it).
const PortTag = tags.SSHPort

// Node is where a sliver can be reached, as PLC describes its node.
type Node struct {
	Hostname string        // the node's name at PLC; also the known_hosts alias
	Addr     string        // host:port to dial
	HostKey  ssh.PublicKey // the node's host key reported to PLC; nil if none
}

// Directory resolves slices and nodes to ssh endpoints.
type Directory interface {
	// Node returns the node with the given hostname.
	Node(ctx context.Context, hostname string) (Node, error)
	// SliceNodes returns the nodes of a slice, sorted by hostname.
	SliceNodes(ctx context.Context, slice string) ([]Node, error)
}

// RegistryDirectory implements Directory over PLC's registry (the REST
// client in the CLI). A node's address is its primary interface's IP, or
// its hostname when it has none; its port is its ssh_port tag or 22; its
// host key is the node's ssh_rsa_key field (any key type, authorized_keys
// format).
type RegistryDirectory struct {
	Reg core.Registry
}

var nodeFields = []string{"node_id", "hostname", "ssh_rsa_key", "interface_ids"}

// Node implements Directory.
func (d RegistryDirectory) Node(ctx context.Context, hostname string) (Node, error) {
	recs, err := d.Reg.Get(ctx, nil, core.Node, &core.Filter{IsList: true, Names: []string{hostname}}, nodeFields)
	if err != nil {
		return Node{}, fmt.Errorf("node %s: %w", hostname, err)
	}
	if len(recs) == 0 {
		return Node{}, core.Errorf(core.NotFound, "no node %q at PLC", hostname)
	}
	nodes, err := d.nodes(ctx, recs)
	if err != nil {
		return Node{}, err
	}
	return nodes[0], nil
}

// SliceNodes implements Directory.
func (d RegistryDirectory) SliceNodes(ctx context.Context, slice string) ([]Node, error) {
	recs, err := d.Reg.Get(ctx, nil, core.Slice, &core.Filter{IsList: true, Names: []string{slice}}, []string{"slice_id", "name", "node_ids"})
	if err != nil {
		return nil, fmt.Errorf("slice %s: %w", slice, err)
	}
	if len(recs) == 0 {
		return nil, core.Errorf(core.NotFound, "no slice %q at PLC", slice)
	}
	ids := int64s(recs[0]["node_ids"])
	if len(ids) == 0 {
		return nil, nil
	}
	nrecs, err := d.Reg.Get(ctx, nil, core.Node, &core.Filter{IsList: true, IDs: ids}, nodeFields)
	if err != nil {
		return nil, fmt.Errorf("nodes of slice %s: %w", slice, err)
	}
	return d.nodes(ctx, nrecs)
}

// nodes turns node records into Nodes: primary interface IPs and ssh_port
// tags are fetched in one call each.
func (d RegistryDirectory) nodes(ctx context.Context, recs []core.Record) ([]Node, error) {
	var ifIDs, nodeIDs []int64
	var nodeIDAny []any
	for _, r := range recs {
		if ids := int64s(r["interface_ids"]); len(ids) > 0 {
			ifIDs = append(ifIDs, ids[0]) // the primary interface comes first
		}
		id, _ := r["node_id"].(int64)
		nodeIDs = append(nodeIDs, id)
		nodeIDAny = append(nodeIDAny, id)
	}
	ips := map[int64]string{}
	if len(ifIDs) > 0 {
		irecs, err := d.Reg.Get(ctx, nil, core.Interface, &core.Filter{IsList: true, IDs: ifIDs}, []string{"interface_id", "node_id", "ip", "is_primary"})
		if err != nil {
			return nil, fmt.Errorf("node interfaces: %w", err)
		}
		for _, ir := range irecs {
			nid, _ := ir["node_id"].(int64)
			ip, _ := ir["ip"].(string)
			if primary, _ := ir["is_primary"].(bool); primary && ip != "" {
				ips[nid] = ip
			}
		}
	}
	ports := map[int64]int{}
	trecs, err := d.Reg.Get(ctx, nil, core.NodeTag, &core.Filter{Terms: []core.Term{
		{Field: "node_id", Op: core.Eq, Value: nodeIDAny},
		{Field: "tagname", Op: core.Eq, Value: PortTag},
	}}, []string{"node_id", "value"})
	if err != nil {
		return nil, fmt.Errorf("node tags: %w", err)
	}
	for _, tr := range trecs {
		nid, _ := tr["node_id"].(int64)
		v, _ := tr["value"].(string)
		p, err := tags.MustLookup(PortTag).Int(v)
		if err != nil {
			return nil, fmt.Errorf("node %d: %w", nid, err)
		}
		ports[nid] = int(p)
	}
	out := make([]Node, 0, len(recs))
	for i, r := range recs {
		host, _ := r["hostname"].(string)
		n := Node{Hostname: host}
		addr := host
		if ip := ips[nodeIDs[i]]; ip != "" {
			addr = ip
		}
		port := DefaultPort
		if p, ok := ports[nodeIDs[i]]; ok {
			port = p
		}
		n.Addr = net.JoinHostPort(addr, strconv.Itoa(port))
		if k, _ := r["ssh_rsa_key"].(string); k != "" {
			pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k))
			if err != nil {
				return nil, core.FieldErrorf("ssh_rsa_key", "node %s: unparseable host key at PLC: %v", host, err)
			}
			n.HostKey = pk
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Hostname < out[j].Hostname })
	return out, nil
}

func int64s(v any) []int64 {
	switch x := v.(type) {
	case []int64:
		return x
	case []any:
		var out []int64
		for _, e := range x {
			switch n := e.(type) {
			case int64:
				out = append(out, n)
			case float64:
				out = append(out, int64(n))
			}
		}
		return out
	}
	return nil
}
