package service

import (
	"context"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/core"
)

// expectedRoles is written independently from reference plcapi.md §2.1
// (A admin, P pi, U user, T tech, N node, an anonymous). Where §2.1 names a
// method without its roles, the line says what we decided and why.
const expectedRoles = `
AddSite A
GetSites A P U T N an
UpdateSite A P
DeleteSite A
AddSiteAddress A P
AddSiteTag A P T U
UpdateSiteTag A P T U
GetSiteTags A P U N
DeleteSiteTag A P U
GetAddresses A P U T N
UpdateAddress A P
DeleteAddress A P
AddAddressType A
UpdateAddressType A
DeleteAddressType A
GetAddressTypes A P U T N an      # unspecified: public lookup
AddAddressTypeToAddress A P
DeleteAddressTypeFromAddress A P
AddPerson A P
GetPersons A P U T N
UpdatePerson A P U T
DeletePerson A P U T
AddPersonToSite A
DeletePersonFromSite A
SetPersonPrimarySite A P U T
AddRoleToPerson A P
DeleteRoleFromPerson A P
AddPersonTag A P T U
GetPersonTags A P U T
UpdatePersonTag A P U
DeletePersonTag A P U
GetRoles A P U T N                 # unspecified: every authenticated caller
AddRole A
DeleteRole A
AddRoleToTagType A
DeleteRoleFromTagType A
AddPersonKey A P T U
GetKeys A P U T N
UpdateKey A P T U
DeleteKey A P T U
BlacklistKey A
GetKeyTypes A P U T N              # unspecified
AddKeyType A
DeleteKeyType A
AddNode A P T
UpdateNode A P T
DeleteNode A P T
GetNodes A P U T N an
AddNodeTag A P T U
UpdateNodeTag A P T U
DeleteNodeTag A P T U              # unspecified: as Add/Update
GetNodeTags A P U T N an           # unspecified: as GetNodes
GetNodeTypes A P U T N an
AddNodeType A
DeleteNodeType A
GetBootStates A P U T N an
AddBootState A
DeleteBootState A
ReportRunlevel N A
GetNodeFlavour A U N
AddInterface A P T
UpdateInterface A P T
DeleteInterface A P T
GetInterfaces A P U T N an
AddInterfaceTag A P T U            # unspecified: as node tags
UpdateInterfaceTag A P T U
DeleteInterfaceTag A P T U
GetInterfaceTags A P U T N
GetNetworkTypes A P U T N an
AddNetworkType A
DeleteNetworkType A
GetNetworkMethods A P U T N an
AddNetworkMethod A
DeleteNetworkMethod A
AddIlink A P T U
UpdateIlink A P T U
DeleteIlink A P U
GetIlinks A P U N
AddNodeGroup A
UpdateNodeGroup A
DeleteNodeGroup A
GetNodeGroups A P U T N an
AddConfFile A
UpdateConfFile A
DeleteConfFile A
GetConfFiles A N
AddConfFileToNode A
DeleteConfFileFromNode A
AddConfFileToNodeGroup A
DeleteConfFileFromNodeGroup A
AddPCU A P T
UpdatePCU A P T
DeletePCU A P T
GetPCUs A P T N
AddNodeToPCU A P T
DeleteNodeFromPCU A P T
AddSlice A P
GetSlices A P U N
UpdateSlice A P U
DeleteSlice A P U
AddSliceToNodes A P U
DeleteSliceFromNodes A P U
AddSliceToNodesWhitelist A
DeleteSliceFromNodesWhitelist A
AddPersonToSlice A P
DeletePersonFromSlice A P
AddSliceTag A P U N
UpdateSliceTag A P U N
DeleteSliceTag A P U T N
GetSliceTags A P U N
GetSliceInstantiations A P U T N an
AddSliceInstantiation A
DeleteSliceInstantiation A
GetSliceKeys A P U N
GetSliceFamily A U N
AddTagType A
UpdateTagType A
DeleteTagType A
GetTagTypes A P U T N
AddInitScript A
UpdateInitScript A
DeleteInitScript A
GetInitScripts A P U T N           # unspecified
AddLeases A P U
GetLeases A P U N an
UpdateLeases A P T U
DeleteLeases A P T U
GetLeaseGranularity A P U T N an
GetSliceTicket A P U                 # as the original; the ticket is Ed25519-signed (core/ticket)
AuthCheck A P U T N
GetSession A P U T N
DeleteSession A P U T N
GetSessions A
AddSession A
BootGetNodeDetails N
BootUpdateNode N
BootCheckAuthentication N
GetSlivers A N
GetPlcRelease A P U T N an
IssueJoinToken A P T               # ours: pl node register (pi/tech of the node's site)
WatchNodeState A N                 # ours: GetSlivers long poll
GetPlanetNodes A P U T N an        # ours: the planet table's node rows (public, as CoMon)
GetPlanetSlices A P U T            # ours: slice rows, filtered to readable slices
SelectNodes A P U                  # ours: add nodes chosen by measurement (as AddSliceToNodes)
GetMonitorActions A                # ours: the monitor's log
GetNotices A P U T                 # ours: notices to sites (pi/tech: their own sites) and to the caller
GetOutbox A                        # ours: the mail outbox (pl dev: open to all)
GetPlanetHistory A                 # ours: whole-planet samples for the admin overview
SuspendSlice A                     # ours: first-class enabled=0 with a reason
ResumeSlice A
AuditWho A P U T                   # ours: flows with an address (PIs: their sites'; others: their slices')
AuditSlice A P U T                 # ours: a slice's traffic summary (members, its site's PIs, admins)
RegisterPerson an                  # ours: sign-up (the account stays disabled until approved)
RequestPasswordReset A P U T an    # ours: the portal's forgot-password form (same answer for any address)
CompletePasswordReset A P U T an   # ours: the mailed reset link (its token is the credential)
ConfirmEmail A P U T an            # ours: the mailed verification link
VerifyPerson A
ResetPassword A
NotifyPersons A N
NotifySupport A
AddPeer A
GetPeers A P U N
UpdatePeer A
DeletePeer A
RefreshPeer A
GetPeerData A pe                   # pe: a peering PLC, by its Ed25519 signature (the original: GPG)
RefuseSlice A                      # ours: an admin refuses a peer's slice on local nodes
BindObjectToPeer A
UnBindObjectFromPeer A
DeleteAllPeerEntries A
GetPeerName A pe N
GENICertificate A P U T            # ours: the GENI slice authority certifies a person's key
GENICredential A P U T             # ours: ... and signs their user and slice credentials (slice: as UpdateSlice)
`

