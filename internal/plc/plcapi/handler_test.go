package plcapi

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/xmlrpc"
)

var (
	adminAuth = map[string]any{"AuthMethod": "password", "Username": "admin@example.org", "AuthString": "secret"}
	userAuth  = map[string]any{"AuthMethod": "password", "Username": "user@example.org", "AuthString": "secret", "Role": "user"}
	anonAuth  = map[string]any{"AuthMethod": "anonymous"}
)

// rpc posts one call through the full HTTP path and decodes the answer.
func rpc(t *testing.T, h http.Handler, method string, params ...any) (any, *xmlrpc.Fault) {
	t.Helper()
	body, err := xmlrpc.EncodeCall(method, params...)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/PLCAPI/", bytes.NewReader(body)))
	if rec.Code != 200 {
		t.Fatalf("%s: HTTP %d: %s", method, rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "text/xml; charset=utf-8" {
		t.Fatalf("content type %q", ct)
	}
	v, err := xmlrpc.DecodeResponse(rec.Body, xmlrpc.Limits{})
	var f *xmlrpc.Fault
	if errors.As(err, &f) {
		return nil, f
	}
	if err != nil {
		t.Fatal(err)
	}
	return v, nil
}

func wantFault(t *testing.T, f *xmlrpc.Fault, code int, str string) {
	t.Helper()
	if f == nil {
		t.Fatalf("no fault, want %d %q", code, str)
	}
	if f.Code != code || f.String != str {
		t.Fatalf("fault %d %q, want %d %q", f.Code, f.String, code, str)
	}
}

func newTestHandler() (*Handler, *fakeRegistry) {
	reg := &fakeRegistry{}
	return newHandler(reg, Options{Release: map[string]string{"version": "test"}}), reg
}

func TestFaults(t *testing.T) {
	h, _ := newTestHandler()
	tests := []struct {
		name   string
		method string
		params []any
		code   int
		str    string
	}{
		{"unknown method", "GetFoo", nil, 100, "Invalid method GetFoo"},
		{"too few", "GetNodes", nil, 101, ": GetNodes: Expected 1-3 arguments, got 0"},
		{"too many", "AuthCheck", []any{adminAuth, 1}, 101, ": AuthCheck: Expected 1 arguments, got 2"},
		{"auth not struct", "AuthCheck", []any{"x"}, 102, ": AuthCheck: Invalid auth value: expected struct, got string"},
		{"no AuthMethod", "AuthCheck", []any{map[string]any{}}, 102, ": AuthCheck: Invalid auth value: 'AuthMethod' not specified"},
		{"bad AuthMethod", "AuthCheck", []any{map[string]any{"AuthMethod": "kerberos"}}, 102,
			": AuthCheck: Invalid AuthMethod value: must be 'session', 'hmac', 'hmac_dummybox', 'password', 'capability', 'anonymous' or 'gpg'"},
		{"AuthMethod int", "AuthCheck", []any{map[string]any{"AuthMethod": 1}}, 102, ": AuthCheck: Invalid auth['AuthMethod'] value: expected string, got int"},
		{"no AuthString", "AuthCheck", []any{map[string]any{"AuthMethod": "password", "Username": "a"}}, 102, ": AuthCheck: Invalid auth value: 'AuthString' not specified"},
		{"bad password", "AuthCheck", []any{map[string]any{"AuthMethod": "password", "Username": "admin@example.org", "AuthString": "no"}}, 103,
			": AuthCheck: Failed to authenticate call: no such account or bad password"},
		{"role missing (password: 103)", "AddSite", []any{userAuth, map[string]any{}}, 103, ": AddSite: Failed to authenticate call: missing role"},
		{"role missing (session: 108)", "AddSite", []any{map[string]any{"AuthMethod": "session", "session": "sess-user"}, map[string]any{}}, 108,
			": AddSite: Permission denied: SessionAuth: missing role"},
		{"anonymous refused", "AuthCheck", []any{anonAuth}, 103, ": AuthCheck: Failed to authenticate call: AnonymousAuth: method cannot be called anonymously"},
		{"boot not allowed", "AddSite", []any{map[string]any{"AuthMethod": "hmac", "node_id": 7, "value": "x"}, map[string]any{}}, 103,
			": AddSite: Failed to authenticate call: BootAuth: Not allowed to call method, missing 'node' role"},
		{"boot bad hmac", "GetSlivers", []any{map[string]any{"AuthMethod": "hmac", "node_id": 7, "value": "x"}}, 103,
			": GetSlivers: Failed to authenticate call: BootAuth: Call could not be authenticated"},
		{"boot node_id string", "GetSlivers", []any{map[string]any{"AuthMethod": "hmac", "node_id": "7", "value": "x"}}, 102,
			": GetSlivers: Invalid auth['node_id'] value: expected int, got string"},
		{"session-only method", "DeleteSession", []any{adminAuth}, 102, ": DeleteSession: Invalid auth value: 'session' not specified"},
		{"int for double", "AddSite", []any{adminAuth, map[string]any{"latitude": 45}}, 102,
			"person_id 2: AddSite: Invalid site_fields['latitude'] value: expected double, got int"},
		{"int for string", "AddSite", []any{adminAuth, map[string]any{"name": 5}}, 102,
			"person_id 2: AddSite: Invalid site_fields['name'] value: expected string, got int"},
		{"string for int", "AddSite", []any{adminAuth, map[string]any{"max_slices": "5"}}, 102,
			"person_id 2: AddSite: Invalid site_fields['max_slices'] value: expected int, got string"},
		{"utf8 bytes over max", "AddSite", []any{adminAuth, map[string]any{"abbreviated_name": strings.Repeat("é", 26)}}, 102,
			"person_id 2: AddSite: Invalid argument: site_fields['abbreviated_name'] must be at most 50 bytes long"},
		{"filter type", "GetNodes", []any{adminAuth, 1.5}, 102, "person_id 2: GetNodes: Invalid node_filter value: expected struct, got double"},
		{"return_fields type", "GetNodes", []any{adminAuth, nil, []any{"hostname", 3}}, 102,
			"person_id 2: GetNodes: Invalid return_fields[] value: expected string, got int"},
		{"domain invalid with field", "AddSite", []any{adminAuth, map[string]any{"login_base": "bad base"}}, 102,
			"person_id 2: AddSite: Invalid login_base value: must contain only [a-z0-9.]"},
		{"not found", "DeleteNode", []any{adminAuth, "missing"}, 102, `person_id 2: DeleteNode: Invalid argument: No such node "missing"`},
		{"forbidden", "UpdatePerson", []any{userAuth, 2, map[string]any{}}, 108,
			"person_id 5: UpdatePerson: Permission denied: not allowed"},
		{"GetSlivers without node", "GetSlivers", []any{adminAuth}, 102, "person_id 2: GetSlivers: Invalid argument: 'node_id_or_hostname' not specified"},
		{"lease time", "AddLeases", []any{adminAuth, 1, "s", "tomorrow", 5}, 102,
			`person_id 2: AddLeases: Invalid t_from value: cannot parse time "tomorrow" (want an int or 'YYYY-MM-DD HH:MM:SS')`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, f := rpc(t, h, tt.method, tt.params...)
			wantFault(t, f, tt.code, tt.str)
		})
	}
}

func TestInternalDomainErrorIsFault106(t *testing.T) {
	h, _ := newTestHandler()
	_, f := rpc(t, h, "AddInitScript", adminAuth, map[string]any{"name": "x"})
	if f == nil || f.Code != 106 || !strings.HasPrefix(f.String, "person_id 2: AddInitScript: Database error: Please contact PlanetLab Central Support and reference ") {
		t.Fatalf("got %v", f)
	}
	if strings.Contains(f.String, "ENOSPC") || strings.Contains(f.String, "disk full") {
		t.Fatalf("internals leaked: %q", f.String)
	}
}

func TestUnexpectedErrorIs500(t *testing.T) {
	h, _ := newTestHandler()
	body, _ := xmlrpc.EncodeCall("GetSlices", adminAuth)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/PLCAPI/", bytes.NewReader(body)))
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "fire") {
		t.Fatalf("HTTP %d %q", rec.Code, rec.Body)
	}
	// inside a multicall it is a fault struct with code 1
	v, f := rpc(t, h, "system.multicall", []any{map[string]any{"methodName": "GetSlices", "params": []any{adminAuth}}})
	if f != nil {
		t.Fatal(f)
	}
	want := []any{map[string]any{"faultCode": int64(1), "faultString": "internal error"}}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("got %v", v)
	}
}

