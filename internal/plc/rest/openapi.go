package rest

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/planetlab/pl/internal/restapi"
)

// OpenAPI returns the OpenAPI 3 document describing every route of the
// handler. It is generated from the route table, so it cannot drift from
// what the handler serves.
func (h *Handler) OpenAPI() map[string]any {
	paths := map[string]any{}
	for _, rt := range h.routes {
		item, _ := paths[rt.path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[rt.path] = item
		}
		item[strings.ToLower(rt.method)] = h.operation(rt)
	}
	paths[restapi.Prefix+"/openapi.json"] = map[string]any{"get": map[string]any{
		"operationId": "openapi", "summary": "This document", "security": []any{},
		"responses": map[string]any{"200": map[string]any{"description": "OpenAPI 3 document",
			"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}}},
	}}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":       "PlanetLab Central REST API",
			"version":     "1",
			"description": "PLC registry and node API. Objects are addressed by id (digits) or name. Errors are {\"error\":{\"code\",\"field\",\"message\"}}.",
		},
		"paths": paths,
		"components": map[string]any{
			"securitySchemes": map[string]any{
				"bearer": map[string]any{"type": "http", "scheme": "bearer", "description": "session id or API token from POST /api/v1/sessions"},
				"node":   map[string]any{"type": "apiKey", "in": "header", "name": "Authorization", "description": "PLNode <node_id>:<node_key>"},
			},
			"schemas": schemas,
		},
	}
}

var pathParam = regexp.MustCompile(`\{([a-z]+)\}`)

func (h *Handler) operation(rt route) map[string]any {
	var params []any
	for _, m := range pathParam.FindAllStringSubmatch(rt.path, -1) {
		params = append(params, map[string]any{"name": m[1], "in": "path", "required": true,
			"description": "id (digits) or name", "schema": map[string]any{"type": "string"}})
	}
	if rt.list {
		for _, p := range []struct{ name, desc string }{
			{"filter", "PLCAPI-style filter as JSON (object or list of ids/names)"},
			{"fields", "comma-separated return fields"},
			{"sort", "comma-separated sort keys; -field sorts descending"},
			{"limit", "maximum number of results"},
			{"offset", "results to skip"},
		} {
			params = append(params, map[string]any{"name": p.name, "in": "query", "description": p.desc, "schema": map[string]any{"type": "string"}})
		}
	}
	if rt.resp == "NodeState" && strings.HasSuffix(rt.path, "watch") {
		params = append(params,
			map[string]any{"name": "version", "in": "query", "description": "version the caller has", "schema": map[string]any{"type": "string"}},
			map[string]any{"name": "timeout", "in": "query", "description": "seconds to wait (default 55, max 300)", "schema": map[string]any{"type": "integer"}})
	}
	if strings.HasSuffix(rt.path, "/resolve") {
		for _, n := range []string{"class", "id", "name"} {
			params = append(params, map[string]any{"name": n, "in": "query", "schema": map[string]any{"type": "string"}})
		}
	}
	op := map[string]any{
		"operationId": opID(rt),
		"summary":     rt.summary,
		"responses":   responses(rt),
	}
	if rt.op != "" {
		op["description"] = "Authorized as PLCAPI " + rt.op + "."
	}
	if len(params) > 0 {
		op["parameters"] = params
	}
	switch rt.auth {
	case authNone:
		op["security"] = []any{}
	case authNode:
		op["security"] = []any{map[string]any{"node": []any{}}}
	default:
		op["security"] = []any{map[string]any{"bearer": []any{}}, map[string]any{}}
	}
	if rt.body != "" {
		op["requestBody"] = map[string]any{"required": rt.body != "TokenRequest", "content": map[string]any{
			"application/json": map[string]any{"schema": ref(rt.body)}}}
	}
	return op
}

func opID(rt route) string {
	s := strings.TrimPrefix(rt.path, restapi.Prefix+"/")
	s = strings.NewReplacer("{", "", "}", "", "/", "_", "-", "_").Replace(s)
	return strings.ToLower(rt.method) + "_" + s
}

func ref(name string) map[string]any {
	return map[string]any{"$ref": "#/components/schemas/" + name}
}

