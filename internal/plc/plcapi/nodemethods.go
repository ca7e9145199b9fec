package plcapi

import (
	"strings"
	"time"

	"github.com/planetlab/pl/internal/core"
)

// nodeMethods are the session, boot and node manager methods.
func nodeMethods() []*method {
	authCheck := func(x *call, a []any) (any, error) { return int64(1), nil }
	return []*method{
		{
			name: "AuthCheck", roles: allNodes, returns: tInt, fn: authCheck,
			help: "Returns 1 if the user or node authenticated successfully, faults otherwise.",
		},
		{
			name: "BootCheckAuthentication", roles: roles(rN), returns: tInt, fn: authCheck,
			help: "Deprecated alias of AuthCheck.",
		},
		{
			name: "GetSession", roles: allNodes, returns: tStr,
			params: []param{opt("expires", null(tInt))},
			help:   "Returns a new session key for the caller (the same session under session authentication). A person session lasts 24 hours unless expires (seconds) says otherwise; a node has one session, which never expires.",
			fn: func(x *call, a []any) (any, error) {
				if x.caller.Session != "" {
					return x.caller.Session, nil
				}
				var ttl time.Duration
				if n, ok := asInt(a[0]); ok {
					if n <= 0 {
						return nil, invalidArg("expires", "must be a positive number of seconds")
					}
					ttl = time.Duration(n) * time.Second
				}
				s, err := x.reg().CreateSession(x.ctx, x.caller, ttl)
				if err != nil {
					return nil, err
				}
				return s.ID, nil
			},
		},
		{
			name: "DeleteSession", roles: allNodes, auth: authSession, returns: tInt,
			help: "Invalidates the current session. Returns 1 if successful.",
			fn: func(x *call, a []any) (any, error) {
				return one(x, x.reg().DeleteSession(x.ctx, x.caller, x.caller.Session))
			},
		},
		{
			name: "GetSlivers", roles: roles(rA, rN), returns: structOf(nil),
			params: []param{opt("node_id_or_hostname", null(tIDOrName))},
			help:   "Returns a struct describing everything a node must host: its slivers (with keys and merged attributes), interfaces, groups, conf files, init scripts, accounts and leases. A node may omit its id.",
			fn: func(x *call, a []any) (any, error) {
				nid, err := x.nodeArg(a[0], "node_id_or_hostname")
				if err != nil {
					return nil, err
				}
				st, err := x.reg().NodeState(x.ctx, x.caller, nid)
				if err != nil {
					return nil, err
				}
				return nodeStateStruct(st), nil
			},
		},
		{
			name: "ReportRunlevel", roles: roles(rN, rA), returns: tInt,
			params: []param{p("report_fields", structOf(map[string]*typ{"run_level": str(20)}, "run_level")), opt("node_id_or_hostname", null(tIDOrName))},
			help:   "Reports the node's run level (boot, safeboot, failboot, reinstall). Returns 1 if successful.",
			fn: func(x *call, a []any) (any, error) {
				nid, err := x.nodeArg(a[1], "node_id_or_hostname")
				if err != nil {
					return nil, err
				}
				rl := a[0].(map[string]any)["run_level"].(string)
				return one(x, x.reg().ReportNode(x.ctx, x.caller, nid, core.NodeReport{RunLevel: rl}))
			},
		},
		{
			name: "BootUpdateNode", roles: roles(rN), auth: authBootOrSession, returns: tInt,
			params: []param{p("node_fields", structOf(map[string]*typ{
				"boot_state":      str(20),
				"primary_network": structOf(interfaceFields),
				"ssh_rsa_key":     str(1024),
				"ssh_host_key":    str(4096),
			}))},
			help: "Lets a booting node update its boot state, primary network settings and ssh host key. Returns 1 if successful.",
			fn:   bootUpdateNode,
		},
		{
			name: "BootGetNodeDetails", roles: roles(rN), auth: authBoot, returns: structOf(nil),
			help: "Returns the calling node's hostname, boot_state, model, networks (interfaces; NULL fields as '') and session.",
			fn:   bootGetNodeDetails,
		},
		{
			name: "GetPlcRelease", roles: everyone, returns: structOf(nil),
			help: "Returns information about this PLC's release: {'build': {...}, 'tags': {}, 'rpms': {}}.",
			fn: func(x *call, a []any) (any, error) {
				build := map[string]any{}
				for k, v := range x.h.opts.Release {
					build[k] = v
				}
				return map[string]any{"build": build, "tags": map[string]any{}, "rpms": map[string]any{}}, nil
			},
		},
	}
}

