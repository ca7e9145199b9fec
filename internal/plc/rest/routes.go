package rest

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/planetlab/pl/internal/core"
)

// classDef describes a registry class served as a REST collection.
type classDef struct {
	class    core.Class
	path     string // collection path segment
	singular string // PLCAPI object name: Site, NodeTag, ...
	plural   string // PLCAPI plural: Sites, NodeTags, ...
	add      string // PLCAPI Add op ("" = no POST on the collection)
	update   bool
	delete   bool
	named    bool // keyed by name (lookup tables): no numeric ids
}

func crud(class core.Class, path, singular, plural string) classDef {
	return classDef{class, path, singular, plural, "Add" + singular, true, true, false}
}

// lookup is a table of names (boot states, ...): list, add, delete by name.
func lookup(class core.Class, path, singular, plural string) classDef {
	return classDef{class, path, singular, plural, "Add" + singular, false, true, true}
}

// LookupDeleter is implemented by registries that delete lookup-table
// names (which Registry.Delete's int ids cannot name).
type LookupDeleter interface {
	DeleteLookup(ctx context.Context, c *core.Caller, class core.Class, name string) error
}

// classes lists every collection. Lookup tables (boot states, ...) have no update.
var classes = []classDef{
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
	for _, c := range classes {
		if c.class == class {
			return c.path
		}
	}
	return ""
}

// relDef describes a relation served as PUT/DELETE {a}/{ref}/{sub}/{member}.
type relDef struct {
	rel          core.Relation
	a, b         classDef
	sub          string
	addOp, delOp string
	extra        bool // PUT takes a JSON object of extra fields
}

func classOf(c core.Class) classDef {
	for _, d := range classes {
		if d.class == c {
			return d
		}
	}
	panic("rest: unknown class " + string(c))
}

var relations = []relDef{
	{core.PersonSite, classOf(core.Person), classOf(core.Site), "sites", "AddPersonToSite", "DeletePersonFromSite", false},
	{core.PersonRole, classOf(core.Person), classOf(core.Role), "roles", "AddRoleToPerson", "DeleteRoleFromPerson", false},
	{core.SlicePerson, classOf(core.Slice), classOf(core.Person), "persons", "AddPersonToSlice", "DeletePersonFromSlice", false},
	{core.SliceNode, classOf(core.Slice), classOf(core.Node), "nodes", "AddSliceToNodes", "DeleteSliceFromNodes", false},
	{core.SliceNodeWhitelist, classOf(core.Slice), classOf(core.Node), "whitelist", "AddSliceToNodesWhitelist", "DeleteSliceFromNodesWhitelist", false},
	{core.NodePCU, classOf(core.Node), classOf(core.PCU), "pcus", "AddNodeToPCU", "DeleteNodeFromPCU", true},
	{core.ConfFileNode, classOf(core.ConfFile), classOf(core.Node), "nodes", "AddConfFileToNode", "DeleteConfFileFromNode", false},
	{core.ConfFileNodeGroup, classOf(core.ConfFile), classOf(core.NodeGroup), "nodegroups", "AddConfFileToNodeGroup", "DeleteConfFileFromNodeGroup", false},
	{core.TagTypeRole, classOf(core.TagType), classOf(core.Role), "roles", "AddRoleToTagType", "DeleteRoleFromTagType", false},
	{core.AddressAddressType, classOf(core.Address), classOf(core.AddressType), "types", "AddAddressTypeToAddress", "DeleteAddressTypeFromAddress", false},
}

func (h *Handler) buildRoutes() []route {
	var rs []route
	for _, c := range classes {
		rs = append(rs, h.classRoutes(c)...)
	}
	for _, rel := range relations {
		rs = append(rs, h.relationRoutes(rel)...)
	}
	rs = append(rs, h.customRoutes()...)
	rs = append(rs, h.nodeAPIRoutes()...)
	return rs
}

