package service

import (
	"fmt"
	"sort"
	"strings"

	"github.com/planetlab/pl/internal/core"
)

// Role ids, as the original (roles table).
var roleIDs = map[string]int64{core.RoleAdmin: 10, core.RolePI: 20, core.RoleUser: 30, core.RoleTech: 40, core.RoleNode: 50}

// RoleID returns the id of a role name (admin 10, pi 20, user 30, tech 40,
// node 50).
func RoleID(name string) (int64, bool) { id, ok := roleIDs[name]; return id, ok }

// RoleName returns the name of a role id.
func RoleName(id int64) (string, bool) {
	for n, i := range roleIDs {
		if i == id {
			return n, true
		}
	}
	return "", false
}

// opRoles is THE authorization table: for every PLCAPI method the service
// implements semantics for, the roles that may call it (reference plcapi.md
// §2.1). Letters: A admin, P pi, U user, T tech, N node, an anonymous.
// Ownership rules (own site, own slice, ...) are checked on top of this in
// the object code; the role gate is only ever checked here.
var opRoles = map[string]string{
	// Sites and addresses.
	"AddSite": "A", "GetSites": "A P U T N an", "UpdateSite": "A P", "DeleteSite": "A",
	"AddSiteAddress": "A P", "GetAddresses": "A P U T N", "UpdateAddress": "A P", "DeleteAddress": "A P",
	"AddAddressType": "A", "UpdateAddressType": "A", "DeleteAddressType": "A", "GetAddressTypes": "A P U T N an",
	"AddAddressTypeToAddress": "A P", "DeleteAddressTypeFromAddress": "A P",
	"AddSiteTag": "A P T U", "UpdateSiteTag": "A P T U", "GetSiteTags": "A P U N", "DeleteSiteTag": "A P U",
	// Persons and roles.
	"AddPerson": "A P", "GetPersons": "A P U T N", "UpdatePerson": "A P U T", "DeletePerson": "A P U T",
	"AddPersonToSite": "A", "DeletePersonFromSite": "A", "SetPersonPrimarySite": "A P U T",
	"AddRoleToPerson": "A P", "DeleteRoleFromPerson": "A P",
	"AddPersonTag": "A P T U", "GetPersonTags": "A P U T", "UpdatePersonTag": "A P U", "DeletePersonTag": "A P U",
	"GetRoles": "A P U T N", "AddRole": "A", "DeleteRole": "A", "AddRoleToTagType": "A", "DeleteRoleFromTagType": "A",
	// Keys.
	"AddPersonKey": "A P T U", "GetKeys": "A P U T N", "UpdateKey": "A P T U", "DeleteKey": "A P T U", "BlacklistKey": "A",
	"GetKeyTypes": "A P U T N", "AddKeyType": "A", "DeleteKeyType": "A",
	// Nodes, interfaces, lookup tables.
	"AddNode": "A P T", "UpdateNode": "A P T", "DeleteNode": "A P T", "GetNodes": "A P U T N an",
	"AddNodeTag": "A P T U", "UpdateNodeTag": "A P T U", "DeleteNodeTag": "A P T U", "GetNodeTags": "A P U T N an",
	"GetNodeTypes": "A P U T N an", "AddNodeType": "A", "DeleteNodeType": "A",
	"GetBootStates": "A P U T N an", "AddBootState": "A", "DeleteBootState": "A",
	"ReportRunlevel": "N A", "GetNodeFlavour": "A U N",
	"AddInterface": "A P T", "UpdateInterface": "A P T", "DeleteInterface": "A P T", "GetInterfaces": "A P U T N an",
	"AddInterfaceTag": "A P T U", "UpdateInterfaceTag": "A P T U", "DeleteInterfaceTag": "A P T U", "GetInterfaceTags": "A P U T N",
	"GetNetworkTypes": "A P U T N an", "AddNetworkType": "A", "DeleteNetworkType": "A",
	"GetNetworkMethods": "A P U T N an", "AddNetworkMethod": "A", "DeleteNetworkMethod": "A",
	"AddIlink": "A P T U", "UpdateIlink": "A P T U", "DeleteIlink": "A P U", "GetIlinks": "A P U N",
	// Node groups, conf files, PCUs.
	"AddNodeGroup": "A", "UpdateNodeGroup": "A", "DeleteNodeGroup": "A", "GetNodeGroups": "A P U T N an",
	"AddConfFile": "A", "UpdateConfFile": "A", "DeleteConfFile": "A", "GetConfFiles": "A N",
	"AddConfFileToNode": "A", "DeleteConfFileFromNode": "A", "AddConfFileToNodeGroup": "A", "DeleteConfFileFromNodeGroup": "A",
	"AddPCU": "A P T", "UpdatePCU": "A P T", "DeletePCU": "A P T", "GetPCUs": "A P T N",
	"AddNodeToPCU": "A P T", "DeleteNodeFromPCU": "A P T",
	// Slices.
	"AddSlice": "A P", "GetSlices": "A P U N", "UpdateSlice": "A P U", "DeleteSlice": "A P U",
	"AddSliceToNodes": "A P U", "DeleteSliceFromNodes": "A P U",
	"AddSliceToNodesWhitelist": "A", "DeleteSliceFromNodesWhitelist": "A",
	"AddPersonToSlice": "A P", "DeletePersonFromSlice": "A P",
	"AddSliceTag": "A P U N", "UpdateSliceTag": "A P U N", "DeleteSliceTag": "A P U T N", "GetSliceTags": "A P U N",
	"GetSliceInstantiations": "A P U T N an", "AddSliceInstantiation": "A", "DeleteSliceInstantiation": "A",
	"GetSliceKeys": "A P U N", "GetSliceFamily": "A U N",
	// Tag types, init scripts, leases.
	"AddTagType": "A", "UpdateTagType": "A", "DeleteTagType": "A", "GetTagTypes": "A P U T N",
	"AddInitScript": "A", "UpdateInitScript": "A", "DeleteInitScript": "A", "GetInitScripts": "A P U T N",
	"AddLeases": "A P U", "GetLeases": "A P U N an", "UpdateLeases": "A P T U", "DeleteLeases": "A P T U",
	"GetLeaseGranularity": "A P U T N an",
	// Sessions and nodes.
	"AuthCheck": "A P U T N", "GetSession": "A P U T N", "DeleteSession": "A P U T N", "GetSessions": "A", "AddSession": "A",
	"BootGetNodeDetails": "N", "BootUpdateNode": "N", "BootCheckAuthentication": "N",
	"GetSlivers": "A N", "GetPlcRelease": "A P U T N an",
	// Operations of this implementation without a PLCAPI method.
	"IssueJoinToken": "A P T", "WatchNodeState": "A N",
}