func TestHTTP(t *testing.T) {
	h, _ := newTestHandler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/PLCAPI/", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "Please use XML-RPC") {
		t.Fatalf("GET: %d %s", rec.Code, rec.Body)
	}
	for _, tt := range []struct {
		body string
		code int
	}{
		{"not xml", 400},
		{"<methodCall><methodName>x</methodName><params><param><value><int>1</int>", 400},
		{"<methodCall><methodName>x</methodName><params><param><value>" + strings.Repeat("<array><data><value>", 100) + "</value></param></params></methodCall>", 400},
		{"<methodCall><methodName>x</methodName><params><param><value>" + strings.Repeat("a", 9<<20) + "</value></param></params></methodCall>", 413},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/PLCAPI/", strings.NewReader(tt.body)))
		if rec.Code != tt.code {
			t.Errorf("%.40q: HTTP %d, want %d (%s)", tt.body, rec.Code, tt.code, rec.Body)
		}
	}
}

func TestMappingsOntoRegistry(t *testing.T) {
	h, reg := newTestHandler()
	tests := []struct {
		method string
		params []any
		want   any
		ops    []string
	}{
		{"GetNodes", []any{adminAuth, []any{7, "n.example.org"}, []any{"hostname"}}, nil,
			[]string{"get node &{IsList:true IDs:[7] Names:[n.example.org] Terms:[] Or:false Sort:[] Offset:0 Limit:0} [hostname]"}},
		{"AddNode", []any{adminAuth, "site", map[string]any{"hostname": "h.example.org"}}, int64(42),
			[]string{"add node {hostname=h.example.org site_id=1004}"}},
		{"UpdateSlice", []any{adminAuth, 12, map[string]any{"description": "d"}}, int64(1),
			[]string{"update slice 12 {description=d}"}},
		{"DeleteSite", []any{adminAuth, "abc"}, int64(1), []string{"delete site 1003"}},
		{"UpdateSite", []any{adminAuth, 3, map[string]any{"max_slices": true, "is_public": true}}, int64(1),
			[]string{"update site 3 {is_public=true max_slices=1}"}},
		{"AddSliceToNodes", []any{adminAuth, "x_y", []any{1, "n"}}, int64(1),
			[]string{"link slice_node 1003 1 {}", "link slice_node 1003 1001 {}"}},
		{"AddPersonToSlice", []any{adminAuth, 5, "x_y"}, int64(1), []string{"link slice_person 1003 5 {}"}},
		{"AddRoleToPerson", []any{adminAuth, "pi", 5}, int64(1), []string{"link person_role 5 1002 {}"}},
		{"AddNodeToPCU", []any{adminAuth, 3, 4, 1}, int64(1), []string{"link node_pcu 3 4 {port=1}"}},
		{"AddSliceTag", []any{adminAuth, "x_y", "vref", "f39", nil, "grp"}, int64(42),
			[]string{"add slice_tag {nodegroup_id=1003 slice_id=1003 tag_type_id=1004 value=f39}"}},
		{"AddNodeGroup", []any{adminAuth, "g", "arch", "x86_64"}, int64(42),
			[]string{"add nodegroup {groupname=g tag_type_id=1004 value=x86_64}"}},
		{"UpdateNodeTag", []any{adminAuth, 9, "v"}, int64(1), []string{"update node_tag 9 {value=v}"}},
		{"GetBootStates", []any{adminAuth}, []any{"boot", "reinstall"},
			[]string{"get boot_state <nil> [boot_state]"}},
		{"AddBootState", []any{adminAuth, "debug"}, int64(1), []string{"add boot_state {boot_state=debug}"}},
		{"BlacklistKey", []any{adminAuth, 3}, int64(1), []string{"blacklist 3"}},
		{"SetPersonPrimarySite", []any{adminAuth, 5, 1}, int64(1), []string{"primary 5 1"}},
		{"GetSession", []any{adminAuth}, "new-session", []string{"session 0s"}},
		{"GetSession", []any{adminAuth, 60}, "new-session", []string{"session 1m0s"}},
		{"GetSession", []any{map[string]any{"AuthMethod": "session", "session": "sess-user"}}, "sess-user", nil},
		{"DeleteSession", []any{map[string]any{"AuthMethod": "session", "session": "sess-user"}}, int64(1), []string{"delete session sess-user"}},
		{"AuthCheck", []any{adminAuth}, int64(1), nil},
		{"GetLeaseGranularity", []any{anonAuth}, int64(3600), nil},
		{"AddLeases", []any{adminAuth, []any{3}, "x_y", "2026-01-01 10:00:00", 1767265200}, map[string]any{"new_ids": []any{int64(9)}, "errors": []any{"node 3 busy"}},
			[]string{"leases [3] 1003 1767261600 1767265200"}},
		{"ReportRunlevel", []any{map[string]any{"AuthMethod": "session", "session": "sess-node"}, map[string]any{"run_level": "boot"}}, int64(1),
			[]string{`report 7 "boot" ""`}},
		{"GetPlcRelease", []any{anonAuth}, map[string]any{"build": map[string]any{"version": "test"}, "tags": map[string]any{}, "rpms": map[string]any{}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			reg.take()
			v, f := rpc(t, h, tt.method, tt.params...)
			if f != nil {
				t.Fatal(f)
			}
			if tt.want != nil && !reflect.DeepEqual(v, tt.want) {
				t.Errorf("result %#v, want %#v", v, tt.want)
			}
			if ops := reg.take(); !reflect.DeepEqual(ops, tt.ops) {
				t.Errorf("ops\n%q\nwant\n%q", ops, tt.ops)
			}
		})
	}
}

