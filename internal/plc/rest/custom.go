package rest

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/nodeapi"
	"github.com/planetlab/pl/internal/restapi"
)

// customRoutes are the routes beyond one class's CRUD.
func (h *Handler) customRoutes() []route {
	return slices.Concat(h.sessionRoutes(), h.personRoutes(), h.nodeSliceRoutes())
}

// sessionRoutes: log in and out, tokens, who am I, name resolution, the
// role sets of operations.
func (h *Handler) sessionRoutes() []route {
	p := restapi.Prefix
	return []route{
		{method: http.MethodPost, path: p + "/sessions", auth: authNone, op: "GetSession", body: "SessionRequest", resp: "SessionResponse",
			summary: "Log in with email and password; returns a bearer token",
			h: func(ctx context.Context, q *request) (result, error) {
				var req restapi.SessionRequest
				if err := h.strictBody(q, &req); err != nil {
					return result{}, err
				}
				if req.Email == "" {
					return result{}, core.FieldErrorf("email", "required")
				}
				if req.TTL < 0 {
					return result{}, core.FieldErrorf("ttl", "must not be negative")
				}
				c, err := h.reg.Authenticate(ctx, core.Credentials{Method: "password", Username: req.Email, Password: req.Password}, h.reg.OpRoles("GetSession"))
				if err != nil {
					return result{}, err
				}
				s, err := h.reg.CreateSession(ctx, c, time.Duration(req.TTL)*time.Second)
				if err != nil {
					return result{}, err
				}
				return result{status: http.StatusCreated, body: restapi.SessionResponse{Token: s.ID, Expires: s.Expires}}, nil
			}},
		{method: http.MethodPost, path: p + "/tokens", op: "GetSession", body: "TokenRequest", resp: "SessionResponse",
			summary: "Start another session (API token) for the authenticated caller",
			h: func(ctx context.Context, q *request) (result, error) {
				var req restapi.TokenRequest
				if b, err := readBody(q.w, q.r); err != nil {
					return result{}, err
				} else if len(b) > 0 {
					if err := decodeStrict(b, &req); err != nil {
						return result{}, err
					}
				}
				if req.TTL < 0 {
					return result{}, core.FieldErrorf("ttl", "must not be negative")
				}
				s, err := h.reg.CreateSession(ctx, q.caller, time.Duration(req.TTL)*time.Second)
				if err != nil {
					return result{}, err
				}
				return result{status: http.StatusCreated, body: restapi.SessionResponse{Token: s.ID, Expires: s.Expires}}, nil
			}},
		{method: http.MethodDelete, path: p + "/sessions", op: "DeleteSession",
			summary: "Log out: delete the caller's own session",
			h: func(ctx context.Context, q *request) (result, error) {
				if q.caller == nil || q.caller.Session == "" {
					return result{}, core.Errorf(core.Unauthenticated, "not authenticated by a session")
				}
				return result{}, h.reg.DeleteSession(ctx, q.caller, q.caller.Session)
			}},
		{method: http.MethodDelete, path: p + "/sessions/{id}", op: "DeleteSession",
			summary: "Delete a session by id",
			h: func(ctx context.Context, q *request) (result, error) {
				return result{}, h.reg.DeleteSession(ctx, q.caller, q.path("id"))
			}},
		{method: http.MethodGet, path: p + "/sessions", op: "GetSessions", list: true, resp: "RecordList",
			summary: "List sessions",
			h: func(ctx context.Context, q *request) (result, error) {
				f, fields, err := parseListQuery(q.r.URL.Query())
				if err != nil {
					return result{}, err
				}
				recs, err := h.reg.Get(ctx, q.caller, core.Session, f, fields)
				if recs == nil {
					recs = []core.Record{}
				}
				return result{body: recs}, err
			}},
		{method: http.MethodGet, path: p + "/whoami", resp: "Whoami",
			summary: "Describe the authenticated caller",
			h: func(ctx context.Context, q *request) (result, error) {
				return result{body: restapi.WhoamiOf(q.caller)}, nil
			}},
		{method: http.MethodGet, path: p + "/resolve", resp: "ResolveResponse",
			summary: "Resolve ?class= and ?id= or ?name= to an object id",
			h: func(ctx context.Context, q *request) (result, error) {
				v := q.r.URL.Query()
				class := core.Class(v.Get("class"))
				if class == "" {
					return result{}, core.FieldErrorf("class", "required")
				}
				var ref any
				switch {
				case v.Has("id") && v.Has("name"):
					return result{}, core.FieldErrorf("id", "give id or name, not both")
				case v.Has("id"):
					id, ok := parseRef(v.Get("id")).(int64)
					if !ok {
						return result{}, core.FieldErrorf("id", "want an integer, got %q", v.Get("id"))
					}
					ref = id
				case v.Has("name"):
					ref = v.Get("name")
				default:
					return result{}, core.FieldErrorf("name", "id or name required")
				}
				id, err := h.reg.Resolve(ctx, q.caller, class, ref)
				return result{body: restapi.ResolveResponse{ID: id}}, err
			}},
		{method: http.MethodGet, path: p + "/op-roles/{op}", auth: authNone, resp: "RolesResponse",
			summary: "Role set of a PLCAPI operation",
			h: func(ctx context.Context, q *request) (result, error) {
				roles := h.reg.OpRoles(q.path("op"))
				if roles == nil {
					return result{}, core.Errorf(core.NotFound, "no operation %q", q.path("op"))
				}
				return result{body: restapi.RolesResponse{Roles: roles}}, nil
			}},
	}
}