func (h *Handler) classRoutes(c classDef) []route {
	coll := Prefix + "/" + c.path
	item := coll + "/{ref}"
	rs := []route{{
		method: http.MethodGet, path: coll, op: "Get" + c.plural, list: true, resp: "RecordList",
		summary: "List " + strings.ReplaceAll(c.path, "-", " "),
		h: func(ctx context.Context, q *request) (result, error) {
			f, fields, err := parseListQuery(q.r.URL.Query())
			if err != nil {
				return result{}, err
			}
			recs, err := h.reg.Get(ctx, q.caller, c.class, f, fields)
			if err != nil {
				return result{}, err
			}
			if recs == nil {
				recs = []core.Record{}
			}
			return result{body: recs}, nil
		},
	}, {
		method: http.MethodGet, path: item, op: "Get" + c.plural, resp: "Record",
		summary: "Show one " + string(c.class) + " by id or name",
		h: func(ctx context.Context, q *request) (result, error) {
			fields, err := parseFields(q.r.URL.Query())
			if err != nil {
				return result{}, err
			}
			if c.named {
				recs, err := h.reg.Get(ctx, q.caller, c.class, &core.Filter{IsList: true, Names: []string{q.path("ref")}}, fields)
				if err != nil {
					return result{}, err
				}
				if len(recs) == 0 {
					return result{}, core.Errorf(core.NotFound, "no such %s %q", c.class, q.path("ref"))
				}
				return result{body: recs[0]}, nil
			}
			rec, err := h.getOne(ctx, q, c.class, fields)
			return result{body: rec}, err
		},
	}}
	if c.add != "" {
		rs = append(rs, route{
			method: http.MethodPost, path: coll, op: c.add, body: "Record", resp: "Created",
			summary: "Create a " + string(c.class),
			h: func(ctx context.Context, q *request) (result, error) {
				return h.add(ctx, q, c.class, nil)
			},
		})
	}
	if c.update {
		rs = append(rs, route{
			method: http.MethodPatch, path: item, op: "Update" + c.singular, body: "Record",
			summary: "Update fields of a " + string(c.class),
			h: func(ctx context.Context, q *request) (result, error) {
				id, err := h.resolve(ctx, q, c.class, "ref")
				if err != nil {
					return result{}, err
				}
				rec, err := h.recordBody(q)
				if err != nil {
					return result{}, err
				}
				return result{}, h.reg.Update(ctx, q.caller, c.class, id, rec)
			},
		})
	}
	if c.delete {
		rs = append(rs, route{
			method: http.MethodDelete, path: item, op: "Delete" + c.singular,
			summary: "Delete a " + string(c.class),
			h: func(ctx context.Context, q *request) (result, error) {
				if c.named {
					ld, ok := h.reg.(LookupDeleter)
					if !ok {
						return result{}, core.Errorf(core.Unimplemented, "deleting %s names is not supported by this registry", c.class)
					}
					return result{}, ld.DeleteLookup(ctx, q.caller, c.class, q.path("ref"))
				}
				id, err := h.resolve(ctx, q, c.class, "ref")
				if err != nil {
					return result{}, err
				}
				return result{}, h.reg.Delete(ctx, q.caller, c.class, id)
			},
		})
	}
	return rs
}

func (h *Handler) relationRoutes(rel relDef) []route {
	p := Prefix + "/" + rel.a.path + "/{ref}/" + rel.sub + "/{member}"
	ids := func(ctx context.Context, q *request) (int64, int64, error) {
		a, err := h.resolve(ctx, q, rel.a.class, "ref")
		if err != nil {
			return 0, 0, err
		}
		b, err := h.resolve(ctx, q, rel.b.class, "member")
		return a, b, err
	}
	put := route{
		method: http.MethodPut, path: p, op: rel.addOp,
		summary: "Add a " + string(rel.b.class) + " to a " + string(rel.a.class) + " (" + string(rel.rel) + ")",
		h: func(ctx context.Context, q *request) (result, error) {
			a, b, err := ids(ctx, q)
			if err != nil {
				return result{}, err
			}
			var extra core.Record
			if rel.extra {
				if extra, err = h.recordBody(q); err != nil {
					return result{}, err
				}
			}
			return result{}, h.reg.Link(ctx, q.caller, rel.rel, a, b, extra)
		},
	}
	if rel.extra {
		put.body = "Record"
	}
	del := route{
		method: http.MethodDelete, path: p, op: rel.delOp,
		summary: "Remove a " + string(rel.b.class) + " from a " + string(rel.a.class) + " (" + string(rel.rel) + ")",
		h: func(ctx context.Context, q *request) (result, error) {
			a, b, err := ids(ctx, q)
			if err != nil {
				return result{}, err
			}
			return result{}, h.reg.Unlink(ctx, q.caller, rel.rel, a, b)
		},
	}
	return []route{put, del}
}

// getOne resolves {ref} of class and returns the record the caller may see.
func (h *Handler) getOne(ctx context.Context, q *request, class core.Class, fields []string) (core.Record, error) {
	id, err := h.resolve(ctx, q, class, "ref")
	if err != nil {
		return nil, err
	}
	recs, err := h.reg.Get(ctx, q.caller, class, &core.Filter{IsList: true, IDs: []int64{id}}, fields)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, core.Errorf(core.NotFound, "no such %s %q", class, q.path("ref"))
	}
	return recs[0], nil
}

// add creates an object from the request body, with the given fields forced.
func (h *Handler) add(ctx context.Context, q *request, class core.Class, forced core.Record) (result, error) {
	rec, err := h.recordBody(q)
	if err != nil {
		return result{}, err
	}
	for k, v := range forced {
		if old, ok := rec[k]; ok && old != v {
			return result{}, core.FieldErrorf(k, "conflicts with the object named in the path")
		}
		rec[k] = v
	}
	id, err := h.reg.Add(ctx, q.caller, class, rec)
	if err != nil {
		return result{}, err
	}
	q.w.Header().Set("Location", Prefix+"/"+ClassPath(class)+"/"+strconv.FormatInt(id, 10))
	return result{status: http.StatusCreated, body: Created{ID: id}}, nil
}