func parseExpected(t *testing.T) map[string][]string {
	letters := map[string]string{"A": core.RoleAdmin, "P": core.RolePI, "U": core.RoleUser, "T": core.RoleTech, "N": core.RoleNode, "an": core.RoleAnonymous, "pe": core.RolePeer}
	out := map[string][]string{}
	for _, line := range strings.Split(expectedRoles, "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		var roles []string
		for _, l := range f[1:] {
			r, ok := letters[l]
			if !ok {
				t.Fatalf("bad letter %q in %q", l, line)
			}
			roles = append(roles, r)
		}
		if _, dup := out[f[0]]; dup {
			t.Fatalf("duplicate %s", f[0])
		}
		out[f[0]] = roles
	}
	return out
}

func TestPolicyTableMatchesReference(t *testing.T) {
	want := parseExpected(t)
	for op, roles := range want {
		got := OpRoles(op)
		a, b := append([]string{}, roles...), append([]string{}, got...)
		sort.Strings(a)
		sort.Strings(b)
		if strings.Join(a, ",") != strings.Join(b, ",") {
			t.Errorf("%s: policy %v, reference %v", op, got, roles)
		}
	}
	for _, op := range Ops() {
		if _, ok := want[op]; !ok {
			t.Errorf("%s has roles in the policy but not in the expected table", op)
		}
	}
	// Every entry point of the service names an op of the table.
	for class, v := range verbs {
		for _, op := range v {
			if op != opNone && OpRoles(op.String()) == nil {
				t.Errorf("%s: %s has no role set", class, op)
			}
		}
	}
	for rel, v := range relOps {
		for _, op := range v {
			if OpRoles(op.String()) == nil {
				t.Errorf("%s: %s has no role set", rel, op)
			}
		}
	}
}