var letterRole = map[string]string{"A": core.RoleAdmin, "P": core.RolePI, "U": core.RoleUser, "T": core.RoleTech, "N": core.RoleNode, "an": core.RoleAnonymous}

var opRoleSets = func() map[string][]string {
	out := map[string][]string{}
	for op, s := range opRoles {
		var roles []string
		for _, l := range strings.Fields(s) {
			r, ok := letterRole[l]
			if !ok {
				panic(fmt.Sprintf("policy: %s: unknown role letter %q", op, l))
			}
			roles = append(roles, r)
		}
		out[op] = roles
	}
	return out
}()

// OpRoles returns the role set of a PLCAPI-named operation, or nil for an
// unknown one.
func OpRoles(op string) []string {
	r := opRoleSets[op]
	if r == nil {
		return nil
	}
	return append([]string(nil), r...)
}

// Ops lists the operations with a role set, sorted.
func Ops() []string {
	out := make([]string, 0, len(opRoles))
	for op := range opRoles {
		out = append(out, op)
	}
	sort.Strings(out)
	return out
}

// allowed reports whether the caller holds one of the op's roles.
func allowed(c *core.Caller, op string) bool {
	for _, r := range opRoleSets[op] {
		if c.HasRole(r) {
			return true
		}
	}
	return false
}

// authorize is the role gate of every service operation.
func authorize(c *core.Caller, op string) error {
	if _, ok := opRoleSets[op]; !ok {
		return core.Errorf(core.Internal, "policy: no role set for %s", op)
	}
	if allowed(c, op) {
		return nil
	}
	if c == nil || c.Kind == core.Anonymous {
		return core.Errorf(core.Unauthenticated, "%s needs an authenticated caller", op)
	}
	return core.Errorf(core.Forbidden, "%s: role not allowed (needs one of %s)", op, strings.Join(opRoleSets[op], ", "))
}