func TestNoWritesBeforeAllArgumentsResolve(t *testing.T) {
	h, reg := newTestHandler()
	reg.take()
	_, f := rpc(t, h, "AddSliceToNodes", adminAuth, "x_y", []any{1, "missing"})
	if f == nil || f.Code != 102 {
		t.Fatalf("got %v", f)
	}
	if ops := reg.take(); len(ops) != 0 {
		t.Fatalf("partial writes: %q", ops)
	}
}

// bootAuth signs a call the way the node manager does.
func signBoot(t *testing.T, args ...any) map[string]any {
	m := hmac.New(sha1.New, []byte(fakeNodeKey))
	m.Write([]byte(BootAuthMessage(args)))
	return map[string]any{"AuthMethod": "hmac", "node_id": 7, "value": hex.EncodeToString(m.Sum(nil))}
}

func TestBootAuthAndGetSlivers(t *testing.T) {
	h, reg := newTestHandler()
	v, f := rpc(t, h, "GetSlivers", signBoot(t))
	if f != nil {
		t.Fatal(f)
	}
	if ops := reg.take(); !reflect.DeepEqual(ops, []string{"hmac 7 []", "state 7"}) {
		t.Fatalf("ops %q", ops)
	}
	st := v.(map[string]any)
	if st["leases"] != nil || st["hrn"] != "plc.site.n7" || st["lease_granularity"] != int64(3600) {
		t.Fatalf("got %v", st)
	}
	sl := st["slivers"].([]any)[0].(map[string]any)
	want := map[string]any{"name": "site_s", "slice_id": int64(11), "instantiation": "plc-instantiated", "expires": int64(1800000000),
		"keys":       []any{map[string]any{"key_type": "ssh", "key": "ssh-rsa BBB"}},
		"attributes": []any{map[string]any{"tagname": "vref", "value": "f39"}}, "GetSliceFamily": "f39-f39-x86_64",
		// beyond the original: the sliver's virtual link ends (vlinks tag)
		"vlinks": []any{map[string]any{"name": "ab", "vni": int64(705), "local": "10.200.0.1/30", "remote": "10.200.0.2",
			"peer_node": "n8.example.org", "peer_addr": "10.0.0.8", "rate_kbit": int64(20000), "delay_us": int64(5000), "loss_ppm": int64(100)},
			// a LAN end: the other members
			map[string]any{"name": "core", "vni": int64(767), "local": "10.200.0.250/29", "remote": "",
				"peer_node": "", "peer_addr": "", "rate_kbit": int64(5000), "delay_us": int64(0), "loss_ppm": int64(0),
				"peers": []any{map[string]any{"node": "n8.example.org", "addr": "10.0.0.8", "private": "10.200.0.249"}}}}}
	if !reflect.DeepEqual(sl, want) {
		t.Fatalf("sliver %v", sl)
	}
	if acc := st["accounts"].([]any)[0]; !reflect.DeepEqual(acc, map[string]any{"name": "root", "keys": []any{"ssh-rsa AAA"}}) {
		t.Fatalf("accounts %v", acc)
	}
	// arguments are covered by the HMAC
	args := []any{map[string]any{"boot_state": "boot", "ssh_host_key": "ssh-rsa K"}}
	if _, f := rpc(t, h, "BootUpdateNode", append([]any{signBoot(t, args...)}, args...)...); f != nil {
		t.Fatal(f)
	}
	tampered := []any{map[string]any{"boot_state": "safeboot", "ssh_host_key": "ssh-rsa K"}}
	_, f = rpc(t, h, "BootUpdateNode", append([]any{signBoot(t, args...)}, tampered...)...)
	wantFault(t, f, 103, ": BootUpdateNode: Failed to authenticate call: BootAuth: Call could not be authenticated")
	v, f = rpc(t, h, "BootGetNodeDetails", signBoot(t))
	if f != nil {
		t.Fatal(f)
	}
	want2 := map[string]any{"hostname": "n7.example.org", "boot_state": "boot", "model": "", "session": "",
		"networks": []any{map[string]any{"interface_id": int64(3), "ip": "10.0.0.7", "gateway": ""}}}
	if !reflect.DeepEqual(v, want2) {
		t.Fatalf("details %v", v)
	}
}