// nodeArg resolves an optional node argument; a node caller may omit it.
func (x *call) nodeArg(ref any, name string) (int64, error) {
	if ref == nil {
		if x.caller != nil && x.caller.Kind == core.NodeCaller {
			return x.caller.NodeID, nil
		}
		return 0, invalidArg("", "'%s' not specified", name)
	}
	return x.resolve(core.Node, ref)
}

func bootUpdateNode(x *call, a []any) (any, error) {
	f := a[0].(map[string]any)
	nid := x.caller.NodeID
	if bs, ok := f["boot_state"].(string); ok {
		if err := x.reg().Update(x.ctx, x.caller, core.Node, nid, core.Record{"boot_state": bs}); err != nil {
			return nil, err
		}
	}
	if pn, ok := f["primary_network"].(map[string]any); ok {
		if id, ok := asInt(pn["interface_id"]); ok {
			rec := record(pn, interfaceFields)
			delete(rec, "interface_id")
			delete(rec, "node_id")
			if err := x.reg().Update(x.ctx, x.caller, core.Interface, id, rec); err != nil {
				return nil, err
			}
		}
	}
	key, _ := f["ssh_host_key"].(string)
	if key == "" {
		key, _ = f["ssh_rsa_key"].(string)
	}
	return one(x, x.reg().ReportNode(x.ctx, x.caller, nid, core.NodeReport{SSHHostKey: strings.TrimSpace(key)}))
}

func bootGetNodeDetails(x *call, a []any) (any, error) {
	nid := x.caller.NodeID
	nodes, err := x.reg().Get(x.ctx, x.caller, core.Node, &core.Filter{IsList: true, IDs: []int64{nid}}, []string{"hostname", "boot_state", "model"})
	if err != nil {
		return nil, err
	}
	if len(nodes) == 0 {
		return nil, invalidArg("", "No such node")
	}
	ifs, err := x.reg().Get(x.ctx, x.caller, core.Interface, &core.Filter{Terms: []core.Term{{Field: "node_id", Op: core.Eq, Value: nid}}}, nil)
	if err != nil {
		return nil, err
	}
	networks := make([]any, 0, len(ifs))
	for _, r := range ifs {
		m := map[string]any{}
		for k, v := range r {
			if v == nil {
				v = ""
			}
			m[k] = v
		}
		networks = append(networks, m)
	}
	n := nodes[0]
	details := map[string]any{"hostname": n["hostname"], "boot_state": n["boot_state"], "model": n["model"], "networks": networks}
	if details["model"] == nil {
		details["model"] = ""
	}
	details["session"] = x.caller.Session
	return details, nil
}

