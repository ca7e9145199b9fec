package service

import (
	"fmt"
	"slices"
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

// RoleSet is a set of roles, pseudo-roles included (node, anonymous).
type RoleSet uint8

// The roles of a RoleSet, in the order Names lists them.
const (
	rA  RoleSet = 1 << iota // admin
	rP                      // pi
	rU                      // user
	rT                      // tech
	rN                      // node
	rAn                     // anonymous
	rPe                     // peer (a peering PLC)
)

var roleBits = []struct {
	bit  RoleSet
	name string
}{{rA, core.RoleAdmin}, {rP, core.RolePI}, {rU, core.RoleUser}, {rT, core.RoleTech}, {rN, core.RoleNode}, {rAn, core.RoleAnonymous}, {rPe, core.RolePeer}}

// RolesOf returns the set of the named roles; unknown names are ignored.
func RolesOf(names ...string) RoleSet {
	var s RoleSet
	for _, n := range names {
		for _, b := range roleBits {
			if b.name == n {
				s |= b.bit
			}
		}
	}
	return s
}

// Names lists the roles of the set (admin, pi, user, tech, node,
// anonymous order); nil for the empty set.
func (s RoleSet) Names() []string {
	var out []string
	for _, b := range roleBits {
		if s&b.bit != 0 {
			out = append(out, b.name)
		}
	}
	return out
}

// Has reports whether the set holds the named role.
func (s RoleSet) Has(role string) bool { return s&RolesOf(role) != 0 }

// AllowsCaller reports whether the caller holds one of the set's roles.
func (s RoleSet) AllowsCaller(c *core.Caller) bool {
	for _, b := range roleBits {
		if s&b.bit != 0 && c.HasRole(b.name) {
			return true
		}
	}
	return false
}

// Op is an operation of the service, named by its PLCAPI method. Ops are
// constants, so a misspelt one does not compile.
type Op uint16

// The operations: one per PLCAPI method the service implements semantics
// for, and IssueJoinToken and WatchNodeState, which have no PLCAPI method.
const (
	opNone Op = iota
	// Sites and addresses.
	opAddSite
	opGetSites
	opUpdateSite
	opDeleteSite
	opAddSiteAddress
	opGetAddresses
	opUpdateAddress
	opDeleteAddress
	opAddAddressType
	opUpdateAddressType
	opDeleteAddressType
	opGetAddressTypes
	opAddAddressTypeToAddress
	opDeleteAddressTypeFromAddress
	opAddSiteTag
	opUpdateSiteTag
	opGetSiteTags
	opDeleteSiteTag
	// Persons and roles.
	opAddPerson
	opGetPersons
	opUpdatePerson
	opDeletePerson
	opAddPersonToSite
	opDeletePersonFromSite
	opSetPersonPrimarySite
	opAddRoleToPerson
	opDeleteRoleFromPerson
	opAddPersonTag
	opGetPersonTags
	opUpdatePersonTag
	opDeletePersonTag
	opGetRoles
	opAddRole
	opDeleteRole
	opAddRoleToTagType
	opDeleteRoleFromTagType
	// Keys.
	opAddPersonKey
	opGetKeys
	opUpdateKey
	opDeleteKey
	opBlacklistKey
	opGetKeyTypes
	opAddKeyType
	opDeleteKeyType
	// Nodes, interfaces, lookup tables.
	opAddNode
	opUpdateNode
	opDeleteNode
	opGetNodes
	opAddNodeTag
	opUpdateNodeTag
	opDeleteNodeTag
	opGetNodeTags
	opGetNodeTypes
	opAddNodeType
	opDeleteNodeType
	opGetBootStates
	opAddBootState
	opDeleteBootState
	opReportRunlevel
	opGetNodeFlavour
	opAddInterface
	opUpdateInterface
	opDeleteInterface
	opGetInterfaces
	opAddInterfaceTag
	opUpdateInterfaceTag
	opDeleteInterfaceTag
	opGetInterfaceTags
	opGetNetworkTypes
	opAddNetworkType
	opDeleteNetworkType
	opGetNetworkMethods
	opAddNetworkMethod
	opDeleteNetworkMethod
	opAddIlink
	opUpdateIlink
	opDeleteIlink
	opGetIlinks
	// Node groups, conf files, PCUs.
	opAddNodeGroup
	opUpdateNodeGroup
	opDeleteNodeGroup
	opGetNodeGroups
	opAddConfFile
	opUpdateConfFile
	opDeleteConfFile
	opGetConfFiles
	opAddConfFileToNode
	opDeleteConfFileFromNode
	opAddConfFileToNodeGroup
	opDeleteConfFileFromNodeGroup
	opAddPCU
	opUpdatePCU
	opDeletePCU
	opGetPCUs
	opAddNodeToPCU
	opDeleteNodeFromPCU
	// Slices.
	opAddSlice
	opGetSlices
	opUpdateSlice
	opDeleteSlice
	opAddSliceToNodes
	opDeleteSliceFromNodes
	opAddSliceToNodesWhitelist
	opDeleteSliceFromNodesWhitelist
	opAddPersonToSlice
	opDeletePersonFromSlice
	opAddSliceTag
	opUpdateSliceTag
	opDeleteSliceTag
	opGetSliceTags
	opGetSliceInstantiations
	opAddSliceInstantiation
	opDeleteSliceInstantiation
	opGetSliceKeys
	opGetSliceFamily
	// Tag types, init scripts, leases.
	opAddTagType
	opUpdateTagType
	opDeleteTagType
	opGetTagTypes
	opAddInitScript
	opUpdateInitScript
	opDeleteInitScript
	opGetInitScripts
	opAddLeases
	opGetLeases
	opUpdateLeases
	opDeleteLeases
	opGetLeaseGranularity
	// Sessions and nodes.
	opAuthCheck
	opGetSession
	opDeleteSession
	opGetSessions
	opAddSession
	opBootGetNodeDetails
	opBootUpdateNode
	opBootCheckAuthentication
	opGetSlivers
	opGetPlcRelease
	// Operations of this implementation without a PLCAPI method.
	opIssueJoinToken
	opWatchNodeState
	// Monitoring (planet.go): the planet table, node selection, the
	// monitor's log and admin suspension.
	opGetPlanetNodes
	opGetPlanetSlices
	opSelectNodes
	opGetMonitorActions
	opGetNotices
	opGetOutbox
	opGetPlanetHistory
	opSuspendSlice
	opResumeSlice
	// Accountability (audit.go): who sent packets to an address.
	opAuditWho
	opAuditSlice
	// Tickets (tickets.go).
	opGetSliceTicket
	// Accounts (signup.go).
	opRegisterPerson
	// One-time links and mail (tokens.go).
	opRequestPasswordReset
	opCompletePasswordReset
	opConfirmEmail
	opVerifyPerson
	opResetPassword
	opNotifyPersons
	opNotifySupport
	// Peering (peers.go, federation.go).
	opAddPeer
	opGetPeers
	opUpdatePeer
	opDeletePeer
	opRefreshPeer
	opGetPeerData
	opRefuseSlice
	opBindObjectToPeer
	opUnBindObjectFromPeer
	opDeleteAllPeerEntries
	opGetPeerName
	// The GENI slice authority (geni.go).
	opGENICertificate
	opGENICredential
	numOps
)

// ops is THE authorization table: the name and role set of every
// operation (reference plcapi.md §2.1). Ownership rules (own site, own
// slice, ...) are checked on top of this in the object code; the role gate
// is only ever checked here.
var ops = [numOps]struct {
	name  string
	roles RoleSet
}{
	// Sites and addresses.
	opAddSite:                      {"AddSite", rA},
	opGetSites:                     {"GetSites", rA | rP | rU | rT | rN | rAn},
	opUpdateSite:                   {"UpdateSite", rA | rP},
	opDeleteSite:                   {"DeleteSite", rA},
	opAddSiteAddress:               {"AddSiteAddress", rA | rP},
	opGetAddresses:                 {"GetAddresses", rA | rP | rU | rT | rN},
	opUpdateAddress:                {"UpdateAddress", rA | rP},
	opDeleteAddress:                {"DeleteAddress", rA | rP},
	opAddAddressType:               {"AddAddressType", rA},
	opUpdateAddressType:            {"UpdateAddressType", rA},
	opDeleteAddressType:            {"DeleteAddressType", rA},
	opGetAddressTypes:              {"GetAddressTypes", rA | rP | rU | rT | rN | rAn},
	opAddAddressTypeToAddress:      {"AddAddressTypeToAddress", rA | rP},
	opDeleteAddressTypeFromAddress: {"DeleteAddressTypeFromAddress", rA | rP},
	opAddSiteTag:                   {"AddSiteTag", rA | rP | rT | rU},
	opUpdateSiteTag:                {"UpdateSiteTag", rA | rP | rT | rU},
	opGetSiteTags:                  {"GetSiteTags", rA | rP | rU | rN},
	opDeleteSiteTag:                {"DeleteSiteTag", rA | rP | rU},
	// Persons and roles.
	opAddPerson:             {"AddPerson", rA | rP},
	opGetPersons:            {"GetPersons", rA | rP | rU | rT | rN},
	opUpdatePerson:          {"UpdatePerson", rA | rP | rU | rT},
	opDeletePerson:          {"DeletePerson", rA | rP | rU | rT},
	opAddPersonToSite:       {"AddPersonToSite", rA},
	opDeletePersonFromSite:  {"DeletePersonFromSite", rA},
	opSetPersonPrimarySite:  {"SetPersonPrimarySite", rA | rP | rU | rT},
	opAddRoleToPerson:       {"AddRoleToPerson", rA | rP},
	opDeleteRoleFromPerson:  {"DeleteRoleFromPerson", rA | rP},
	opAddPersonTag:          {"AddPersonTag", rA | rP | rT | rU},
	opGetPersonTags:         {"GetPersonTags", rA | rP | rU | rT},
	opUpdatePersonTag:       {"UpdatePersonTag", rA | rP | rU},
	opDeletePersonTag:       {"DeletePersonTag", rA | rP | rU},
	opGetRoles:              {"GetRoles", rA | rP | rU | rT | rN},
	opAddRole:               {"AddRole", rA},
	opDeleteRole:            {"DeleteRole", rA},
	opAddRoleToTagType:      {"AddRoleToTagType", rA},
	opDeleteRoleFromTagType: {"DeleteRoleFromTagType", rA},
	// Keys.
	opAddPersonKey:  {"AddPersonKey", rA | rP | rT | rU},
	opGetKeys:       {"GetKeys", rA | rP | rU | rT | rN},
	opUpdateKey:     {"UpdateKey", rA | rP | rT | rU},
	opDeleteKey:     {"DeleteKey", rA | rP | rT | rU},
	opBlacklistKey:  {"BlacklistKey", rA},
	opGetKeyTypes:   {"GetKeyTypes", rA | rP | rU | rT | rN},
	opAddKeyType:    {"AddKeyType", rA},
	opDeleteKeyType: {"DeleteKeyType", rA},
	// Nodes, interfaces, lookup tables.
	opAddNode:             {"AddNode", rA | rP | rT},
	opUpdateNode:          {"UpdateNode", rA | rP | rT},
	opDeleteNode:          {"DeleteNode", rA | rP | rT},
	opGetNodes:            {"GetNodes", rA | rP | rU | rT | rN | rAn},
	opAddNodeTag:          {"AddNodeTag", rA | rP | rT | rU},
	opUpdateNodeTag:       {"UpdateNodeTag", rA | rP | rT | rU},
	opDeleteNodeTag:       {"DeleteNodeTag", rA | rP | rT | rU},
	opGetNodeTags:         {"GetNodeTags", rA | rP | rU | rT | rN | rAn},
	opGetNodeTypes:        {"GetNodeTypes", rA | rP | rU | rT | rN | rAn},
	opAddNodeType:         {"AddNodeType", rA},
	opDeleteNodeType:      {"DeleteNodeType", rA},
	opGetBootStates:       {"GetBootStates", rA | rP | rU | rT | rN | rAn},
	opAddBootState:        {"AddBootState", rA},
	opDeleteBootState:     {"DeleteBootState", rA},
	opReportRunlevel:      {"ReportRunlevel", rN | rA},
	opGetNodeFlavour:      {"GetNodeFlavour", rA | rU | rN},
	opAddInterface:        {"AddInterface", rA | rP | rT},
	opUpdateInterface:     {"UpdateInterface", rA | rP | rT},
	opDeleteInterface:     {"DeleteInterface", rA | rP | rT},
	opGetInterfaces:       {"GetInterfaces", rA | rP | rU | rT | rN | rAn},
	opAddInterfaceTag:     {"AddInterfaceTag", rA | rP | rT | rU},
	opUpdateInterfaceTag:  {"UpdateInterfaceTag", rA | rP | rT | rU},
	opDeleteInterfaceTag:  {"DeleteInterfaceTag", rA | rP | rT | rU},
	opGetInterfaceTags:    {"GetInterfaceTags", rA | rP | rU | rT | rN},
	opGetNetworkTypes:     {"GetNetworkTypes", rA | rP | rU | rT | rN | rAn},
	opAddNetworkType:      {"AddNetworkType", rA},
	opDeleteNetworkType:   {"DeleteNetworkType", rA},
	opGetNetworkMethods:   {"GetNetworkMethods", rA | rP | rU | rT | rN | rAn},
	opAddNetworkMethod:    {"AddNetworkMethod", rA},
	opDeleteNetworkMethod: {"DeleteNetworkMethod", rA},
	opAddIlink:            {"AddIlink", rA | rP | rT | rU},
	opUpdateIlink:         {"UpdateIlink", rA | rP | rT | rU},
	opDeleteIlink:         {"DeleteIlink", rA | rP | rU},
	opGetIlinks:           {"GetIlinks", rA | rP | rU | rN},
	// Node groups, conf files, PCUs.
	opAddNodeGroup:                {"AddNodeGroup", rA},
	opUpdateNodeGroup:             {"UpdateNodeGroup", rA},
	opDeleteNodeGroup:             {"DeleteNodeGroup", rA},
	opGetNodeGroups:               {"GetNodeGroups", rA | rP | rU | rT | rN | rAn},
	opAddConfFile:                 {"AddConfFile", rA},
	opUpdateConfFile:              {"UpdateConfFile", rA},
	opDeleteConfFile:              {"DeleteConfFile", rA},
	opGetConfFiles:                {"GetConfFiles", rA | rN},
	opAddConfFileToNode:           {"AddConfFileToNode", rA},
	opDeleteConfFileFromNode:      {"DeleteConfFileFromNode", rA},
	opAddConfFileToNodeGroup:      {"AddConfFileToNodeGroup", rA},
	opDeleteConfFileFromNodeGroup: {"DeleteConfFileFromNodeGroup", rA},
	opAddPCU:                      {"AddPCU", rA | rP | rT},
	opUpdatePCU:                   {"UpdatePCU", rA | rP | rT},
	opDeletePCU:                   {"DeletePCU", rA | rP | rT},
	opGetPCUs:                     {"GetPCUs", rA | rP | rT | rN},
	opAddNodeToPCU:                {"AddNodeToPCU", rA | rP | rT},
	opDeleteNodeFromPCU:           {"DeleteNodeFromPCU", rA | rP | rT},
	// Slices.
	opAddSlice:                      {"AddSlice", rA | rP},
	opGetSlices:                     {"GetSlices", rA | rP | rU | rN},
	opUpdateSlice:                   {"UpdateSlice", rA | rP | rU},
	opDeleteSlice:                   {"DeleteSlice", rA | rP | rU},
	opAddSliceToNodes:               {"AddSliceToNodes", rA | rP | rU},
	opDeleteSliceFromNodes:          {"DeleteSliceFromNodes", rA | rP | rU},
	opAddSliceToNodesWhitelist:      {"AddSliceToNodesWhitelist", rA},
	opDeleteSliceFromNodesWhitelist: {"DeleteSliceFromNodesWhitelist", rA},
	opAddPersonToSlice:              {"AddPersonToSlice", rA | rP},
	opDeletePersonFromSlice:         {"DeletePersonFromSlice", rA | rP},
	opAddSliceTag:                   {"AddSliceTag", rA | rP | rU | rN},
	opUpdateSliceTag:                {"UpdateSliceTag", rA | rP | rU | rN},
	opDeleteSliceTag:                {"DeleteSliceTag", rA | rP | rU | rT | rN},
	opGetSliceTags:                  {"GetSliceTags", rA | rP | rU | rN},
	opGetSliceInstantiations:        {"GetSliceInstantiations", rA | rP | rU | rT | rN | rAn},
	opAddSliceInstantiation:         {"AddSliceInstantiation", rA},
	opDeleteSliceInstantiation:      {"DeleteSliceInstantiation", rA},
	opGetSliceKeys:                  {"GetSliceKeys", rA | rP | rU | rN},
	opGetSliceFamily:                {"GetSliceFamily", rA | rU | rN},
	// Tag types, init scripts, leases.
	opAddTagType:          {"AddTagType", rA},
	opUpdateTagType:       {"UpdateTagType", rA},
	opDeleteTagType:       {"DeleteTagType", rA},
	opGetTagTypes:         {"GetTagTypes", rA | rP | rU | rT | rN},
	opAddInitScript:       {"AddInitScript", rA},
	opUpdateInitScript:    {"UpdateInitScript", rA},
	opDeleteInitScript:    {"DeleteInitScript", rA},
	opGetInitScripts:      {"GetInitScripts", rA | rP | rU | rT | rN},
	opAddLeases:           {"AddLeases", rA | rP | rU},
	opGetLeases:           {"GetLeases", rA | rP | rU | rN | rAn},
	opUpdateLeases:        {"UpdateLeases", rA | rP | rT | rU},
	opDeleteLeases:        {"DeleteLeases", rA | rP | rT | rU},
	opGetLeaseGranularity: {"GetLeaseGranularity", rA | rP | rU | rT | rN | rAn},
	// Sessions and nodes.
	opAuthCheck:               {"AuthCheck", rA | rP | rU | rT | rN},
	opGetSession:              {"GetSession", rA | rP | rU | rT | rN},
	opDeleteSession:           {"DeleteSession", rA | rP | rU | rT | rN},
	opGetSessions:             {"GetSessions", rA},
	opAddSession:              {"AddSession", rA},
	opBootGetNodeDetails:      {"BootGetNodeDetails", rN},
	opBootUpdateNode:          {"BootUpdateNode", rN},
	opBootCheckAuthentication: {"BootCheckAuthentication", rN},
	opGetSlivers:              {"GetSlivers", rA | rN},
	opGetPlcRelease:           {"GetPlcRelease", rA | rP | rU | rT | rN | rAn},
	// Operations of this implementation without a PLCAPI method.
	opIssueJoinToken: {"IssueJoinToken", rA | rP | rT},
	opWatchNodeState: {"WatchNodeState", rA | rN},
	// Monitoring: node rows are public as CoMon's were; slice rows are
	// filtered to the slices the caller may read.
	opGetPlanetNodes:    {"GetPlanetNodes", rA | rP | rU | rT | rN | rAn},
	opGetPlanetSlices:   {"GetPlanetSlices", rA | rP | rU | rT},
	opSelectNodes:       {"SelectNodes", rA | rP | rU},
	opGetMonitorActions: {"GetMonitorActions", rA},
	opGetNotices:        {"GetNotices", rA | rP | rU | rT},
	opGetOutbox:         {"GetOutbox", rA},
	opGetPlanetHistory:  {"GetPlanetHistory", rA},
	opSuspendSlice:      {"SuspendSlice", rA},
	opResumeSlice:       {"ResumeSlice", rA},
	// Accountability: admins see every flow, PIs their sites', others
	// their own slices' (audit.go).
	opAuditWho:   {"AuditWho", rA | rP | rU | rT},
	opAuditSlice: {"AuditSlice", rA | rP | rU | rT},
	// Tickets: as the original (admins, PIs, users; no peers here),
	// limited to slices the caller may write (tickets.go).
	opGetSliceTicket: {"GetSliceTicket", rA | rP | rU},
	opRegisterPerson: {"RegisterPerson", rAn},
	// The GENI slice authority certifies persons' keys and signs their
	// credentials (slice ownership is checked in geni.go).
	opGENICertificate: {"GENICertificate", rA | rP | rU | rT},
	opGENICredential:  {"GENICredential", rA | rP | rU | rT},
	// The portal's forgot-password form and mailed links are used without
	// logging in (the link's token is the credential); the PLCAPI
	// methods are the original's.
	opRequestPasswordReset:  {"RequestPasswordReset", rA | rP | rU | rT | rAn},
	opCompletePasswordReset: {"CompletePasswordReset", rA | rP | rU | rT | rAn},
	opConfirmEmail:          {"ConfirmEmail", rA | rP | rU | rT | rAn},
	opVerifyPerson:          {"VerifyPerson", rA},
	opResetPassword:         {"ResetPassword", rA},
	opNotifyPersons:         {"NotifyPersons", rA | rN},
	opNotifySupport:         {"NotifySupport", rA},
	// Peering: GetPeerData is also answered to a peer PLC (pseudo-role
	// peer, rPe); RefuseSlice is this implementation's (a local admin's
	// policy over a peer's slice on local nodes).
	opAddPeer:     {"AddPeer", rA},
	opGetPeers:    {"GetPeers", rA | rP | rU | rN},
	opUpdatePeer:  {"UpdatePeer", rA},
	opDeletePeer:  {"DeletePeer", rA},
	opRefreshPeer: {"RefreshPeer", rA},
	opGetPeerData: {"GetPeerData", rA | rPe},
	opRefuseSlice: {"RefuseSlice", rA},
	// The original's repair and SFA methods; GetPeerName also to nodes.
	opBindObjectToPeer:     {"BindObjectToPeer", rA},
	opUnBindObjectFromPeer: {"UnBindObjectFromPeer", rA},
	opDeleteAllPeerEntries: {"DeleteAllPeerEntries", rA},
	opGetPeerName:          {"GetPeerName", rA | rPe | rN},
}

// opByName indexes ops by name.
var opByName = func() map[string]Op {
	m := make(map[string]Op, numOps)
	for op := opNone + 1; op < numOps; op++ {
		m[ops[op].name] = op
	}
	return m
}()

func (op Op) String() string {
	if op <= opNone || op >= numOps {
		return fmt.Sprintf("Op(%d)", int(op))
	}
	return ops[op].name
}

// roles returns the op's role set.
func (op Op) roles() RoleSet {
	if op <= opNone || op >= numOps {
		return 0
	}
	return ops[op].roles
}

// OpRoles returns the role set of a PLCAPI-named operation, or nil for an
// unknown one.
func OpRoles(name string) []string {
	op, ok := opByName[name]
	if !ok {
		return nil
	}
	if names := op.roles().Names(); names != nil {
		return names
	}
	return []string{} // known, held by no role: not nil, which means unknown
}

// Ops lists the names of the operations, sorted.
func Ops() []string {
	out := make([]string, 0, len(opByName))
	for name := range opByName {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// authorize is the role gate of every service operation.
func authorize(c *core.Caller, op Op) error {
	roles := op.roles()
	if roles == 0 {
		return core.Errorf(core.Internal, "policy: no role set for %v", op)
	}
	if roles.AllowsCaller(c) {
		return nil
	}
	if c == nil || c.Kind == core.Anonymous {
		return core.Errorf(core.Unauthenticated, "%v needs an authenticated caller", op)
	}
	return core.Errorf(core.Forbidden, "%v: role not allowed (needs one of %s)", op, strings.Join(roles.Names(), ", "))
}

// verbs maps each class to its PLCAPI method names: get, add, update, delete.
var verbs = map[core.Class][4]Op{
	core.Site:               {opGetSites, opAddSite, opUpdateSite, opDeleteSite},
	core.Address:            {opGetAddresses, opAddSiteAddress, opUpdateAddress, opDeleteAddress},
	core.AddressType:        {opGetAddressTypes, opAddAddressType, opUpdateAddressType, opDeleteAddressType},
	core.Person:             {opGetPersons, opAddPerson, opUpdatePerson, opDeletePerson},
	core.Role:               {opGetRoles, opAddRole, opNone, opDeleteRole},
	core.Key:                {opGetKeys, opAddPersonKey, opUpdateKey, opDeleteKey},
	core.KeyType:            {opGetKeyTypes, opAddKeyType, opNone, opDeleteKeyType},
	core.Node:               {opGetNodes, opAddNode, opUpdateNode, opDeleteNode},
	core.Interface:          {opGetInterfaces, opAddInterface, opUpdateInterface, opDeleteInterface},
	core.TagType:            {opGetTagTypes, opAddTagType, opUpdateTagType, opDeleteTagType},
	core.SiteTag:            {opGetSiteTags, opAddSiteTag, opUpdateSiteTag, opDeleteSiteTag},
	core.PersonTag:          {opGetPersonTags, opAddPersonTag, opUpdatePersonTag, opDeletePersonTag},
	core.NodeTag:            {opGetNodeTags, opAddNodeTag, opUpdateNodeTag, opDeleteNodeTag},
	core.InterfaceTag:       {opGetInterfaceTags, opAddInterfaceTag, opUpdateInterfaceTag, opDeleteInterfaceTag},
	core.SliceTag:           {opGetSliceTags, opAddSliceTag, opUpdateSliceTag, opDeleteSliceTag},
	core.NodeGroup:          {opGetNodeGroups, opAddNodeGroup, opUpdateNodeGroup, opDeleteNodeGroup},
	core.PCU:                {opGetPCUs, opAddPCU, opUpdatePCU, opDeletePCU},
	core.ConfFile:           {opGetConfFiles, opAddConfFile, opUpdateConfFile, opDeleteConfFile},
	core.Slice:              {opGetSlices, opAddSlice, opUpdateSlice, opDeleteSlice},
	core.InitScriptClass:    {opGetInitScripts, opAddInitScript, opUpdateInitScript, opDeleteInitScript},
	core.Lease:              {opGetLeases, opAddLeases, opUpdateLeases, opDeleteLeases},
	core.Ilink:              {opGetIlinks, opAddIlink, opUpdateIlink, opDeleteIlink},
	core.Session:            {opGetSessions, opAddSession, opNone, opDeleteSession},
	core.BootState:          {opGetBootStates, opAddBootState, opNone, opDeleteBootState},
	core.NodeType:           {opGetNodeTypes, opAddNodeType, opNone, opDeleteNodeType},
	core.NetworkType:        {opGetNetworkTypes, opAddNetworkType, opNone, opDeleteNetworkType},
	core.NetworkMethod:      {opGetNetworkMethods, opAddNetworkMethod, opNone, opDeleteNetworkMethod},
	core.SliceInstantiation: {opGetSliceInstantiations, opAddSliceInstantiation, opNone, opDeleteSliceInstantiation},
	core.Peer:               {opGetPeers, opAddPeer, opUpdatePeer, opDeletePeer},
}

// relOps maps each relation to its PLCAPI add and delete methods.
var relOps = map[core.Relation][2]Op{
	core.PersonSite:         {opAddPersonToSite, opDeletePersonFromSite},
	core.PersonRole:         {opAddRoleToPerson, opDeleteRoleFromPerson},
	core.SlicePerson:        {opAddPersonToSlice, opDeletePersonFromSlice},
	core.SliceNode:          {opAddSliceToNodes, opDeleteSliceFromNodes},
	core.SliceNodeWhitelist: {opAddSliceToNodesWhitelist, opDeleteSliceFromNodesWhitelist},
	core.NodePCU:            {opAddNodeToPCU, opDeleteNodeFromPCU},
	core.ConfFileNode:       {opAddConfFileToNode, opDeleteConfFileFromNode},
	core.ConfFileNodeGroup:  {opAddConfFileToNodeGroup, opDeleteConfFileFromNodeGroup},
	core.TagTypeRole:        {opAddRoleToTagType, opDeleteRoleFromTagType},
	core.AddressAddressType: {opAddAddressTypeToAddress, opDeleteAddressTypeFromAddress},
}

const (
	verbGet = iota
	verbAdd
	verbUpdate
	verbDelete
)

func opFor(class core.Class, verb int) (Op, error) {
	v, ok := verbs[class]
	if !ok {
		return opNone, core.FieldErrorf("class", "unknown class %q", class)
	}
	if v[verb] == opNone {
		return opNone, core.Errorf(core.Invalid, "%s objects cannot be updated", class)
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
	return slices.Contains(c.SiteIDs, site)
}

func forbidden(format string, args ...any) error {
	return core.Errorf(core.Forbidden, format, args...)
}