// TestOpsTable checks the typed table itself: every Op constant has a
// name, a role set and a distinct name, and names map back to their Op.
func TestOpsTable(t *testing.T) {
	seen := map[string]Op{}
	for op := opNone + 1; op < numOps; op++ {
		name := ops[op].name
		if name == "" || ops[op].roles == 0 {
			t.Errorf("Op %d has no name or no roles: %+v", int(op), ops[op])
			continue
		}
		if prev, dup := seen[name]; dup {
			t.Errorf("%s names both Op %d and Op %d", name, int(prev), int(op))
		}
		seen[name] = op
		if opByName[name] != op || op.String() != name {
			t.Errorf("%s: opByName %d, String %q", name, int(opByName[name]), op.String())
		}
	}
	if got := RolesOf(core.RolePI, core.RoleAdmin, "bogus"); got != rA|rP || !got.Has(core.RolePI) || got.Has(core.RoleUser) {
		t.Errorf("RolesOf(pi, admin, bogus) = %b", got)
	}
	if n := (rA | rN | rAn).Names(); strings.Join(n, ",") != "admin,node,anonymous" {
		t.Errorf("Names = %v", n)
	}
	if err := authorize(&core.Caller{Kind: core.PersonCaller, Roles: []string{core.RoleAdmin}}, opNone); core.ErrorCode(err) != core.Internal {
		t.Errorf("authorize(opNone) = %v", err)
	}
}

func isGateError(err error) bool {
	if err == nil {
		return false
	}
	m := err.Error()
	return core.ErrorCode(err) == core.Forbidden && strings.Contains(m, "role not allowed") ||
		core.ErrorCode(err) == core.Unauthenticated && strings.Contains(m, "needs an authenticated caller")
}