// Created is the body of a 201 answer.
type Created struct {
	ID int64 `json:"id"`
}

func (h *Handler) recordBody(q *request) (core.Record, error) {
	b, err := readBody(q.w, q.r)
	if err != nil {
		return nil, err
	}
	return DecodeRecord(b)
}

func (h *Handler) strictBody(q *request, v any) error {
	b, err := readBody(q.w, q.r)
	if err != nil {
		return err
	}
	return decodeStrict(b, v)
}

// reservedParams are list query parameters that are not field equalities.
var reservedParams = map[string]bool{"filter": true, "fields": true, "sort": true, "limit": true, "offset": true}

// parseListQuery turns list query parameters into a filter and field list.
func parseListQuery(v url.Values) (*core.Filter, []string, error) {
	fields, err := parseFields(v)
	if err != nil {
		return nil, nil, err
	}
	var spec any
	if s := v.Get("filter"); s != "" {
		raw, err := decodeJSON([]byte(s))
		if err != nil {
			return nil, nil, core.FieldErrorf("filter", "%s", strings.TrimPrefix(core.PublicMessage(err), "body: "))
		}
		spec = raw
	}
	eq := map[string]any{}
	for k, vals := range v {
		if reservedParams[k] {
			continue
		}
		if len(vals) != 1 {
			return nil, nil, core.FieldErrorf(k, "given %d times; use filter= for lists", len(vals))
		}
		eq[k] = paramValue(vals[0])
	}
	if len(eq) > 0 {
		switch s := spec.(type) {
		case nil:
			spec = eq
		case map[string]any:
			for k, val := range eq {
				if _, dup := s[k]; dup {
					return nil, nil, core.FieldErrorf(k, "given both as a parameter and in filter")
				}
				s[k] = val
			}
		default:
			return nil, nil, core.FieldErrorf("filter", "field parameters need an object filter, not a list")
		}
	}
	var f *core.Filter
	if spec != nil {
		if f, err = core.ParseFilter(spec); err != nil {
			return nil, nil, err
		}
	}
	sortKeys, err := parseSort(v.Get("sort"))
	if err != nil {
		return nil, nil, err
	}
	limit, err := nonNegInt(v, "limit")
	if err != nil {
		return nil, nil, err
	}
	offset, err := nonNegInt(v, "offset")
	if err != nil {
		return nil, nil, err
	}
	if len(sortKeys) > 0 || limit > 0 || offset > 0 {
		if f == nil {
			f = &core.Filter{}
		}
		if len(sortKeys) > 0 {
			f.Sort = sortKeys
		}
		if limit > 0 {
			f.Limit = limit
		}
		if offset > 0 {
			f.Offset = offset
		}
	}
	return f, fields, nil
}

// paramValue types a simple equality parameter: integers and booleans
// become int64 and bool, anything else stays a string (use filter= for
// exact typing).
func paramValue(s string) any {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i
	}
	switch s {
	case "true":
		return true
	case "false":
		return false
	}
	return s
}

func parseFields(v url.Values) ([]string, error) {
	s := v.Get("fields")
	if s == "" {
		return nil, nil
	}
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			return nil, core.FieldErrorf("fields", "empty field name in %q", s)
		}
		out = append(out, f)
	}
	return out, nil
}

func parseSort(s string) ([]core.SortKey, error) {
	if s == "" {
		return nil, nil
	}
	var keys []core.SortKey
	for k := range strings.SplitSeq(s, ",") {
		k = strings.TrimSpace(k)
		desc := strings.HasPrefix(k, "-")
		k = strings.TrimLeft(k, "+-")
		if k == "" {
			return nil, core.FieldErrorf("sort", "empty sort key in %q", s)
		}
		keys = append(keys, core.SortKey{Field: k, Desc: desc})
	}
	return keys, nil
}

func nonNegInt(v url.Values, name string) (int, error) {
	s := v.Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, core.FieldErrorf(name, "want a non-negative integer, got %q", s)
	}
	return n, nil
}

// durationParam parses an optional integer number of seconds.
func durationParam(v url.Values, name string, def, max time.Duration) (time.Duration, error) {
	s := v.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || time.Duration(n)*time.Second > max {
		return 0, core.FieldErrorf(name, "want 0..%d seconds, got %q", int(max/time.Second), s)
	}
	return time.Duration(n) * time.Second, nil
}

// RelationPath returns the collection segment of rel's first class and
// the member segment: PUT/DELETE /api/v1/{a}/{id}/{sub}/{member}.
func RelationPath(rel core.Relation) (a, sub string, ok bool) {
	for _, r := range relations {
		if r.rel == rel {
			return r.a.path, r.sub, true
		}
	}
	return "", "", false
}