// personRoutes: keys and primary sites of persons, the key blacklist.
func (h *Handler) personRoutes() []route {
	p := restapi.Prefix
	return []route{
		{method: http.MethodGet, path: p + "/persons/{ref}/keys", op: "GetKeys", list: true, resp: "RecordList",
			summary: "List a person's keys",
			h: func(ctx context.Context, q *request) (result, error) {
				return h.listChildren(ctx, q, core.Person, core.Key, "person_id")
			}},
		{method: http.MethodPost, path: p + "/persons/{ref}/keys", op: "AddPersonKey", body: "Record", resp: "Created",
			summary: "Add an ssh key to a person",
			h: func(ctx context.Context, q *request) (result, error) {
				return h.addChild(ctx, q, core.Person, core.Key, "person_id")
			}},
		{method: http.MethodPut, path: p + "/persons/{ref}/primary-site/{member}", op: "SetPersonPrimarySite",
			summary: "Make a site the person's primary site",
			h: func(ctx context.Context, q *request) (result, error) {
				pid, err := h.resolve(ctx, q, core.Person, "ref")
				if err != nil {
					return result{}, err
				}
				sid, err := h.resolve(ctx, q, core.Site, "member")
				if err != nil {
					return result{}, err
				}
				return result{}, h.reg.SetPersonPrimarySite(ctx, q.caller, pid, sid)
			}},
		{method: http.MethodPost, path: p + "/keys/{ref}/blacklist", op: "BlacklistKey",
			summary: "Blacklist a key's material",
			h: func(ctx context.Context, q *request) (result, error) {
				id, err := h.resolve(ctx, q, core.Key, "ref")
				if err != nil {
					return result{}, err
				}
				return result{}, h.reg.BlacklistKey(ctx, q.caller, id)
			}},
	}
}

