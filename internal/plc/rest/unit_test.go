package rest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/restapi"
)

func TestStatusOf(t *testing.T) {
	cause := errors.New("disk on fire at /var/lib/secret")
	tests := []struct {
		err    error
		status int
		code   core.Code
		field  string
		msg    string
	}{
		{core.FieldErrorf("email", "bad address"), 400, core.Invalid, "email", "email: bad address"},
		{core.Errorf(core.NotFound, "no such slice"), 404, core.NotFound, "", "no such slice"},
		{fmt.Errorf("slice %q: %w", "x_y", core.Errorf(core.Conflict, "exists")), 409, core.Conflict, "", `slice "x_y": exists`},
		{core.Errorf(core.Unauthenticated, "bad password"), 401, core.Unauthenticated, "", "bad password"},
		{core.Errorf(core.Forbidden, "not your site"), 403, core.Forbidden, "", "not your site"},
		{core.Errorf(core.Unimplemented, "later"), 501, core.Unimplemented, "", "later"},
		{core.Errorf(core.Unavailable, "slow down"), 503, core.Unavailable, "", "slow down"},
		{&core.Error{Code: core.Internal, Message: "db", Err: cause}, 500, core.Internal, "", "internal error"},
		{cause, 500, core.Internal, "", "internal error"},
		{&http.MaxBytesError{Limit: 10}, 413, core.Invalid, "body", "request body too large"},
		{&MethodError{Method: "PUT", Allow: []string{"GET", "POST"}}, 405, core.Invalid, "method", "method PUT not allowed here (allowed: GET, POST)"},
	}
	for _, tt := range tests {
		st, d := StatusOf(tt.err)
		if st != tt.status || d.Code != tt.code || d.Field != tt.field || d.Message != tt.msg {
			t.Errorf("StatusOf(%v) = %d %+v, want %d %s %q %q", tt.err, st, d, tt.status, tt.code, tt.field, tt.msg)
		}
		if strings.Contains(d.Message, "secret") {
			t.Errorf("StatusOf(%v) leaks the cause: %q", tt.err, d.Message)
		}
	}
}

func TestDecodeStrict(t *testing.T) {
	var req restapi.SessionRequest
	tests := []struct{ in, field string }{
		{`{"email":"a@b.c","password":"x","extra":1}`, "extra"},
		{`{"email":5}`, "email"},
		{`{"ttl":"soon"}`, "ttl"},
		{``, "body"},
		{`{"email":"a"}x`, "body"},
	}
	for _, tt := range tests {
		err := decodeStrict([]byte(tt.in), &req)
		if core.ErrorCode(err) != core.Invalid || core.ErrorField(err) != tt.field {
			t.Errorf("decodeStrict(%q) = %v (field %q), want field %q", tt.in, err, core.ErrorField(err), tt.field)
		}
	}
	if err := decodeStrict([]byte(`{"email":"a@b.c","password":"x","ttl":5}`), &req); err != nil || req.TTL != 5 {
		t.Errorf("good request: %v %+v", err, req)
	}
}

func TestParseListQuery(t *testing.T) {
	v := url.Values{
		"filter":  {`{"~name":"x*","<max_slices":5}`},
		"enabled": {"true"}, "site_id": {"3"}, "login_base": {"pl"},
		"fields": {"a,b"}, "sort": {"-name,+site_id"}, "limit": {"10"}, "offset": {"2"},
	}
	f, fields, err := parseListQuery(v)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fields, []string{"a", "b"}) {
		t.Errorf("fields = %v", fields)
	}
	terms := map[string]core.Term{}
	for _, tm := range f.Terms {
		terms[tm.Field] = tm
	}
	if tm := terms["name"]; !tm.Not || tm.Value != "x*" {
		t.Errorf("name term %+v", tm)
	}
	if tm := terms["max_slices"]; tm.Op != core.Lt || tm.Value != int64(5) {
		t.Errorf("max_slices term %+v", tm)
	}
	if terms["enabled"].Value != true || terms["site_id"].Value != int64(3) || terms["login_base"].Value != "pl" {
		t.Errorf("equality terms %+v", terms)
	}
	if !reflect.DeepEqual(f.Sort, []core.SortKey{{Field: "name", Desc: true}, {Field: "site_id"}}) || f.Limit != 10 || f.Offset != 2 {
		t.Errorf("sort/limit/offset %+v %d %d", f.Sort, f.Limit, f.Offset)
	}
	if f, _, err := parseListQuery(url.Values{"filter": {`[1,"pl"]`}}); err != nil || !f.IsList || f.IDs[0] != 1 || f.Names[0] != "pl" {
		t.Errorf("list filter: %+v %v", f, err)
	}
	if f, _, err := parseListQuery(url.Values{}); err != nil || f != nil {
		t.Errorf("no filter: %+v %v", f, err)
	}
	bad := []struct {
		v     url.Values
		field string
	}{
		{url.Values{"filter": {`{`}}, "filter"},
		{url.Values{"filter": {`[1]`}, "name": {"x"}}, "filter"},
		{url.Values{"filter": {`{"name":"a"}`}, "name": {"x"}}, "name"},
		{url.Values{"limit": {"-1"}}, "limit"},
		{url.Values{"offset": {"x"}}, "offset"},
		{url.Values{"fields": {"a,,b"}}, "fields"},
		{url.Values{"sort": {"-"}}, "sort"},
		{url.Values{"name": {"a", "b"}}, "name"},
		{url.Values{"filter": {`{"-LIMIT":"x"}`}}, "-LIMIT"},
	}
	for _, b := range bad {
		_, _, err := parseListQuery(b.v)
		if core.ErrorCode(err) != core.Invalid || core.ErrorField(err) != b.field {
			t.Errorf("parseListQuery(%v) = %v (field %q), want field %q", b.v, err, core.ErrorField(err), b.field)
		}
	}
}