// verbs maps each class to its PLCAPI method names: get, add, update, delete.
var verbs = map[core.Class][4]string{
	core.Site:               {"GetSites", "AddSite", "UpdateSite", "DeleteSite"},
	core.Address:            {"GetAddresses", "AddSiteAddress", "UpdateAddress", "DeleteAddress"},
	core.AddressType:        {"GetAddressTypes", "AddAddressType", "UpdateAddressType", "DeleteAddressType"},
	core.Person:             {"GetPersons", "AddPerson", "UpdatePerson", "DeletePerson"},
	core.Role:               {"GetRoles", "AddRole", "", "DeleteRole"},
	core.Key:                {"GetKeys", "AddPersonKey", "UpdateKey", "DeleteKey"},
	core.KeyType:            {"GetKeyTypes", "AddKeyType", "", "DeleteKeyType"},
	core.Node:               {"GetNodes", "AddNode", "UpdateNode", "DeleteNode"},
	core.Interface:          {"GetInterfaces", "AddInterface", "UpdateInterface", "DeleteInterface"},
	core.TagType:            {"GetTagTypes", "AddTagType", "UpdateTagType", "DeleteTagType"},
	core.SiteTag:            {"GetSiteTags", "AddSiteTag", "UpdateSiteTag", "DeleteSiteTag"},
	core.PersonTag:          {"GetPersonTags", "AddPersonTag", "UpdatePersonTag", "DeletePersonTag"},
	core.NodeTag:            {"GetNodeTags", "AddNodeTag", "UpdateNodeTag", "DeleteNodeTag"},
	core.InterfaceTag:       {"GetInterfaceTags", "AddInterfaceTag", "UpdateInterfaceTag", "DeleteInterfaceTag"},
	core.SliceTag:           {"GetSliceTags", "AddSliceTag", "UpdateSliceTag", "DeleteSliceTag"},
	core.NodeGroup:          {"GetNodeGroups", "AddNodeGroup", "UpdateNodeGroup", "DeleteNodeGroup"},
	core.PCU:                {"GetPCUs", "AddPCU", "UpdatePCU", "DeletePCU"},
	core.ConfFile:           {"GetConfFiles", "AddConfFile", "UpdateConfFile", "DeleteConfFile"},
	core.Slice:              {"GetSlices", "AddSlice", "UpdateSlice", "DeleteSlice"},
	core.InitScriptClass:    {"GetInitScripts", "AddInitScript", "UpdateInitScript", "DeleteInitScript"},
	core.Lease:              {"GetLeases", "AddLeases", "UpdateLeases", "DeleteLeases"},
	core.Ilink:              {"GetIlinks", "AddIlink", "UpdateIlink", "DeleteIlink"},
	core.Session:            {"GetSessions", "AddSession", "", "DeleteSession"},
	core.BootState:          {"GetBootStates", "AddBootState", "", "DeleteBootState"},
	core.NodeType:           {"GetNodeTypes", "AddNodeType", "", "DeleteNodeType"},
	core.NetworkType:        {"GetNetworkTypes", "AddNetworkType", "", "DeleteNetworkType"},
	core.NetworkMethod:      {"GetNetworkMethods", "AddNetworkMethod", "", "DeleteNetworkMethod"},
	core.SliceInstantiation: {"GetSliceInstantiations", "AddSliceInstantiation", "", "DeleteSliceInstantiation"},
}

// relOps maps each relation to its PLCAPI add and delete methods.
var relOps = map[core.Relation][2]string{
	core.PersonSite:         {"AddPersonToSite", "DeletePersonFromSite"},
	core.PersonRole:         {"AddRoleToPerson", "DeleteRoleFromPerson"},
	core.SlicePerson:        {"AddPersonToSlice", "DeletePersonFromSlice"},
	core.SliceNode:          {"AddSliceToNodes", "DeleteSliceFromNodes"},
	core.SliceNodeWhitelist: {"AddSliceToNodesWhitelist", "DeleteSliceFromNodesWhitelist"},
	core.NodePCU:            {"AddNodeToPCU", "DeleteNodeFromPCU"},
	core.ConfFileNode:       {"AddConfFileToNode", "DeleteConfFileFromNode"},
	core.ConfFileNodeGroup:  {"AddConfFileToNodeGroup", "DeleteConfFileFromNodeGroup"},
	core.TagTypeRole:        {"AddRoleToTagType", "DeleteRoleFromTagType"},
	core.AddressAddressType: {"AddAddressTypeToAddress", "DeleteAddressTypeFromAddress"},
}

const (
	verbGet = iota
	verbAdd
	verbUpdate
	verbDelete
)

func opFor(class core.Class, verb int) (string, error) {
	v, ok := verbs[class]
	if !ok {
		return "", core.FieldErrorf("class", "unknown class %q", class)
	}
	if v[verb] == "" {
		return "", core.Errorf(core.Invalid, "%s objects cannot be updated", class)
	}
	return v[verb], nil
}

func isAdmin(c *core.Caller) bool {
	return c != nil && c.Kind == core.PersonCaller && c.HasRole(core.RoleAdmin)
}
func isNode(c *core.Caller) bool { return c != nil && c.Kind == core.NodeCaller }
func isPerson(c *core.Caller) bool {
	return c != nil && c.Kind == core.PersonCaller
}

// minRoleID is the caller's most powerful role id (lower = more power).
func minRoleID(c *core.Caller) int64 {
	m := int64(1 << 62)
	if c == nil {
		return m
	}
	for _, r := range c.Roles {
		if id, ok := roleIDs[r]; ok && id < m {
			m = id
		}
	}
	return m
}

func atSite(c *core.Caller, site int64) bool {
	if c == nil {
		return false
	}
	for _, s := range c.SiteIDs {
		if s == site {
			return true
		}
	}
	return false
}

func forbidden(format string, args ...any) error {
	return core.Errorf(core.Forbidden, format, args...)
}