func TestIntrospection(t *testing.T) {
	h, _ := newTestHandler()
	v, f := rpc(t, h, "system.listMethods")
	if f != nil {
		t.Fatal(f)
	}
	names := v.([]any)
	if len(names) < 130 || !slices.Contains(names, any("GetSlivers")) || !slices.Contains(names, any("system.multicall")) {
		t.Fatalf("%d methods: %v", len(names), names)
	}
	v, f = rpc(t, h, "system.methodSignature", "DeleteNode")
	if f != nil {
		t.Fatal(f)
	}
	want := []any{[]any{"int", "struct", "int"}, []any{"int", "struct", "string"}}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("signature %v", v)
	}
	v, f = rpc(t, h, "system.methodHelp", "GetNodes")
	if f != nil || !strings.HasPrefix(v.(string), "GetNodes(auth, [node_filter], [return_fields]) -> array") {
		t.Fatalf("help %v %v", v, f)
	}
	v, f = rpc(t, h, "system.multicall", []any{
		map[string]any{"methodName": "AuthCheck", "params": []any{adminAuth}},
		map[string]any{"methodName": "GetFoo", "params": []any{}},
		map[string]any{"methodName": "system.multicall", "params": []any{[]any{}}},
		map[string]any{"methodName": "AuthCheck", "params": []any{userAuth}},
		map[string]any{"params": []any{}},
	})
	if f != nil {
		t.Fatal(f)
	}
	want = []any{
		[]any{int64(1)},
		map[string]any{"faultCode": int64(100), "faultString": "Invalid method GetFoo"},
		map[string]any{"faultCode": int64(-507), "faultString": "Recursive system.multicall forbidden"},
		[]any{int64(1)},
		map[string]any{"faultCode": int64(1), "faultString": "KeyError: 'methodName' missing or not a string"},
	}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("multicall %#v", v)
	}
}