func TestCredentials(t *testing.T) {
	tests := []struct {
		hdr  string
		a    auth
		want core.Credentials
		ok   bool
	}{
		{"", authCaller, core.Credentials{Method: "anonymous"}, true},
		{"Bearer abc", authCaller, core.Credentials{Method: "session", Session: "abc"}, true},
		{"bearer  abc ", authCaller, core.Credentials{Method: "session", Session: "abc"}, true},
		{"PLNode 7:k=:x", authCaller, core.Credentials{Method: "node_key", NodeID: 7, NodeKey: "k=:x"}, true},
		{"Basic xyz", authCaller, core.Credentials{}, false},
		{"Bearer", authCaller, core.Credentials{}, false},
		{"PLNode 7:key", authNode, core.Credentials{Method: "node_key", NodeID: 7, NodeKey: "key"}, true},
		{"", authNode, core.Credentials{}, false},
		{"Bearer abc", authNode, core.Credentials{}, false},
		{"PLNode x:key", authNode, core.Credentials{}, false},
		{"PLNode 7:", authNode, core.Credentials{}, false},
		{"PLNode -1:k", authNode, core.Credentials{}, false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		if tt.hdr != "" {
			r.Header.Set("Authorization", tt.hdr)
		}
		got, err := credentials(r, tt.a)
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("credentials(%q) = %+v, %v", tt.hdr, got, err)
		}
		if err != nil && core.ErrorCode(err) != core.Unauthenticated {
			t.Errorf("credentials(%q) code %s", tt.hdr, core.ErrorCode(err))
		}
	}
}

// TestOpenAPICoversRoutes checks that every route the handler serves is in
// the OpenAPI document with its method, path parameters and responses.
func TestOpenAPICoversRoutes(t *testing.T) {
	h := NewHandler(nil, nil).(*Handler)
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + restapi.Prefix + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi = %q", doc.OpenAPI)
	}
	ids := map[string]bool{}
	n := 0
	for _, rt := range h.routes {
		op, ok := doc.Paths[rt.path][strings.ToLower(rt.method)]
		if !ok {
			t.Errorf("%s %s missing from the OpenAPI document", rt.method, rt.path)
			continue
		}
		n++
		id, _ := op["operationId"].(string)
		if id == "" || ids[id] {
			t.Errorf("%s %s: operationId %q empty or duplicate", rt.method, rt.path, id)
		}
		ids[id] = true
		if strings.Contains(rt.path, "{") && op["parameters"] == nil {
			t.Errorf("%s %s: path parameters not documented", rt.method, rt.path)
		}
		if op["responses"] == nil || op["summary"] == "" {
			t.Errorf("%s %s: no responses or summary", rt.method, rt.path)
		}
	}
	// and nothing documented that is not served
	count := 0
	for p, ops := range doc.Paths {
		count += len(ops)
		_ = p
	}
	if count != n+1 { // + openapi.json itself
		t.Errorf("document has %d operations, handler serves %d routes (+1)", count, n)
	}
	if n < 100 {
		t.Errorf("only %d routes", n)
	}
}

func FuzzParseListQuery(f *testing.F) {
	for _, s := range []string{"filter=%7B%22name%22%3A%22x%22%7D", "sort=-a&limit=3", "a=1&b=true", "filter=%5B1%2C%22x%22%5D"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		v, err := url.ParseQuery(q)
		if err != nil {
			return
		}
		_, _, err = parseListQuery(v)
		if err != nil && core.ErrorCode(err) != core.Invalid {
			t.Fatalf("error %v has code %s", err, core.ErrorCode(err))
		}
	})
}

func TestNoRoute(t *testing.T) {
	srv := httptest.NewServer(NewHandler(nil, nil))
	defer srv.Close()
	req, _ := http.NewRequest("PUT", srv.URL+"/api/v1/sites", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, POST" {
		t.Errorf("PUT /sites: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	resp, err = http.Get(srv.URL + "/api/v1/nothing/here")
	if err != nil {
		t.Fatal(err)
	}
	var eb restapi.ErrorBody
	json.NewDecoder(resp.Body).Decode(&eb)
	resp.Body.Close()
	if resp.StatusCode != 404 || eb.Error.Code != core.NotFound {
		t.Errorf("unknown path: %d %+v", resp.StatusCode, eb)
	}
}

func FuzzDecodeStrict(f *testing.F) {
	for _, s := range []string{`{"node_id":1,"secret":"s"}`, `{"run_level":"boot","sliver_errors":{"a":"b"}}`, `{"x":1}`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var a struct {
			NodeID int64             `json:"node_id"`
			Secret string            `json:"secret"`
			Errs   map[string]string `json:"sliver_errors"`
		}
		if err := decodeStrict(data, &a); err != nil && (core.ErrorCode(err) != core.Invalid || core.ErrorField(err) == "") {
			t.Fatalf("decodeStrict(%q): %v (code %s, field %q)", data, err, core.ErrorCode(err), core.ErrorField(err))
		}
	})
}
