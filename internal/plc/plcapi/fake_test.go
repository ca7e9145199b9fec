package plcapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/planetlab/pl/internal/core"
)

// fakeRegistry is a small in-memory core.Registry for transport tests: it
// records the operations it was asked to do as text lines.
type fakeRegistry struct {
	mu  sync.Mutex
	ops []string
}

var _ core.Registry = (*fakeRegistry)(nil)

const fakeNodeKey = "k3y-of-node-7"

func (f *fakeRegistry) log(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, fmt.Sprintf(format, args...))
}

func (f *fakeRegistry) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ops := f.ops
	f.ops = nil
	return ops
}

func (f *fakeRegistry) Authenticate(ctx context.Context, cred core.Credentials, roles []string) (*core.Caller, error) {
	var c *core.Caller
	switch {
	case cred.Method == "anonymous":
		return &core.Caller{Kind: core.Anonymous}, nil
	case cred.Method == "password" && cred.Username == "admin@example.org" && cred.Password == "secret":
		c = &core.Caller{Kind: core.PersonCaller, PersonID: 2, Email: cred.Username, Roles: []string{"admin", "pi"}}
	case cred.Method == "password" && cred.Username == "user@example.org" && cred.Password == "secret":
		c = &core.Caller{Kind: core.PersonCaller, PersonID: 5, Email: cred.Username, Roles: []string{"user"}}
	case cred.Method == "session" && cred.Session == "sess-user":
		c = &core.Caller{Kind: core.PersonCaller, PersonID: 5, Roles: []string{"user"}, Session: cred.Session}
		for _, r := range c.Roles {
			if slices.Contains(roles, r) {
				return c, nil
			}
		}
		return nil, core.Errorf(core.Forbidden, "SessionAuth: missing role")
	case cred.Method == "session" && cred.Session == "sess-node":
		return &core.Caller{Kind: core.NodeCaller, NodeID: 7, Roles: []string{"node"}, Session: cred.Session}, nil
	default:
		return nil, core.Errorf(core.Unauthenticated, "no such account or bad password")
	}
	for _, r := range c.Roles {
		if slices.Contains(roles, r) {
			return c, nil
		}
	}
	return nil, core.Errorf(core.Unauthenticated, "missing role")
}

func (f *fakeRegistry) VerifyNodeHMAC(ctx context.Context, nodeID int64, value, message string) (*core.Caller, error) {
	f.log("hmac %d %s", nodeID, message)
	if nodeID != 7 {
		return nil, core.Errorf(core.Unauthenticated, "BootAuth: No such node")
	}
	m := hmac.New(sha1.New, []byte(fakeNodeKey))
	m.Write([]byte(message))
	if hex.EncodeToString(m.Sum(nil)) != value {
		return nil, core.Errorf(core.Unauthenticated, "BootAuth: Call could not be authenticated")
	}
	return &core.Caller{Kind: core.NodeCaller, NodeID: 7, Roles: []string{"node"}}, nil
}

func (f *fakeRegistry) OpRoles(op string) []string { return nil }

func (f *fakeRegistry) CreateSession(ctx context.Context, c *core.Caller, ttl time.Duration) (core.SessionInfo, error) {
	f.log("session %v", ttl)
	return core.SessionInfo{ID: "new-session"}, nil
}

func (f *fakeRegistry) DeleteSession(ctx context.Context, c *core.Caller, id string) error {
	f.log("delete session %s", id)
	return nil
}

func (f *fakeRegistry) Resolve(ctx context.Context, c *core.Caller, class core.Class, ref any) (int64, error) {
	switch r := ref.(type) {
	case int64:
		if r == 404 {
			return 0, core.Errorf(core.NotFound, "No such %s %d", class, r)
		}
		return r, nil
	case string:
		if r == "missing" {
			return 0, core.Errorf(core.NotFound, "No such %s %q", class, r)
		}
		return int64(1000 + len(r)), nil
	}
	return 0, fmt.Errorf("resolve: unexpected ref %T", ref)
}

func (f *fakeRegistry) Get(ctx context.Context, c *core.Caller, class core.Class, flt *core.Filter, fields []string) ([]core.Record, error) {
	f.log("get %s %+v %v", class, flt, fields)
	switch class {
	case core.BootState:
		return []core.Record{{"boot_state": "boot"}, {"boot_state": "reinstall"}}, nil
	case core.Node:
		return []core.Record{{"node_id": int64(7), "hostname": "n7.example.org", "boot_state": "boot", "model": nil}}, nil
	case core.Interface:
		return []core.Record{{"interface_id": int64(3), "ip": "10.0.0.7", "gateway": nil}}, nil
	case core.Slice:
		return nil, errors.New("database is on fire") // unexpected: HTTP 500
	}
	return []core.Record{{"id": int64(1), "name": "x", "f": 1.5, "b": true, "l": []int64{1, 2}}}, nil
}