// TestRoleMatrix calls every service entry point as every role on
// nonexistent objects: callers whose role the operation allows get past
// the role gate (to NotFound or Invalid), the others are stopped by it.
func TestRoleMatrix(t *testing.T) {
	both(t, func(t *testing.T, e *env) {
		site := e.site("rm", 5)
		n := e.node(site, "n.rm.org")
		callers := map[string]*core.Caller{
			core.RoleAdmin:     e.person("admin@rm.org", site, "admin"),
			core.RolePI:        e.person("pi@rm.org", site, "pi"),
			core.RoleUser:      e.person("user@rm.org", site, "user"),
			core.RoleTech:      e.person("tech@rm.org", site, "tech"),
			core.RoleNode:      e.nodeCaller(n),
			core.RoleAnonymous: {Kind: core.Anonymous, Roles: []string{core.RoleAnonymous}},
		}
		const missing = int64(987654)
		type call struct {
			op string
			do func(c *core.Caller) error
		}
		var calls []call
		ctx := e.ctx
		for class, v := range verbs {
			class := class
			calls = append(calls, call{v[0].String(), func(c *core.Caller) error {
				_, err := e.s.Get(ctx, c, class, &core.Filter{IsList: true, IDs: []int64{missing}}, nil)
				if err == nil {
					err = core.Errorf(core.NotFound, "ok")
				}
				return err
			}})
			calls = append(calls, call{v[1].String(), func(c *core.Caller) error {
				_, err := e.s.Add(ctx, c, class, core.Record{"bogus_field": int64(1)})
				return err
			}})
			if v[2] != opNone {
				calls = append(calls, call{v[2].String(), func(c *core.Caller) error {
					return e.s.Update(ctx, c, class, missing, core.Record{"bogus_field": int64(1)})
				}})
			}
			calls = append(calls, call{v[3].String(), func(c *core.Caller) error {
				if class == core.Session {
					return e.s.DeleteSession(ctx, c, "no-such-session")
				}
				err := e.s.Delete(ctx, c, class, missing)
				if t, _ := table(class); t.StrPK {
					err = e.s.DeleteLookup(ctx, c, class, "no-such-name")
				}
				return err
			}})
		}
		for rel, v := range relOps {
			rel := rel
			calls = append(calls,
				call{v[0].String(), func(c *core.Caller) error { return e.s.Link(ctx, c, rel, missing, missing, nil) }},
				call{v[1].String(), func(c *core.Caller) error { return e.s.Unlink(ctx, c, rel, missing, missing) }})
		}
		calls = append(calls,
			call{"SetPersonPrimarySite", func(c *core.Caller) error { return e.s.SetPersonPrimarySite(ctx, c, missing, missing) }},
			call{"BlacklistKey", func(c *core.Caller) error { return e.s.BlacklistKey(ctx, c, missing) }},
			call{"UpdateSlice", func(c *core.Caller) error { _, err := e.s.RenewSlice(ctx, c, missing, 1); return err }},
			call{"AddLeases", func(c *core.Caller) error { _, _, err := e.s.AddLeases(ctx, c, nil, missing, 0, 1); return err }},
			call{"IssueJoinToken", func(c *core.Caller) error { _, err := e.s.IssueJoinToken(ctx, c, missing); return err }},
			call{"GetSlivers", func(c *core.Caller) error { _, err := e.s.NodeState(ctx, c, missing); return err }},
			call{"WatchNodeState", func(c *core.Caller) error {
				cctx, cancel := context.WithCancel(ctx)
				defer cancel()
				_, err := e.s.WatchNodeState(cctx, c, missing, "")
				return err
			}},
			call{"ReportRunlevel", func(c *core.Caller) error { return e.s.ReportNode(ctx, c, missing, core.NodeReport{}) }},
			call{"GetPlanetNodes", func(c *core.Caller) error { _, err := e.s.TopNodes(ctx, c, core.TopQuery{}); return err }},
			call{"GetPlanetSlices", func(c *core.Caller) error { _, err := e.s.TopSlices(ctx, c, core.TopQuery{}); return err }},
			call{"SelectNodes", func(c *core.Caller) error {
				_, err := e.s.SelectNodes(ctx, c, missing, core.NodeSelection{})
				return err
			}},
			call{"GetMonitorActions", func(c *core.Caller) error { _, err := e.s.MonitorActions(ctx, c, 0, 0); return err }},
			call{"GetNotices", func(c *core.Caller) error { _, err := e.s.Notices(ctx, c, 0, 0); return err }},
			call{"GetOutbox", func(c *core.Caller) error { _, err := e.s.Outbox(ctx, c, core.OutboxQuery{}); return err }},
			call{"GetPlanetHistory", func(c *core.Caller) error { _, err := e.s.PlanetHistory(ctx, c, 0); return err }},
			call{"SuspendSlice", func(c *core.Caller) error { return e.s.SuspendSlice(ctx, c, missing, "test") }},
			call{"ResumeSlice", func(c *core.Caller) error { return e.s.ResumeSlice(ctx, c, missing, "test") }},
			call{"AuditWho", func(c *core.Caller) error {
				_, err := e.s.AuditWho(ctx, c, core.FlowQuery{Addr: netip.MustParseAddr("192.0.2.9"), Since: time.Unix(1, 0), Until: time.Unix(2, 0), Limit: 1})
				return err
			}},
			call{"RegisterPerson", func(c *core.Caller) error {
				_, err := e.s.RegisterPerson(ctx, c, core.Registration{Site: "no-such-site", Password: "long-enough"})
				return err
			}},
			call{"RequestPasswordReset", func(c *core.Caller) error { return e.s.RequestPasswordReset(ctx, c, "") }},
			call{"CompletePasswordReset", func(c *core.Caller) error { return e.s.CompletePasswordReset(ctx, c, "t", "") }},
			call{"ConfirmEmail", func(c *core.Caller) error { _, err := e.s.ConfirmEmail(ctx, c, "no-such-token"); return err }},
			call{"VerifyPerson", func(c *core.Caller) error { return e.s.VerifyPerson(ctx, c, missing, "", 0) }},
			call{"ResetPassword", func(c *core.Caller) error { return e.s.ResetPassword(ctx, c, missing, "", 0) }},
			call{"NotifyPersons", func(c *core.Caller) error {
				return e.s.NotifyPersons(ctx, c, &core.Filter{IsList: true, IDs: []int64{missing}}, "s", "b")
			}},
			call{"NotifySupport", func(c *core.Caller) error { return e.s.NotifySupport(ctx, c, "s", "b") }},
			call{"GENICertificate", func(c *core.Caller) error { _, err := e.s.GENICertificate(ctx, c, "x"); return err }},
			call{"GENICredential", func(c *core.Caller) error { _, err := e.s.GENICredential(ctx, c, "x", ""); return err }},
		)
		roles := []string{core.RoleAdmin, core.RolePI, core.RoleUser, core.RoleTech, core.RoleNode, core.RoleAnonymous}
		cells := 0
		for _, cl := range calls {
			allowedRoles := OpRoles(cl.op)
			for _, r := range roles {
				err := cl.do(callers[r])
				cells++
				if slices.Contains(allowedRoles, r) {
					if isGateError(err) {
						t.Errorf("%s as %s: allowed by policy but stopped by the role gate: %v", cl.op, r, err)
					}
				} else if !isGateError(err) {
					t.Errorf("%s as %s: must be denied by the role gate, got %v", cl.op, r, err)
				}
			}
		}
		if cells < 6*100 {
			t.Fatalf("only %d cells", cells)
		}
	})
}