func responses(rt route) map[string]any {
	r := map[string]any{"default": map[string]any{"description": "error",
		"content": map[string]any{"application/json": map[string]any{"schema": ref("Error")}}}}
	switch {
	case rt.resp == "":
		r["204"] = map[string]any{"description": "done"}
	case rt.resp == "Created" || rt.resp == "SessionResponse" || rt.resp == "JoinTokenResponse":
		r["201"] = map[string]any{"description": "created",
			"content": map[string]any{"application/json": map[string]any{"schema": ref(rt.resp)}}}
	default:
		r["200"] = map[string]any{"description": "ok",
			"content": map[string]any{"application/json": map[string]any{"schema": ref(rt.resp)}}}
	}
	if strings.HasSuffix(rt.path, "watch") {
		r["304"] = map[string]any{"description": "no change before the timeout"}
	}
	return r
}

func obj(props map[string]any, required ...string) map[string]any {
	o := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

var (
	tInt   = map[string]any{"type": "integer", "format": "int64"}
	tStr   = map[string]any{"type": "string"}
	tStrs  = map[string]any{"type": "array", "items": tStr}
	tNum   = map[string]any{"type": "number"}
	tInts  = map[string]any{"type": "array", "items": tInt}
	tRecs  = map[string]any{"type": "array", "items": map[string]any{"type": "object"}}
	tAnyOb = map[string]any{"type": "object", "additionalProperties": true}
)

var schemas = map[string]any{
	"Record":     map[string]any{"type": "object", "additionalProperties": true, "description": "registry object with PLCAPI field names"},
	"RecordList": map[string]any{"type": "array", "items": ref("Record")},
	"Created":    obj(map[string]any{"id": tInt, "warnings": tStrs}, "id"),
	"Error": obj(map[string]any{"error": obj(map[string]any{
		"code":        map[string]any{"type": "string", "enum": []string{"invalid", "not_found", "conflict", "unauthenticated", "forbidden", "rate_limited", "not_implemented", "unavailable", "internal"}},
		"field":       tStr,
		"message":     tStr,
		"retry_after": tInt,
	}, "code", "message")}, "error"),
	"SessionRequest":          obj(map[string]any{"email": tStr, "password": tStr, "ttl": tInt}, "email", "password"),
	"TokenRequest":            obj(map[string]any{"ttl": tInt}),
	"SessionResponse":         obj(map[string]any{"token": tStr, "expires": tInt}, "token", "expires"),
	"Whoami":                  obj(map[string]any{"kind": tStr, "person_id": tInt, "email": tStr, "roles": tStrs, "site_ids": tInts, "node_id": tInt}, "kind"),
	"ResolveResponse":         obj(map[string]any{"id": tInt}, "id"),
	"RolesResponse":           obj(map[string]any{"roles": tStrs}, "roles"),
	"GENICertificateRequest":  obj(map[string]any{"public_key": tStr}, "public_key"),
	"GENICertificateResponse": obj(map[string]any{"certificate": tStr}, "certificate"),
	"GENICredentialRequest":   obj(map[string]any{"certificate": tStr, "slice": tStr}, "certificate"),
	"GENICredentialResponse":  obj(map[string]any{"credential": tStr}, "credential"),
	"RenewRequest":            obj(map[string]any{"expires": tInt}, "expires"),
	"RenewResponse":           obj(map[string]any{"expires": tInt}, "expires"),
	"JoinTokenResponse":       obj(map[string]any{"node_id": tInt, "secret": tStr, "token": tStr}, "node_id", "secret", "token"),
	"LeasesRequest":           obj(map[string]any{"node_ids": tInts, "slice_id": tInt, "t_from": tInt, "t_until": tInt}, "node_ids", "slice_id", "t_from", "t_until"),
	"LeasesResponse":          obj(map[string]any{"new_ids": tInts, "errors": tStrs}, "new_ids", "errors"),
	"ReportRequest":           obj(map[string]any{"run_level": tStr, "ssh_host_key": tStr, "sliver_errors": tAnyOb}),
	"Report":                  obj(map[string]any{"run_level": tStr, "boot_state": tStr, "ssh_host_key": tStr, "version": tStr, "sliver_errors": tAnyOb, "figures": tAnyOb, "bwmon_events": map[string]any{"type": "array", "items": tAnyOb}}),
	"SliceTraffic":            map[string]any{"type": "object", "description": "a slice's traffic on every node: totals, bytes per day, top destinations, the nodes with traffic and those that did not answer (core.SliceTraffic; docs/audit.md)"},
	"AuditAnswer":             map[string]any{"type": "object", "description": "flows with the remote address, their slice, site and PIs, and the nodes that did not answer (core.AuditAnswer; docs/audit.md)"},
	"NodeRows":                map[string]any{"type": "array", "items": tAnyOb, "description": "planet table node rows (core.NodeRow; docs/monitoring.md)"},
	"SliceRows": map[string]any{"type": "array", "description": "planet table slice rows (core.SliceRow)", "items": map[string]any{"type": "object", "additionalProperties": true,
		"properties": map[string]any{"slice_id": tInt, "name": tStr, "site_id": tInt, "hosts": tStrs, "slivers": map[string]any{"type": "array", "items": map[string]any{
			"type": "object", "additionalProperties": true, "description": "one sliver (core.SliverRow)",
			"properties": map[string]any{"node_id": tInt, "hostname": tStr, "state": tStr, "cpu_pct": tNum, "mem_used": tInt, "rx_kbps": tNum, "tx_kbps": tNum, "error": tStr,
				"ipv6": map[string]any{"type": "string", "description": "the sliver's own IPv6 address (its node's prefix and xid, docs/networks.md), as the node reports it; absent: IPv4-only"}}}}}}},
	"Registration":   obj(map[string]any{"first_name": tStr, "last_name": tStr, "email": tStr, "site": tStr, "password": tStr, "key": tStr}, "first_name", "last_name", "email", "site", "password"),
	"NodeSelection":  obj(map[string]any{"where": tStr, "per_site": tInt, "count": tInt, "near": tStr, "dry_run": map[string]any{"type": "boolean"}}),
	"SelectedNodes":  map[string]any{"type": "array", "items": obj(map[string]any{"node_id": tInt, "hostname": tStr, "site": tStr, "distance_km": map[string]any{"type": "number"}, "load": map[string]any{"type": "number"}})},
	"ReasonRequest":  obj(map[string]any{"reason": tStr}, "reason"),
	"ResetRequest":   obj(map[string]any{"email": tStr}, "email"),
	"ResetComplete":  obj(map[string]any{"token": tStr, "password": tStr}, "token", "password"),
	"LinkToken":      obj(map[string]any{"token": tStr}, "token"),
	"MonitorActions": map[string]any{"type": "array", "items": obj(map[string]any{"action_id": tInt, "at": tInt, "kind": tStr, "node_id": tInt, "site_id": tInt, "slice_id": tInt, "level": tInt, "actor": tStr, "reason": tStr})},
	"PlanetHistory":  map[string]any{"type": "array", "items": obj(map[string]any{"at": tInt, "nodes_up": tInt, "nodes_down": tInt, "nodes_unknown": tInt, "mean_load": tNum, "max_load": tNum, "cpu_pct": tNum, "slivers": tInt, "slices": tInt, "rx_kbps": tNum, "tx_kbps": tNum})},
	"Notices":        map[string]any{"type": "array", "items": obj(map[string]any{"notice_id": tInt, "at": tInt, "site_id": tInt, "node_id": tInt, "kind": tStr, "recipients": tStrs, "subject": tStr, "body": tStr})},
	"JoinRequest":    obj(map[string]any{"node_id": tInt, "secret": tStr, "ssh_host_key": tStr}, "node_id", "secret"),
	"JoinResponse":   obj(map[string]any{"node_id": tInt, "hostname": tStr, "node_key": tStr}, "node_id", "hostname", "node_key"),
	"TicketRequest":  obj(map[string]any{"node_ids": tInts, "duration": tInt, "rspec": tAnyOb}),
	"TicketResponse": obj(map[string]any{"ticket": tStr}, "ticket"),
	"Outbox":         map[string]any{"type": "array", "items": obj(map[string]any{"mail_id": tInt, "created": tInt, "kind": tStr, "recipients": tStrs, "subject": tStr, "body": tStr, "state": tStr, "attempts": tInt, "next_try": tInt, "sent_at": tInt, "last_error": tStr})},
	"RefusalRequest": obj(map[string]any{"reason": tStr}, "reason"),
	"BindRequest":    obj(map[string]any{"remote_object_id": tInt}, "remote_object_id"),
	"PeerName":       obj(map[string]any{"peername": tStr}, "peername"),
	"NodeState": map[string]any{"type": "object", "additionalProperties": true,
		"description": "GetSlivers content (core.NodeState)",
		"properties": map[string]any{"version": tStr, "timestamp": tInt, "node_id": tInt, "hostname": tStr,
			"interfaces": tRecs, "groups": tStrs, "conf_files": tRecs, "initscripts": tRecs, "accounts": tRecs,
			"slivers": tRecs, "leases": tRecs, "reservation_policy": tStr, "lease_granularity": tInt,
			"ipv6_prefix": map[string]any{"type": "string", "description": "prefix of the slivers' IPv6 addresses: the sliversipv6prefix tag of the node's primary interface (docs/networks.md); absent: none"}}},
}

func (h *Handler) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.OpenAPI())
}
