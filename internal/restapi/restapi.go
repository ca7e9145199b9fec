// Package restapi defines the wire contract of PLC's REST API: the path
// prefix, the collection and relation paths of every registry class, the
// request and response bodies, the error body and the JSON value types of
// records (DecodeRecord, ConvertValue). PLC's REST server (internal/plc/rest)
// implements it; the Go client (internal/client) and the CLI use it without
// linking the server, as the node manager uses package nodeapi.
package restapi

import "github.com/planetlab/pl/internal/core"

// Prefix is the path prefix of the REST API.
const Prefix = "/api/v1"

// Collection describes a registry class served as a REST collection:
// GET Prefix/<Path> lists, POST creates (when Add is set), GET, PATCH and
// DELETE Prefix/<Path>/{ref} show, update and delete one object.
type Collection struct {
	Class    core.Class
	Path     string // collection path segment
	Singular string // PLCAPI object name: Site, NodeTag, ...
	Plural   string // PLCAPI plural: Sites, NodeTags, ...
	Add      string // PLCAPI Add op ("" = no POST on the collection)
	Update   bool
	Delete   bool
	Named    bool // keyed by name (lookup tables): no numeric ids
}

func crud(class core.Class, path, singular, plural string) Collection {
	return Collection{class, path, singular, plural, "Add" + singular, true, true, false}
}

// lookup is a table of names (boot states, ...): list, add, delete by name.
func lookup(class core.Class, path, singular, plural string) Collection {
	return Collection{class, path, singular, plural, "Add" + singular, false, true, true}
}

// Collections lists every collection. Lookup tables (boot states, ...)
// have no update. Callers must not modify it.
var Collections = []Collection{
	crud(core.Site, "sites", "Site", "Sites"),
	{core.Address, "addresses", "Address", "Addresses", "AddSiteAddress", true, true, false},
	crud(core.AddressType, "address-types", "AddressType", "AddressTypes"),
	crud(core.Person, "persons", "Person", "Persons"),
	{core.Role, "roles", "Role", "Roles", "AddRole", false, true, false},
	{core.Key, "keys", "Key", "Keys", "AddPersonKey", true, true, false},
	lookup(core.KeyType, "key-types", "KeyType", "KeyTypes"),
	crud(core.Node, "nodes", "Node", "Nodes"),
	crud(core.Interface, "interfaces", "Interface", "Interfaces"),
	crud(core.TagType, "tag-types", "TagType", "TagTypes"),
	crud(core.SiteTag, "site-tags", "SiteTag", "SiteTags"),
	crud(core.PersonTag, "person-tags", "PersonTag", "PersonTags"),
	crud(core.NodeTag, "node-tags", "NodeTag", "NodeTags"),
	crud(core.InterfaceTag, "interface-tags", "InterfaceTag", "InterfaceTags"),
	crud(core.SliceTag, "slice-tags", "SliceTag", "SliceTags"),
	crud(core.NodeGroup, "nodegroups", "NodeGroup", "NodeGroups"),
	crud(core.PCU, "pcus", "PCU", "PCUs"),
	crud(core.ConfFile, "conf-files", "ConfFile", "ConfFiles"),
	crud(core.Slice, "slices", "Slice", "Slices"),
	crud(core.InitScriptClass, "initscripts", "InitScript", "InitScripts"),
	{core.Lease, "leases", "Lease", "Leases", "", true, true, false}, // POST /leases is AddLeases
	crud(core.Ilink, "ilinks", "Ilink", "Ilinks"),
	crud(core.Peer, "peers", "Peer", "Peers"),
	lookup(core.BootState, "boot-states", "BootState", "BootStates"),
	lookup(core.NodeType, "node-types", "NodeType", "NodeTypes"),
	lookup(core.NetworkType, "network-types", "NetworkType", "NetworkTypes"),
	lookup(core.NetworkMethod, "network-methods", "NetworkMethod", "NetworkMethods"),
	lookup(core.SliceInstantiation, "slice-instantiations", "SliceInstantiation", "SliceInstantiations"),
}

// ClassPath returns the REST collection path segment of class ("" if none).
// Sessions are listed at /sessions (created and deleted by their own routes).
func ClassPath(class core.Class) string {
	if class == core.Session {
		return "sessions"
	}
	for _, c := range Collections {
		if c.Class == class {
			return c.Path
		}
	}
	return ""
}

// CollectionOf returns the collection of class; it panics for a class
// without one (a programming error in a table).
func CollectionOf(c core.Class) Collection {
	for _, d := range Collections {
		if d.Class == c {
			return d
		}
	}
	panic("restapi: unknown class " + string(c))
}

// RelationRoute describes a relation served as
// PUT/DELETE Prefix/<A.Path>/{ref}/<Sub>/{member}.
type RelationRoute struct {
	Rel          core.Relation
	A, B         Collection
	Sub          string
	AddOp, DelOp string
	Extra        bool // PUT takes a JSON object of extra fields
}

// Relations lists every relation route. Callers must not modify it.
var Relations = []RelationRoute{
	{core.PersonSite, CollectionOf(core.Person), CollectionOf(core.Site), "sites", "AddPersonToSite", "DeletePersonFromSite", false},
	{core.PersonRole, CollectionOf(core.Person), CollectionOf(core.Role), "roles", "AddRoleToPerson", "DeleteRoleFromPerson", false},
	{core.SlicePerson, CollectionOf(core.Slice), CollectionOf(core.Person), "persons", "AddPersonToSlice", "DeletePersonFromSlice", false},
	{core.SliceNode, CollectionOf(core.Slice), CollectionOf(core.Node), "nodes", "AddSliceToNodes", "DeleteSliceFromNodes", false},
	{core.SliceNodeWhitelist, CollectionOf(core.Slice), CollectionOf(core.Node), "whitelist", "AddSliceToNodesWhitelist", "DeleteSliceFromNodesWhitelist", false},
	{core.NodePCU, CollectionOf(core.Node), CollectionOf(core.PCU), "pcus", "AddNodeToPCU", "DeleteNodeFromPCU", true},
	{core.ConfFileNode, CollectionOf(core.ConfFile), CollectionOf(core.Node), "nodes", "AddConfFileToNode", "DeleteConfFileFromNode", false},
	{core.ConfFileNodeGroup, CollectionOf(core.ConfFile), CollectionOf(core.NodeGroup), "nodegroups", "AddConfFileToNodeGroup", "DeleteConfFileFromNodeGroup", false},
	{core.TagTypeRole, CollectionOf(core.TagType), CollectionOf(core.Role), "roles", "AddRoleToTagType", "DeleteRoleFromTagType", false},
	{core.AddressAddressType, CollectionOf(core.Address), CollectionOf(core.AddressType), "types", "AddAddressTypeToAddress", "DeleteAddressTypeFromAddress", false},
}

// RelationPath returns the collection segment of rel's first class and
// the member segment: PUT/DELETE /api/v1/{a}/{id}/{sub}/{member}.
func RelationPath(rel core.Relation) (a, sub string, ok bool) {
	for _, r := range Relations {
		if r.Rel == rel {
			return r.A.Path, r.Sub, true
		}
	}
	return "", "", false
}
