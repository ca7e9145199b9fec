package agent

import (
	"context"
	"encoding/json"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/core/tags"
	"github.com/planetlab/pl/internal/node/nmapi"
	"github.com/planetlab/pl/internal/node/vsys"
)

// addVsysMethods adds to methods the local API's methods of privileged
// operations (package vsys): the caller is always the calling sliver's slice, its
// grants are its vsys tag on this node (PLC's state or a ticket's), and
// the registry checks, runs and logs the call.
func (m *Main) addVsysMethods(methods map[string]nmapi.Method) {
	caller := func(c nmapi.Caller) (vsys.Caller, []tags.VsysGrant, error) {
		if m.Vsys == nil {
			return vsys.Caller{}, nil, core.Errorf(core.Unimplemented, "this node runs no privileged operations")
		}
		if c.Root {
			return vsys.Caller{}, nil, core.Errorf(core.Invalid, "the host's root runs its operations itself: call from a sliver")
		}
		st, _, err := m.apiState()
		if err != nil {
			return vsys.Caller{}, nil, err
		}
		s, ok := findSliver(st, c.Slice)
		if !ok {
			return vsys.Caller{}, nil, core.Errorf(core.NotFound, "slice %q is not on this node", c.Slice)
		}
		grants, bad := tags.VsysGrants(s.Attributes)
		if len(bad) > 0 {
			m.log.Warn("vsys values that grant nothing", "slice", c.Slice, "values", bad)
		}
		return vsys.Caller{Slice: c.Slice, XID: m.xids.Snapshot()[c.Slice]}, grants, nil
	}
	methods["Vsys"] = nmapi.Method{Help: "Run a privileged operation the caller's vsys tag grants: {op, args: [...]} -> {op, data, exit, stdout, stderr, truncated}",
		Fn: func(ctx context.Context, c nmapi.Caller, raw json.RawMessage) (any, error) {
			q, err := vsys.ParseRequest(raw)
			if err != nil {
				return nil, err
			}
			vc, grants, err := caller(c)
			if err != nil {
				return nil, err
			}
			return m.Vsys.Call(ctx, vc, grants, q)
		}}
	methods["VsysHelp"] = nmapi.Method{Help: "The privileged operations granted to the caller: {} -> {op: help}",
		Fn: func(ctx context.Context, c nmapi.Caller, raw json.RawMessage) (any, error) {
			if err := nmapi.Decode(raw, &struct{}{}); err != nil {
				return nil, err
			}
			_, grants, err := caller(c)
			if err != nil {
				return nil, err
			}
			return m.Vsys.Help(grants), nil
		}}
}
