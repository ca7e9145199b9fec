package store

import (
	"fmt"
	"sort"
	"strings"

	"github.com/planetlab/pl/internal/core"
)

// Type is the PLCAPI type of a field.
type Type int

// Field types. Times are Int (UNIX seconds).
const (
	Int Type = iota
	Float
	String
	Bool
	IntList
	StrList
)

func (t Type) String() string {
	return [...]string{"int", "double", "string", "boolean", "array of int", "array of string"}[t]
}

// Field describes one field of a class.
type Field struct {
	Name     string
	Type     Type
	Max      int  // maximum length in UTF-8 bytes (strings); 0 = unlimited
	Null     bool // nil accepted and returned
	Add      bool // callers may set it on Add
	Update   bool // callers may set it on Update
	Required bool // must be given on Add
	Admin    bool // returned to admins only
	Hidden   bool // never returned (password hashes, secrets)
	// Ints are 32-bit, as the original's int4 columns and XML-RPC's int,
	// except times (UNIX seconds, 64-bit); counts are also non-negative.
	Time  bool
	Count bool
	// Expr is the SQL expression of a computed scalar ("" = column Name of
	// the table, aliased t).
	Expr string
	// List is the SQL source of a computed list field; it yields rows
	// (o, m, k): owner id, member value, sort key.
	List string
}

// IsList reports whether the field is a computed list.
func (f *Field) IsList() bool { return f.Type == IntList || f.Type == StrList }

// Table describes a class: its SQL table, keys and fields.
type Table struct {
	Class core.Class
	SQL   string // table name
	PK    string // primary key column
	StrPK bool   // the primary key is a name (lookup tables)
	Key   string // secondary key (login_base, email, hostname, ...)
	// SoftDelete marks tables whose rows are flagged deleted, never removed.
	SoftDelete bool
	// TagSQL, when set, makes tag names pseudo-fields: a query with one
	// placeholder (the tagname) correlated to the outer row t.
	TagSQL string
	Fields []Field
	byName map[string]*Field
}

// Field returns a field by name.
func (t *Table) Field(name string) (*Field, bool) {
	f, ok := t.byName[name]
	return f, ok
}

// FieldNames lists the fields in declaration order.
func (t *Table) FieldNames() []string {
	out := make([]string, 0, len(t.Fields))
	for _, f := range t.Fields {
		if !f.Hidden {
			out = append(out, f.Name)
		}
	}
	return out
}

// Flag letters of fld: a=add, u=update, r=required, n=nullable, A=admin
// only, h=hidden, t=time (64-bit int), c=count (non-negative int).
func fld(name string, typ Type, max int, flags string) Field {
	f := Field{Name: name, Type: typ, Max: max}
	for _, c := range flags {
		switch c {
		case 'a':
			f.Add = true
		case 'u':
			f.Update = true
		case 'r':
			f.Required = true
		case 'n':
			f.Null = true
		case 'A':
			f.Admin = true
		case 'h':
			f.Hidden = true
		case 't':
			f.Time = true
		case 'c':
			f.Count = true
		}
	}
	return f
}

func expr(name string, typ Type, sql string) Field {
	return Field{Name: name, Type: typ, Expr: sql, Null: true}
}

func list(name string, typ Type, src string) Field {
	return Field{Name: name, Type: typ, List: src}
}

// objectTag describes a site, person, node or interface tag table: one
// value per (object, tag type), named by the object's secondary key.
func objectTag(class core.Class, table, objCol, objTable, secondary string) *Table {
	pk := strings.TrimSuffix(table, "s") + "_id"
	return &Table{Class: class, SQL: table, PK: pk, Fields: cat([]Field{
		fld(pk, Int, 0, ""),
		fld(objCol, Int, 0, "ar"),
		fld("tag_type_id", Int, 0, "ar"),
		fld("value", String, 0, "aur"),
	}, tagCols(table, objCol, objTable, secondary))}
}

func tagCols(tagTable, ownerCol, ownerTable, keyCol string) []Field {
	tt := "(SELECT tt.%s FROM tag_types tt WHERE tt.tag_type_id = t.tag_type_id)"
	return []Field{
		expr(keyCol, String, "(SELECT o."+keyCol+" FROM "+ownerTable+" o WHERE o."+ownerCol+" = t."+ownerCol+")"),
		expr("tagname", String, fmt.Sprintf(tt, "tagname")),
		expr("description", String, fmt.Sprintf(tt, "description")),
		expr("category", String, fmt.Sprintf(tt, "category")),
	}
}