// nodeStateStruct converts a NodeState (the one GetSlivers
// implementation, in the service) to the XML-RPC struct of reference
// plcapi.md §4.
func nodeStateStruct(st *core.NodeState) map[string]any {
	recs := func(rs []core.Record) []any {
		out := make([]any, len(rs))
		for i, r := range rs {
			out[i] = r
		}
		return out
	}
	groups := make([]any, len(st.Groups))
	for i, g := range st.Groups {
		groups[i] = g
	}
	inits := make([]any, len(st.InitScripts))
	for i, s := range st.InitScripts {
		inits[i] = map[string]any{"initscript_id": s.InitScriptID, "name": s.Name, "enabled": s.Enabled, "script": s.Script}
	}
	accounts := make([]any, len(st.Accounts))
	for i, acc := range st.Accounts {
		keys := make([]any, len(acc.Keys))
		for j, k := range acc.Keys {
			keys[j] = k
		}
		accounts[i] = map[string]any{"name": acc.Name, "keys": keys}
	}
	slivers := make([]any, len(st.Slivers))
	for i, s := range st.Slivers {
		keys := make([]any, len(s.Keys))
		for j, k := range s.Keys {
			keys[j] = map[string]any{"key_type": k.KeyType, "key": k.Key}
		}
		attrs := make([]any, len(s.Attributes))
		for j, at := range s.Attributes {
			attrs[j] = map[string]any{"tagname": at.TagName, "value": at.Value}
		}
		slivers[i] = map[string]any{
			"name": s.Name, "slice_id": s.SliceID, "instantiation": s.Instantiation, "expires": s.Expires,
			"keys": keys, "attributes": attrs, "GetSliceFamily": s.GetSliceFamily,
		}
		if len(s.VLinks) > 0 { // beyond the original: its virtual links' ends (issue 16)
			links := make([]any, len(s.VLinks))
			for j, l := range s.VLinks {
				links[j] = map[string]any{"name": l.Name, "vni": int64(l.VNI), "local": l.Local, "remote": l.Remote,
					"peer_node": l.PeerNode, "peer_addr": l.PeerAddr, "rate_kbit": l.RateKbit, "delay_us": l.DelayUS, "loss_ppm": l.LossPPM}
				if len(l.Peers) > 0 { // a LAN end: the other members
					peers := make([]any, len(l.Peers))
					for k, p := range l.Peers {
						peers[k] = map[string]any{"node": p.Node, "addr": p.Addr, "private": p.Private}
					}
					links[j].(map[string]any)["peers"] = peers
				}
			}
			slivers[i].(map[string]any)["vlinks"] = links
		}
	}
	var leases any // nil unless the node is reservable or has leases, as the original
	if st.ReservationPolicy != "none" || len(st.Leases) > 0 {
		l := make([]any, len(st.Leases))
		for i, x := range st.Leases {
			l[i] = map[string]any{"slice_id": x.SliceID, "t_from": x.TFrom, "t_until": x.TUntil, "name": x.Name}
		}
		leases = l
	}
	var hrn any
	if st.HRN != nil {
		hrn = *st.HRN
	}
	var xmpp any
	if st.XMPP.Server != nil {
		xmpp = *st.XMPP.Server
	}
	return map[string]any{
		"timestamp":          st.Timestamp,
		"node_id":            st.NodeID,
		"hostname":           st.Hostname,
		"interfaces":         recs(st.Interfaces),
		"groups":             groups,
		"conf_files":         recs(st.ConfFiles),
		"initscripts":        inits,
		"accounts":           accounts,
		"slivers":            slivers,
		"xmpp":               map[string]any{"server": xmpp},
		"hrn":                hrn,
		"reservation_policy": st.ReservationPolicy,
		"leases":             leases,
		"lease_granularity":  st.LeaseGranularity,
	}
}

// Lease time strings (Timestamp.Parameter), all read as UTC.
var leaseTimeFormats = []string{
	"2006-01-02 15:04:05", "2006-01-02 15:04:05 UTC", "2006-01-02T15:04:05",
	"2006-01-02 15:04", "2006-01-02 15:04 UTC",
}

func leaseTime(v any, name string) (int64, error) {
	if n, ok := asInt(v); ok {
		return n, nil
	}
	s, _ := v.(string)
	for _, f := range leaseTimeFormats {
		if t, err := time.ParseInLocation(f, strings.TrimSpace(s), time.UTC); err == nil {
			return t.Unix(), nil
		}
	}
	return 0, invalidArg(name, "cannot parse time %q (want an int or 'YYYY-MM-DD HH:MM:SS')", s)
}