// nodeSliceRoutes: joining, state, watch and reports of nodes; renewal and
// tags of slices; leases.
func (h *Handler) nodeSliceRoutes() []route {
	p := restapi.Prefix
	return []route{
		{method: http.MethodPost, path: p + "/nodes/{ref}/join-token", op: "AddNode", resp: "JoinTokenResponse",
			summary: "Issue a one-time join token for a node (replaces earlier ones)",
			h: func(ctx context.Context, q *request) (result, error) {
				id, err := h.resolve(ctx, q, core.Node, "ref")
				if err != nil {
					return result{}, err
				}
				secret, err := h.reg.IssueJoinToken(ctx, q.caller, id)
				if err != nil {
					return result{}, err
				}
				tok := nodeapi.JoinToken{NodeID: id, Secret: secret, Fingerprint: h.fingerprint}
				return result{status: http.StatusCreated, body: restapi.JoinTokenResponse{NodeID: id, Secret: secret, Token: tok.String()}}, nil
			}},
		{method: http.MethodGet, path: p + "/nodes/{ref}/state", op: "GetSlivers", resp: "NodeState",
			summary: "A node's desired state (GetSlivers)",
			h: func(ctx context.Context, q *request) (result, error) {
				id, err := h.resolve(ctx, q, core.Node, "ref")
				if err != nil {
					return result{}, err
				}
				st, err := h.reg.NodeState(ctx, q.caller, id)
				return result{body: st}, err
			}},
		{method: http.MethodGet, path: p + "/nodes/{ref}/watch", op: "GetSlivers", resp: "NodeState",
			summary: "Long-poll a node's desired state: ?version=&timeout= (304 on timeout)",
			h: func(ctx context.Context, q *request) (result, error) {
				id, err := h.resolve(ctx, q, core.Node, "ref")
				if err != nil {
					return result{}, err
				}
				return h.watch(ctx, q, id)
			}},
		{method: http.MethodPost, path: p + "/nodes/{ref}/report", op: "ReportRunlevel", body: "ReportRequest",
			summary: "Record a node's run level, boot state, ssh host key, version and sliver errors",
			h: func(ctx context.Context, q *request) (result, error) {
				id, err := h.resolve(ctx, q, core.Node, "ref")
				if err != nil {
					return result{}, err
				}
				var req restapi.ReportRequest
				if err := h.strictBody(q, &req); err != nil {
					return result{}, err
				}
				return result{}, h.reg.ReportNode(ctx, q.caller, id, core.NodeReport{RunLevel: req.RunLevel, BootState: req.BootState,
					SSHHostKey: req.SSHHostKey, Version: req.Version, SliverErrors: req.SliverErrors})
			}},
		{method: http.MethodPost, path: p + "/slices/{ref}/renew", op: "UpdateSlice", body: "RenewRequest", resp: "RenewResponse",
			summary: "Renew a slice; answers the expiry granted",
			h: func(ctx context.Context, q *request) (result, error) {
				id, err := h.resolve(ctx, q, core.Slice, "ref")
				if err != nil {
					return result{}, err
				}
				var req restapi.RenewRequest
				if err := h.strictBody(q, &req); err != nil {
					return result{}, err
				}
				if req.Expires <= 0 {
					return result{}, core.FieldErrorf("expires", "required (UNIX seconds)")
				}
				got, err := h.reg.RenewSlice(ctx, q.caller, id, req.Expires)
				return result{body: restapi.RenewResponse{Expires: got}}, err
			}},
		{method: http.MethodGet, path: p + "/slices/{ref}/tags", op: "GetSliceTags", list: true, resp: "RecordList",
			summary: "List a slice's tags (attributes)",
			h: func(ctx context.Context, q *request) (result, error) {
				return h.listChildren(ctx, q, core.Slice, core.SliceTag, "slice_id")
			}},
		{method: http.MethodPost, path: p + "/slices/{ref}/tags", op: "AddSliceTag", body: "Record", resp: "Created",
			summary: "Add a slice tag (tag_type_id, value, optional node_id or nodegroup_id scope)",
			h: func(ctx context.Context, q *request) (result, error) {
				return h.addChild(ctx, q, core.Slice, core.SliceTag, "slice_id")
			}},
		{method: http.MethodPost, path: p + "/leases", op: "AddLeases", body: "LeasesRequest", resp: "LeasesResponse",
			summary: "Reserve nodes for a slice (AddLeases)",
			h: func(ctx context.Context, q *request) (result, error) {
				var req restapi.LeasesRequest
				if err := h.strictBody(q, &req); err != nil {
					return result{}, err
				}
				ids, errs, err := h.reg.AddLeases(ctx, q.caller, req.NodeIDs, req.SliceID, req.TFrom, req.TUntil)
				if err != nil {
					return result{}, err
				}
				if ids == nil {
					ids = []int64{}
				}
				if errs == nil {
					errs = []string{}
				}
				return result{body: restapi.LeasesResponse{NewIDs: ids, Errors: errs}}, nil
			}},
	}
}

// listChildren lists child objects of the parent named by {ref}.
func (h *Handler) listChildren(ctx context.Context, q *request, parent, child core.Class, field string) (result, error) {
	pid, err := h.resolve(ctx, q, parent, "ref")
	if err != nil {
		return result{}, err
	}
	v := q.r.URL.Query()
	if v.Has(field) {
		return result{}, core.FieldErrorf(field, "given by the path")
	}
	f, fields, err := parseListQuery(v)
	if err != nil {
		return result{}, err
	}
	if f == nil {
		f = &core.Filter{}
	}
	if f.IsList || f.Or {
		return result{}, core.FieldErrorf("filter", "list and -OR filters are not supported here; use the %s collection", restapi.ClassPath(child))
	}
	f.Terms = append(f.Terms, core.Term{Field: field, Op: core.Eq, Value: pid})
	recs, err := h.reg.Get(ctx, q.caller, child, f, fields)
	if recs == nil {
		recs = []core.Record{}
	}
	return result{body: recs}, err
}

// addChild creates a child object of the parent named by {ref}.
func (h *Handler) addChild(ctx context.Context, q *request, parent, child core.Class, field string) (result, error) {
	pid, err := h.resolve(ctx, q, parent, "ref")
	if err != nil {
		return result{}, err
	}
	return h.add(ctx, q, child, core.Record{field: pid})
}