func tagSQL(tagTable, ownerCol string) string {
	return "(SELECT v.value FROM " + tagTable + " v JOIN tag_types tt ON tt.tag_type_id = v.tag_type_id WHERE v." +
		ownerCol + " = t." + ownerCol + " AND tt.tagname = ?)"
}

func cat(parts ...[]Field) []Field {
	var out []Field
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

const (
	liveSlice  = "s.deleted = 0"
	primaryKey = "CASE WHEN %s = 1 THEN 0 ELSE 1 END"
)

var tables = []*Table{
	{Class: core.Site, SQL: "sites", PK: "site_id", Key: "login_base", SoftDelete: true, TagSQL: tagSQL("site_tags", "site_id"), Fields: []Field{
		fld("site_id", Int, 0, ""),
		fld("name", String, 254, "aur"),
		fld("abbreviated_name", String, 50, "aur"),
		fld("login_base", String, 32, "aur"),
		fld("is_public", Bool, 0, "au"),
		fld("enabled", Bool, 0, "au"),
		fld("latitude", Float, 0, "aun"),
		fld("longitude", Float, 0, "aun"),
		fld("url", String, 254, "aun"),
		fld("date_created", Int, 0, ""),
		fld("last_updated", Int, 0, ""),
		fld("max_slices", Int, 0, "auc"),
		fld("max_slivers", Int, 0, "auc"),
		fld("ext_consortium_id", Int, 0, "aun"),
		fld("peer_id", Int, 0, "n"),
		fld("peer_site_id", Int, 0, "n"),
		list("person_ids", IntList, "SELECT ps.site_id AS o, ps.person_id AS m, ps.person_id AS k FROM person_site ps JOIN persons p ON p.person_id = ps.person_id WHERE p.deleted = 0"),
		list("slice_ids", IntList, "SELECT s.site_id AS o, s.slice_id AS m, s.slice_id AS k FROM slices s WHERE s.deleted = 0"),
		list("address_ids", IntList, "SELECT a.site_id AS o, a.address_id AS m, a.address_id AS k FROM addresses a"),
		list("pcu_ids", IntList, "SELECT p.site_id AS o, p.pcu_id AS m, p.pcu_id AS k FROM pcus p"),
		list("node_ids", IntList, "SELECT n.site_id AS o, n.node_id AS m, n.node_id AS k FROM nodes n WHERE n.deleted = 0"),
		list("site_tag_ids", IntList, "SELECT g.site_id AS o, g.site_tag_id AS m, g.site_tag_id AS k FROM site_tags g"),
	}},
	{Class: core.Address, SQL: "addresses", PK: "address_id", Fields: []Field{
		fld("address_id", Int, 0, ""),
		fld("site_id", Int, 0, "ar"),
		fld("line1", String, 254, "aun"),
		fld("line2", String, 254, "aun"),
		fld("line3", String, 254, "aun"),
		fld("city", String, 254, "aun"),
		fld("state", String, 254, "aun"),
		fld("postalcode", String, 64, "aun"),
		fld("country", String, 128, "aun"),
		list("address_type_ids", IntList, "SELECT x.address_id AS o, x.address_type_id AS m, x.address_type_id AS k FROM address_address_type x"),
		list("address_types", StrList, "SELECT x.address_id AS o, y.name AS m, y.address_type_id AS k FROM address_address_type x JOIN address_types y ON y.address_type_id = x.address_type_id"),
	}},
	{Class: core.AddressType, SQL: "address_types", PK: "address_type_id", Key: "name", Fields: []Field{
		fld("address_type_id", Int, 0, ""),
		fld("name", String, 20, "aur"),
		fld("description", String, 254, "aun"),
	}},
	{Class: core.Person, SQL: "persons", PK: "person_id", Key: "email", SoftDelete: true, TagSQL: tagSQL("person_tags", "person_id"), Fields: []Field{
		fld("person_id", Int, 0, ""),
		fld("email", String, 254, "aur"),
		fld("first_name", String, 128, "aur"),
		fld("last_name", String, 128, "aur"),
		fld("title", String, 128, "aun"),
		fld("phone", String, 64, "aun"),
		fld("url", String, 254, "aun"),
		fld("bio", String, 254, "aun"),
		fld("enabled", Bool, 0, "u"),
		fld("password", String, 254, "auh"),
		fld("verification_key", String, 254, "h"),
		fld("verification_expires", Int, 0, "h"),
		fld("date_created", Int, 0, ""),
		fld("last_updated", Int, 0, ""),
		fld("peer_id", Int, 0, "n"),
		fld("peer_person_id", Int, 0, "n"),
		list("role_ids", IntList, "SELECT r.person_id AS o, r.role_id AS m, r.role_id AS k FROM person_role r"),
		list("roles", StrList, "SELECT r.person_id AS o, y.name AS m, y.role_id AS k FROM person_role r JOIN roles y ON y.role_id = r.role_id"),
		list("site_ids", IntList, "SELECT ps.person_id AS o, ps.site_id AS m, "+fmt.Sprintf(primaryKey, "ps.is_primary")+" * 1000000000000 + ps.site_id AS k FROM person_site ps JOIN sites s ON s.site_id = ps.site_id WHERE s.deleted = 0"),
		list("key_ids", IntList, "SELECT y.person_id AS o, y.key_id AS m, y.key_id AS k FROM keys y WHERE y.is_blacklisted = 0"),
		list("slice_ids", IntList, "SELECT sp.person_id AS o, sp.slice_id AS m, sp.slice_id AS k FROM slice_person sp JOIN slices s ON s.slice_id = sp.slice_id WHERE "+liveSlice),
		list("person_tag_ids", IntList, "SELECT g.person_id AS o, g.person_tag_id AS m, g.person_tag_id AS k FROM person_tags g"),
	}},
	{Class: core.Role, SQL: "roles", PK: "role_id", Key: "name", Fields: []Field{
		fld("role_id", Int, 0, "ar"),
		fld("name", String, 100, "ar"),
	}},
	{Class: core.Key, SQL: "keys", PK: "key_id", Fields: []Field{
		fld("key_id", Int, 0, ""),
		fld("person_id", Int, 0, "ar"),
		fld("key_type", String, 20, "aur"),
		fld("key", String, 4096, "aur"),
		fld("usable", Bool, 0, ""),
		fld("unusable_reason", String, 0, "n"),
		fld("peer_id", Int, 0, "n"),
		fld("peer_key_id", Int, 0, "n"),
	}},
	lookup(core.KeyType, "key_types", "key_type"),
	{Class: core.Node, SQL: "nodes", PK: "node_id", Key: "hostname", SoftDelete: true, TagSQL: tagSQL("node_tags", "node_id"), Fields: []Field{
		fld("node_id", Int, 0, ""),
		fld("node_type", String, 20, "au"),
		fld("hostname", String, 255, "aur"),
		fld("site_id", Int, 0, "aru"),
		fld("boot_state", String, 20, "au"),
		fld("run_level", String, 20, "n"),
		fld("model", String, 255, "aun"),
		fld("boot_nonce", String, 128, "unA"),
		fld("version", String, 64, "aun"),
		fld("ssh_rsa_key", String, 1024, "n"),
		fld("key", String, 256, "unA"),
		fld("session", String, 256, "nA"),
		fld("verified", Bool, 0, ""),
		fld("date_created", Int, 0, ""),
		fld("last_updated", Int, 0, ""),
		fld("last_contact", Int, 0, "n"),
		fld("last_boot", Int, 0, "n"),
		fld("last_download", Int, 0, "n"),
		fld("last_pcu_reboot", Int, 0, "n"),
		fld("last_pcu_confirmation", Int, 0, "n"),
		expr("last_time_spent_online", Int, "NULL"),
		expr("last_time_spent_offline", Int, "NULL"),
		fld("peer_id", Int, 0, "n"),
		fld("peer_node_id", Int, 0, "n"),
		list("interface_ids", IntList, "SELECT i.node_id AS o, i.interface_id AS m, "+fmt.Sprintf(primaryKey, "i.is_primary")+" * 1000000000000 + i.interface_id AS k FROM interfaces i"),
		list("conf_file_ids", IntList, "SELECT c.node_id AS o, c.conf_file_id AS m, c.conf_file_id AS k FROM conf_file_node c"),
		list("slice_ids", IntList, "SELECT sn.node_id AS o, sn.slice_id AS m, sn.slice_id AS k FROM slice_node sn JOIN slices s ON s.slice_id = sn.slice_id WHERE "+liveSlice),
		list("slice_ids_whitelist", IntList, "SELECT sn.node_id AS o, sn.slice_id AS m, sn.slice_id AS k FROM slice_node_whitelist sn JOIN slices s ON s.slice_id = sn.slice_id WHERE "+liveSlice),
		list("pcu_ids", IntList, "SELECT p.node_id AS o, p.pcu_id AS m, p.pcu_id AS k FROM pcu_node p"),
		list("ports", IntList, "SELECT p.node_id AS o, p.port AS m, p.pcu_id AS k FROM pcu_node p"),
		list("node_tag_ids", IntList, "SELECT g.node_id AS o, g.node_tag_id AS m, g.node_tag_id AS k FROM node_tags g"),
		list("nodegroup_ids", IntList, "SELECT g.node_id AS o, ng.nodegroup_id AS m, ng.nodegroup_id AS k FROM node_tags g JOIN nodegroups ng ON ng.tag_type_id = g.tag_type_id AND ng.value = g.value"),
	}},
	{Class: core.Interface, SQL: "interfaces", PK: "interface_id", Key: "ip", TagSQL: tagSQL("interface_tags", "interface_id"), Fields: []Field{
		fld("interface_id", Int, 0, ""),
		fld("node_id", Int, 0, "ar"),
		fld("is_primary", Bool, 0, "au"),
		fld("type", String, 20, "au"),
		fld("method", String, 20, "aur"),
		fld("ip", String, 39, "aun"),
		fld("mac", String, 17, "aun"),
		fld("gateway", String, 39, "aun"),
		fld("network", String, 39, "aun"),
		fld("broadcast", String, 39, "aun"),
		fld("netmask", String, 39, "aun"),
		fld("dns1", String, 39, "aun"),
		fld("dns2", String, 39, "aun"),
		fld("bwlimit", Int, 0, "aunc"),
		fld("hostname", String, 256, "aun"),
		fld("last_updated", Int, 0, ""),
		list("interface_tag_ids", IntList, "SELECT g.interface_id AS o, g.interface_tag_id AS m, g.interface_tag_id AS k FROM interface_tags g"),
	}},
	{Class: core.TagType, SQL: "tag_types", PK: "tag_type_id", Key: "tagname", Fields: []Field{
		fld("tag_type_id", Int, 0, ""),
		fld("tagname", String, 100, "aur"),
		fld("description", String, 254, "aun"),
		fld("category", String, 64, "au"),
		list("role_ids", IntList, "SELECT r.tag_type_id AS o, r.role_id AS m, r.role_id AS k FROM tag_type_role r"),
		list("roles", StrList, "SELECT r.tag_type_id AS o, y.name AS m, y.role_id AS k FROM tag_type_role r JOIN roles y ON y.role_id = r.role_id"),
	}},
	objectTag(core.SiteTag, "site_tags", "site_id", "sites", "login_base"),
	objectTag(core.PersonTag, "person_tags", "person_id", "persons", "email"),
	objectTag(core.NodeTag, "node_tags", "node_id", "nodes", "hostname"),
	objectTag(core.InterfaceTag, "interface_tags", "interface_id", "interfaces", "ip"),
	{Class: core.SliceTag, SQL: "slice_tags", PK: "slice_tag_id", Fields: cat([]Field{
		fld("slice_tag_id", Int, 0, ""),
		fld("slice_id", Int, 0, "ar"),
		fld("tag_type_id", Int, 0, "ar"),
		fld("value", String, 0, "aur"),
		fld("node_id", Int, 0, "an"),
		fld("nodegroup_id", Int, 0, "an"),
	}, tagCols("slice_tags", "slice_id", "slices", "name"))},
	{Class: core.NodeGroup, SQL: "nodegroups", PK: "nodegroup_id", Key: "groupname", Fields: []Field{
		fld("nodegroup_id", Int, 0, ""),
		fld("groupname", String, 50, "aur"),
		fld("tag_type_id", Int, 0, "aur"),
		expr("tagname", String, "(SELECT tt.tagname FROM tag_types tt WHERE tt.tag_type_id = t.tag_type_id)"),
		fld("value", String, 254, "aur"),
		list("conf_file_ids", IntList, "SELECT c.nodegroup_id AS o, c.conf_file_id AS m, c.conf_file_id AS k FROM conf_file_nodegroup c"),
		list("node_ids", IntList, "SELECT ng.nodegroup_id AS o, g.node_id AS m, g.node_id AS k FROM nodegroups ng JOIN node_tags g ON g.tag_type_id = ng.tag_type_id AND g.value = ng.value JOIN nodes n ON n.node_id = g.node_id WHERE n.deleted = 0"),
	}},
	{Class: core.PCU, SQL: "pcus", PK: "pcu_id", Fields: []Field{
		fld("pcu_id", Int, 0, ""),
		fld("site_id", Int, 0, "ar"),
		fld("hostname", String, 254, "aun"),
		fld("ip", String, 254, "aur"),
		fld("protocol", String, 16, "aun"),
		fld("username", String, 254, "aun"),
		fld("password", String, 254, "aun"),
		fld("notes", String, 254, "aun"),
		fld("model", String, 32, "aun"),
		fld("last_updated", Int, 0, ""),
		list("node_ids", IntList, "SELECT p.pcu_id AS o, p.node_id AS m, p.port AS k FROM pcu_node p"),
		list("ports", IntList, "SELECT p.pcu_id AS o, p.port AS m, p.port AS k FROM pcu_node p"),
	}},
	{Class: core.ConfFile, SQL: "conf_files", PK: "conf_file_id", Fields: []Field{
		fld("conf_file_id", Int, 0, ""),
		fld("enabled", Bool, 0, "au"),
		fld("source", String, 255, "aur"),
		fld("dest", String, 255, "aur"),
		fld("file_permissions", String, 20, "au"),
		fld("file_owner", String, 50, "au"),
		fld("file_group", String, 50, "au"),
		fld("preinstall_cmd", String, 1024, "aun"),
		fld("postinstall_cmd", String, 1024, "aun"),
		fld("error_cmd", String, 1024, "aun"),
		fld("ignore_cmd_errors", Bool, 0, "au"),
		fld("always_update", Bool, 0, "au"),
		list("node_ids", IntList, "SELECT c.conf_file_id AS o, c.node_id AS m, c.node_id AS k FROM conf_file_node c"),
		list("nodegroup_ids", IntList, "SELECT c.conf_file_id AS o, c.nodegroup_id AS m, c.nodegroup_id AS k FROM conf_file_nodegroup c"),
	}},
	{Class: core.Slice, SQL: "slices", PK: "slice_id", Key: "name", SoftDelete: true,
		TagSQL: "(SELECT v.value FROM slice_tags v JOIN tag_types tt ON tt.tag_type_id = v.tag_type_id WHERE v.slice_id = t.slice_id AND v.node_id IS NULL AND v.nodegroup_id IS NULL AND tt.tagname = ? ORDER BY v.slice_tag_id LIMIT 1)",
		Fields: []Field{
			fld("slice_id", Int, 0, ""),
			fld("site_id", Int, 0, ""),
			fld("name", String, 64, "ar"),
			fld("instantiation", String, 20, "au"),
			fld("url", String, 254, "aun"),
			fld("description", String, 2048, "aun"),
			fld("max_nodes", Int, 0, "auc"),
			fld("creator_person_id", Int, 0, "n"),
			fld("created", Int, 0, ""),
			fld("expires", Int, 0, "ut"),
			fld("peer_id", Int, 0, "n"),
			fld("peer_slice_id", Int, 0, "n"),
			list("node_ids", IntList, "SELECT sn.slice_id AS o, sn.node_id AS m, sn.node_id AS k FROM slice_node sn JOIN nodes n ON n.node_id = sn.node_id WHERE n.deleted = 0"),
			list("person_ids", IntList, "SELECT sp.slice_id AS o, sp.person_id AS m, sp.person_id AS k FROM slice_person sp JOIN persons p ON p.person_id = sp.person_id WHERE p.deleted = 0"),
			list("slice_tag_ids", IntList, "SELECT g.slice_id AS o, g.slice_tag_id AS m, g.slice_tag_id AS k FROM slice_tags g"),
		}},
	{Class: core.InitScriptClass, SQL: "initscripts", PK: "initscript_id", Key: "name", Fields: []Field{
		fld("initscript_id", Int, 0, ""),
		fld("name", String, 254, "aur"),
		fld("enabled", Bool, 0, "au"),
		fld("script", String, 0, "aur"),
	}},
	{Class: core.Lease, SQL: "leases", PK: "lease_id", Fields: []Field{
		fld("lease_id", Int, 0, ""),
		fld("t_from", Int, 0, "aurt"),
		fld("t_until", Int, 0, "aurt"),
		fld("node_id", Int, 0, "ar"),
		fld("slice_id", Int, 0, "ar"),
		expr("hostname", String, "(SELECT n.hostname FROM nodes n WHERE n.node_id = t.node_id)"),
		expr("node_type", String, "(SELECT n.node_type FROM nodes n WHERE n.node_id = t.node_id)"),
		expr("name", String, "(SELECT s.name FROM slices s WHERE s.slice_id = t.slice_id)"),
		expr("site_id", Int, "(SELECT s.site_id FROM slices s WHERE s.slice_id = t.slice_id)"),
		expr("duration", Int, "(t.t_until - t.t_from)"),
	}},
	{Class: core.Ilink, SQL: "ilinks", PK: "ilink_id", Fields: []Field{
		fld("ilink_id", Int, 0, ""),
		fld("tag_type_id", Int, 0, "ar"),
		fld("src_interface_id", Int, 0, "ar"),
		fld("dst_interface_id", Int, 0, "ar"),
		fld("value", String, 0, "aun"),
	}},
	{Class: core.Session, SQL: "sessions", PK: "session_hash", StrPK: true, Fields: []Field{
		expr("session_id", String, "t.session_hash"),
		fld("person_id", Int, 0, "n"),
		fld("node_id", Int, 0, "n"),
		fld("expires", Int, 0, "n"),
	}},
	{Class: core.Peer, SQL: "peers", PK: "peer_id", Key: "peername", SoftDelete: true, Fields: []Field{
		fld("peer_id", Int, 0, ""),
		fld("peername", String, 254, "aur"),
		fld("peer_url", String, 254, "aur"),
		fld("key", String, 1024, "aur"),
		fld("cacert", String, 8192, "aun"),
		fld("shortname", String, 32, "aun"),
		fld("hrn_root", String, 64, "aun"),
		fld("max_slices", Int, 0, "auc"),
		fld("max_slivers_per_node", Int, 0, "aun"),
		fld("cap_cpu_share", Int, 0, "aun"),
		fld("cap_cpu_pct", Int, 0, "aun"),
		fld("cap_net_min_rate", Int, 0, "aun"),
		fld("cap_net_max_rate", Int, 0, "aun"),
		fld("cap_mem_max", Int, 0, "aun"),
		fld("last_refresh", Int, 0, "nt"),
		fld("refresh_error", String, 0, "n"),
		list("site_ids", IntList, "SELECT s.peer_id AS o, s.site_id AS m, s.site_id AS k FROM sites s WHERE s.deleted = 0 AND s.peer_id IS NOT NULL"),
		list("person_ids", IntList, "SELECT p.peer_id AS o, p.person_id AS m, p.person_id AS k FROM persons p WHERE p.deleted = 0 AND p.peer_id IS NOT NULL"),
		list("key_ids", IntList, "SELECT y.peer_id AS o, y.key_id AS m, y.key_id AS k FROM keys y WHERE y.peer_id IS NOT NULL"),
		list("node_ids", IntList, "SELECT n.peer_id AS o, n.node_id AS m, n.node_id AS k FROM nodes n WHERE n.deleted = 0 AND n.peer_id IS NOT NULL"),
		list("slice_ids", IntList, "SELECT s.peer_id AS o, s.slice_id AS m, s.slice_id AS k FROM slices s WHERE s.deleted = 0 AND s.peer_id IS NOT NULL"),
	}},
	lookup(core.BootState, "boot_states", "boot_state"),
	lookup(core.NodeType, "node_types", "node_type"),
	lookup(core.NetworkType, "network_types", "type"),
	lookup(core.NetworkMethod, "network_methods", "method"),
	lookup(core.SliceInstantiation, "slice_instantiations", "instantiation"),
}

func lookup(c core.Class, table, col string) *Table {
	return &Table{Class: c, SQL: table, PK: col, StrPK: true, Key: col, Fields: []Field{fld(col, String, 100, "ar")}}
}

var byClass = map[core.Class]*Table{}

func init() {
	for _, t := range tables {
		t.byName = map[string]*Field{}
		for i := range t.Fields {
			t.byName[t.Fields[i].Name] = &t.Fields[i]
		}
		byClass[t.Class] = t
	}
}

// TableOf returns the description of a class.
func TableOf(c core.Class) (*Table, bool) {
	t, ok := byClass[c]
	return t, ok
}

// Classes lists every described class, sorted.
func Classes() []core.Class {
	out := make([]core.Class, 0, len(byClass))
	for c := range byClass {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
