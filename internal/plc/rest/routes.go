package rest

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/restapi"
)

// LookupDeleter is implemented by registries that delete lookup-table
// names (which Registry.Delete's int ids cannot name).
type LookupDeleter interface {
	DeleteLookup(ctx context.Context, c *core.Caller, class core.Class, name string) error
}

func (h *Handler) buildRoutes() []route {
	var rs []route
	for _, c := range restapi.Collections {
		rs = append(rs, h.classRoutes(c)...)
	}
	for _, rel := range restapi.Relations {
		rs = append(rs, h.relationRoutes(rel)...)
	}
	rs = append(rs, h.customRoutes()...)
	rs = append(rs, h.nodeAPIRoutes()...)
	rs = append(rs, h.planetRoutes()...)
	rs = append(rs, h.accountRoutes()...)
	rs = append(rs, h.outboxRoutes()...)
	rs = append(rs, h.auditRoutes()...)
	rs = append(rs, h.geniRoutes()...)
	rs = append(rs, h.ticketRoutes()...)
	rs = append(rs, h.peerRoutes()...)
	return rs
}

func (h *Handler) classRoutes(c restapi.Collection) []route {
	coll := restapi.Prefix + "/" + c.Path
	item := coll + "/{ref}"
	rs := []route{{
		method: http.MethodGet, path: coll, op: "Get" + c.Plural, list: true, resp: "RecordList",
		summary: "List " + strings.ReplaceAll(c.Path, "-", " "),
		h: func(ctx context.Context, q *request) (result, error) {
			f, fields, err := parseListQuery(q.r.URL.Query())
			if err != nil {
				return result{}, err
			}
			recs, err := h.reg.Get(ctx, q.caller, c.Class, f, fields)
			if err != nil {
				return result{}, err
			}
			if recs == nil {
				recs = []core.Record{}
			}
			return result{body: recs}, nil
		},
	}, {
		method: http.MethodGet, path: item, op: "Get" + c.Plural, resp: "Record",
		summary: "Show one " + string(c.Class) + " by id or name",
		h: func(ctx context.Context, q *request) (result, error) {
			fields, err := parseFields(q.r.URL.Query())
			if err != nil {
				return result{}, err
			}
			if c.Named {
				recs, err := h.reg.Get(ctx, q.caller, c.Class, &core.Filter{IsList: true, Names: []string{q.path("ref")}}, fields)
				if err != nil {
					return result{}, err
				}
				if len(recs) == 0 {
					return result{}, core.Errorf(core.NotFound, "no such %s %q", c.Class, q.path("ref"))
				}
				return result{body: recs[0]}, nil
			}
			rec, err := h.getOne(ctx, q, c.Class, fields)
			return result{body: rec}, err
		},
	}}
	if c.Add != "" {
		rs = append(rs, route{
			method: http.MethodPost, path: coll, op: c.Add, body: "Record", resp: "Created",
			summary: "Create a " + string(c.Class),
			h: func(ctx context.Context, q *request) (result, error) {
				return h.add(ctx, q, c.Class, nil)
			},
		})
	}
	if c.Update {
		rs = append(rs, route{
			method: http.MethodPatch, path: item, op: "Update" + c.Singular, body: "Record",
			summary: "Update fields of a " + string(c.Class),
			h: func(ctx context.Context, q *request) (result, error) {
				id, err := h.resolve(ctx, q, c.Class, "ref")
				if err != nil {
					return result{}, err
				}
				rec, err := h.recordBody(q)
				if err != nil {
					return result{}, err
				}
				return result{}, h.reg.Update(ctx, q.caller, c.Class, id, rec)
			},
		})
	}
	if c.Delete {
		rs = append(rs, route{
			method: http.MethodDelete, path: item, op: "Delete" + c.Singular,
			summary: "Delete a " + string(c.Class),
			h: func(ctx context.Context, q *request) (result, error) {
				if c.Named {
					ld, ok := h.reg.(LookupDeleter)
					if !ok {
						return result{}, core.Errorf(core.Unimplemented, "deleting %s names is not supported by this registry", c.Class)
					}
					return result{}, ld.DeleteLookup(ctx, q.caller, c.Class, q.path("ref"))
				}
				id, err := h.resolve(ctx, q, c.Class, "ref")
				if err != nil {
					return result{}, err
				}
				return result{}, h.reg.Delete(ctx, q.caller, c.Class, id)
			},
		})
	}
	return rs
}

func (h *Handler) relationRoutes(rel restapi.RelationRoute) []route {
	p := restapi.Prefix + "/" + rel.A.Path + "/{ref}/" + rel.Sub + "/{member}"
	ids := func(ctx context.Context, q *request) (int64, int64, error) {
		a, err := h.resolve(ctx, q, rel.A.Class, "ref")
		if err != nil {
			return 0, 0, err
		}
		b, err := h.resolve(ctx, q, rel.B.Class, "member")
		return a, b, err
	}
	put := route{
		method: http.MethodPut, path: p, op: rel.AddOp,
		summary: "Add a " + string(rel.B.Class) + " to a " + string(rel.A.Class) + " (" + string(rel.Rel) + ")",
		h: func(ctx context.Context, q *request) (result, error) {
			a, b, err := ids(ctx, q)
			if err != nil {
				return result{}, err
			}
			var extra core.Record
			if rel.Extra {
				if extra, err = h.recordBody(q); err != nil {
					return result{}, err
				}
			}
			return result{}, h.reg.Link(ctx, q.caller, rel.Rel, a, b, extra)
		},
	}
	if rel.Extra {
		put.body = "Record"
	}
	del := route{
		method: http.MethodDelete, path: p, op: rel.DelOp,
		summary: "Remove a " + string(rel.B.Class) + " from a " + string(rel.A.Class) + " (" + string(rel.Rel) + ")",
		h: func(ctx context.Context, q *request) (result, error) {
			a, b, err := ids(ctx, q)
			if err != nil {
				return result{}, err
			}
			return result{}, h.reg.Unlink(ctx, q.caller, rel.Rel, a, b)
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
	q.w.Header().Set("Location", restapi.Prefix+"/"+restapi.ClassPath(class)+"/"+strconv.FormatInt(id, 10))
	body := restapi.Created{ID: id}
	if class == core.Key {
		body.Warnings, err = h.keyWarnings(ctx, q, id)
		if err != nil {
			return result{}, err
		}
	}
	return result{status: http.StatusCreated, body: body}, nil
}

// keyWarnings tells the caller when a key was stored but is not usable
// (issue 9.1: the original's pattern accepts it, OpenSSH does not).
func (h *Handler) keyWarnings(ctx context.Context, q *request, id int64) ([]string, error) {
	recs, err := h.reg.Get(ctx, q.caller, core.Key, &core.Filter{IsList: true, IDs: []int64{id}}, []string{"usable", "unusable_reason"})
	if err != nil || len(recs) == 0 || recs[0]["usable"] != false {
		return nil, err
	}
	return []string{fmt.Sprintf("key %d is stored but not usable, so it is not installed on any node: %v", id, recs[0]["unusable_reason"])}, nil
}

func (h *Handler) recordBody(q *request) (core.Record, error) {
	b, err := readBody(q.w, q.r)
	if err != nil {
		return nil, err
	}
	return restapi.DecodeRecord(b)
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
		raw, err := restapi.DecodeJSON([]byte(s))
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