func addLeases(x *call, a []any) (any, error) {
	from, err := leaseTime(a[2], "t_from")
	if err != nil {
		return nil, err
	}
	until, err := leaseTime(a[3], "t_until")
	if err != nil {
		return nil, err
	}
	nodes, err := x.resolveAll(core.Node, a[0])
	if err != nil {
		return nil, err
	}
	sid, err := x.resolve(core.Slice, a[1])
	if err != nil {
		return nil, err
	}
	ids, errs, err := x.reg().AddLeases(x.ctx, x.caller, nodes, sid, from, until)
	if err != nil {
		return nil, err
	}
	newIDs := make([]any, len(ids))
	for i, id := range ids {
		newIDs[i] = id
	}
	errList := make([]any, len(errs))
	for i, e := range errs {
		errList[i] = e
	}
	return map[string]any{"new_ids": newIDs, "errors": errList}, nil
}

func updateLeases(x *call, a []any) (any, error) {
	in := a[1].(map[string]any)
	rec := core.Record{}
	for _, k := range []string{"t_from", "t_until"} {
		if v, ok := in[k]; ok {
			t, err := leaseTime(v, k)
			if err != nil {
				return nil, err
			}
			rec[k] = t
		}
	}
	if v, ok := in["duration"]; ok {
		d, _ := asInt(v)
		rec["duration"] = d
	}
	list, ok := a[0].([]any)
	if !ok {
		list = []any{a[0]}
	}
	updated, errs := []any{}, []any{}
	for _, v := range list {
		id, _ := asInt(v)
		if err := x.reg().Update(x.ctx, x.caller, core.Lease, id, rec); err != nil {
			f, _ := toFault(err, x.h.opts.PLCName)
			if f == nil {
				return nil, err
			}
			errs = append(errs, f.String)
			continue
		}
		updated = append(updated, id)
	}
	return map[string]any{"updated_ids": updated, "errors": errs}, nil
}

// systemMethods are the XML-RPC introspection methods (no auth argument).
func systemMethods() []*method {
	return []*method{
		{
			name: "system.listMethods", auth: authNone, returns: arrayOf(tStr),
			help: "This method lists all the methods that the XML-RPC server knows how to dispatch.",
			fn: func(x *call, a []any) (any, error) {
				out := make([]any, len(x.h.names))
				for i, n := range x.h.names {
					out[i] = n
				}
				return out, nil
			},
		},
		{
			name: "system.methodHelp", auth: authNone, returns: tStr,
			params: []param{p("method", tStr)},
			help:   "Returns help text if defined for the method passed, otherwise returns an empty string.",
			fn: func(x *call, a []any) (any, error) {
				m := x.h.methods[a[0].(string)]
				if m == nil {
					return nil, invalidMethod(a[0].(string))
				}
				return m.helpText(), nil
			},
		},
		{
			name: "system.methodSignature", auth: authNone, returns: arrayOf(arrayOf(tStr)),
			params: []param{p("method", tStr)},
			help:   "Returns an array of known signatures (an array of arrays) for the method name passed.",
			fn: func(x *call, a []any) (any, error) {
				m := x.h.methods[a[0].(string)]
				if m == nil {
					return nil, invalidMethod(a[0].(string))
				}
				return m.signatures(), nil
			},
		},
		{
			name: "system.multicall", auth: authNone, returns: arrayOf(tAny),
			params: []param{p("calls", arrayOf(structOf(nil)))},
			help:   "Processes an array of calls {'methodName': ..., 'params': [...]}, and returns an array of results: [result] for a success, {'faultCode', 'faultString'} for a failure.",
			fn: func(x *call, a []any) (any, error) {
				return x.h.multicall(x.ctx, a[0].([]any)), nil
			},
		},
	}
}
