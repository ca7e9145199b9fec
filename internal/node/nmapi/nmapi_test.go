package nmapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
)

func serve(t *testing.T, s *Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "api.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return path
}

type echoArgs struct {
	Say string `json:"say"`
}

func TestServeIdentifiesAndRefuses(t *testing.T) {
	var got Caller
	s := &Server{
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		Identify: func(uid uint32) (string, bool) { return "", false },
		Methods: map[string]Method{"Echo": {Fn: func(ctx context.Context, c Caller, raw json.RawMessage) (any, error) {
			got = c
			var a echoArgs
			if err := Decode(raw, &a); err != nil {
				return nil, err
			}
			return a, nil
		}}},
	}
	path := serve(t, s)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o666 {
		t.Fatalf("socket mode %v %v", fi.Mode(), err)
	}
	ctx := context.Background()
	var out echoArgs
	if err := Call(ctx, path, "Echo", echoArgs{Say: "hi"}, &out); err != nil || out.Say != "hi" {
		t.Fatalf("%v %+v", err, out)
	}
	if got.UID != uint32(os.Getuid()) || got.PID != int32(os.Getpid()) || got.Root != (os.Getuid() == 0) {
		t.Errorf("caller %+v", got)
	}
	for _, c := range []struct {
		method string
		args   any
		code   core.Code
		want   string
	}{
		{"Nope", nil, core.NotFound, `no method "Nope" (POST /<Method>; methods: Echo)`},
		{"Echo", map[string]any{"say": "x", "as_slice": "root"}, core.Invalid, `unknown field "as_slice"`},
		{"Echo", []int{1}, core.Invalid, "not one JSON object"},
		{"Echo", map[string]string{"say": strings.Repeat("x", MaxRequest)}, core.Invalid, "larger than"},
	} {
		err := Call(ctx, path, c.method, c.args, nil)
		if core.ErrorCode(err) != c.code || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %v: %v, want %s %q", c.method, c.args, err, c.code, c.want)
		}
	}
}

// FuzzRequest: the request decoder never panics, refuses with Invalid,
// and what it accepts is one JSON object that Decode handles.
func FuzzRequest(f *testing.F) {
	f.Add([]byte(`{"ticket":"pl1.x.y"}`))
	f.Add([]byte(``))
	f.Add([]byte(`{"say":"a"} {"say":"b"}`))
	f.Add([]byte(`[1,2]`))
	f.Add([]byte(`{"say":1e999}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		raw, err := ReadArgs(bytes.NewReader(b))
		if err != nil {
			if core.ErrorCode(err) != core.Invalid {
				t.Fatalf("code %s: %v", core.ErrorCode(err), err)
			}
			return
		}
		if !json.Valid(raw) || raw[0] != '{' {
			t.Fatalf("accepted %q", raw)
		}
		var a echoArgs
		if err := Decode(raw, &a); err != nil && core.ErrorCode(err) != core.Invalid {
			t.Fatalf("decode code %s: %v", core.ErrorCode(err), err)
		}
	})
}