func (f *fakeRegistry) Add(ctx context.Context, c *core.Caller, class core.Class, fields core.Record) (int64, error) {
	f.log("add %s %v", class, sortedRecord(fields))
	if class == core.Site && fields["login_base"] == "bad base" {
		return 0, core.FieldErrorf("login_base", "must contain only [a-z0-9.]")
	}
	if class == core.InitScriptClass {
		return 0, &core.Error{Code: core.Internal, Message: "disk full", Err: errors.New("ENOSPC")}
	}
	return 42, nil
}

func (f *fakeRegistry) Update(ctx context.Context, c *core.Caller, class core.Class, id int64, fields core.Record) error {
	f.log("update %s %d %v", class, id, sortedRecord(fields))
	if class == core.Person && c.PersonID == 5 && id != 5 {
		return core.Errorf(core.Forbidden, "not allowed")
	}
	return nil
}

func (f *fakeRegistry) Delete(ctx context.Context, c *core.Caller, class core.Class, id int64) error {
	f.log("delete %s %d", class, id)
	return nil
}

func (f *fakeRegistry) Link(ctx context.Context, c *core.Caller, rel core.Relation, a, b int64, extra core.Record) error {
	f.log("link %s %d %d %v", rel, a, b, sortedRecord(extra))
	return nil
}

func (f *fakeRegistry) Unlink(ctx context.Context, c *core.Caller, rel core.Relation, a, b int64) error {
	f.log("unlink %s %d %d", rel, a, b)
	return nil
}

func (f *fakeRegistry) SetPersonPrimarySite(ctx context.Context, c *core.Caller, personID, siteID int64) error {
	f.log("primary %d %d", personID, siteID)
	return nil
}

func (f *fakeRegistry) BlacklistKey(ctx context.Context, c *core.Caller, keyID int64) error {
	f.log("blacklist %d", keyID)
	return nil
}

func (f *fakeRegistry) RenewSlice(ctx context.Context, c *core.Caller, sliceID, expires int64) (int64, error) {
	return expires, nil
}

func (f *fakeRegistry) AddLeases(ctx context.Context, c *core.Caller, nodeIDs []int64, sliceID, from, until int64) ([]int64, []string, error) {
	f.log("leases %v %d %d %d", nodeIDs, sliceID, from, until)
	return []int64{9}, []string{"node 3 busy"}, nil
}

func (f *fakeRegistry) IssueJoinToken(ctx context.Context, c *core.Caller, nodeID int64) (string, error) {
	return "", core.Errorf(core.Unimplemented, "no")
}

func (f *fakeRegistry) JoinNode(ctx context.Context, nodeID int64, secret, sshHostKey string) (string, error) {
	return "", core.Errorf(core.Unimplemented, "no")
}

func (f *fakeRegistry) NodeState(ctx context.Context, c *core.Caller, nodeID int64) (*core.NodeState, error) {
	f.log("state %d", nodeID)
	hrn := "plc.site.n7"
	return &core.NodeState{
		Timestamp: 1700000000, NodeID: nodeID, Hostname: "n7.example.org",
		Interfaces:  []core.Record{{"interface_id": int64(3), "ip": "10.0.0.7"}},
		Groups:      []string{"g1"},
		InitScripts: []core.InitScript{{InitScriptID: 1, Name: "i", Enabled: true, Script: "#!/bin/sh"}},
		Accounts:    []core.Account{{Name: "root", Keys: []string{"ssh-rsa AAA"}}},
		Slivers: []core.Sliver{{Name: "site_s", SliceID: 11, Instantiation: "plc-instantiated", Expires: 1800000000,
			Keys:       []core.SliverKey{{KeyType: "ssh", Key: "ssh-rsa BBB"}},
			Attributes: []core.Attribute{{TagName: "vref", Value: "f39"}}, GetSliceFamily: "f39-f39-x86_64",
			VLinks: []core.VLink{{Name: "ab", VNI: 705, Local: "10.200.0.1/30", Remote: "10.200.0.2", PeerNode: "n8.example.org",
				PeerAddr: "10.0.0.8", RateKbit: 20000, DelayUS: 5000, LossPPM: 100},
				{Name: "core", VNI: 767, Local: "10.200.0.250/29", RateKbit: 5000,
					Peers: []core.VLinkPeer{{Node: "n8.example.org", Addr: "10.0.0.8", Private: "10.200.0.249"}}}}}},
		HRN: &hrn, ReservationPolicy: "none", LeaseGranularity: 3600,
	}, nil
}

func (f *fakeRegistry) WatchNodeState(ctx context.Context, c *core.Caller, nodeID int64, version string) (<-chan struct{}, error) {
	return nil, core.Errorf(core.Unimplemented, "no")
}

func (f *fakeRegistry) ReportNode(ctx context.Context, c *core.Caller, nodeID int64, r core.NodeReport) error {
	f.log("report %d %q %q", nodeID, r.RunLevel, r.SSHHostKey)
	return nil
}

func sortedRecord(r core.Record) string {
	if r == nil {
		return "{}"
	}
	keys := make([]string, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%v", k, r[k])
	}
	return "{" + strings.Join(parts, " ") + "}"
}