func TestCheckTypes(t *testing.T) {
	tests := []struct {
		v    any
		t    *typ
		want string // "" = ok
	}{
		{true, tInt, ""},
		{int64(1), tBool, "Invalid x value: expected boolean, got int"},
		{int64(1), tDouble, "Invalid x value: expected double, got int"},
		{1.0, tInt, "Invalid x value: expected int, got double"},
		{nil, tInt, "Invalid x value: expected int, got nil"},
		{nil, null(tInt), ""},
		{"ab", strRange(3, 5), "Invalid argument: x must be at least 3 bytes long"},
		{"ééé", str(5), "Invalid argument: x must be at most 5 bytes long"},
		{"éé", str(4), ""},
		{[]any{int64(1), "a"}, tIDsOrNames, ""},
		{[]any{int64(1), 2.0}, tIDsOrNames, "Invalid x[] value: expected string, got double"},
		{map[string]any{"a": int64(1), "zz": 1.5}, structOf(map[string]*typ{"a": tInt}), ""},
		{map[string]any{}, structOf(map[string]*typ{"a": tInt}, "a"), "Invalid x value: 'a' not specified"},
		{xmlrpc.DateTime("2026"), tInt, "Invalid x value: expected int, got dateTime.iso8601"},
		{[]byte("x"), tStr, "Invalid x value: expected string, got base64"},
		{int64(-1), &typ{kind: kInt, min: i64(0)}, "Invalid argument: x must be > 0"},
	}
	for _, tt := range tests {
		err := check("x", tt.v, tt.t)
		got := ""
		if err != nil {
			got = err.(*Fault).String
		}
		if got != tt.want {
			t.Errorf("check(%#v, %s) = %q, want %q", tt.v, tt.t.name(), got, tt.want)
		}
	}
}
