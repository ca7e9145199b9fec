package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/node/nmapi"
)

// pl nm against a local API server: arguments built from key=value,
// the answer printed as JSON, a refusal returned with its code (so the
// exit code follows it).
func TestNMCommand(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := nmapi.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &nmapi.Server{
		Identify: func(uid uint32) (string, bool) { return "pl_me", true },
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		Methods: map[string]nmapi.Method{"Echo": {Fn: func(ctx context.Context, c nmapi.Caller, raw json.RawMessage) (any, error) {
			var a struct {
				Slice  string         `json:"slice"`
				Amount map[string]int `json:"amount"`
			}
			if err := nmapi.Decode(raw, &a); err != nil {
				return nil, err
			}
			if a.Slice == "" {
				return nil, core.Errorf(core.Forbidden, "no slice")
			}
			return map[string]any{"root": c.Root, "slice": a.Slice, "amount": a.Amount}, nil
		}}},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	run := func(args ...string) (string, error) {
		root := NewRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs(append([]string{"nm", "--socket", sock}, args...))
		_, err := root.ExecuteC()
		return out.String(), err
	}
	out, err := run("Echo", "slice=pl_a", "amount.cpu_share=2")
	var got struct {
		Slice  string         `json:"slice"`
		Amount map[string]int `json:"amount"`
	}
	if err != nil || json.Unmarshal([]byte(out), &got) != nil || got.Slice != "pl_a" || got.Amount["cpu_share"] != 2 {
		t.Fatalf("pl nm Echo: %v %q", err, out)
	}
	if _, err := run("Echo", `{"amount":{}}`); core.ErrorCode(err) != core.Forbidden || ExitCode(err) != ExitAuth {
		t.Errorf("refusal: %v (exit %d)", err, ExitCode(err))
	}
	if _, err := run("Echo", "slice"); ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), "not key=value") {
		t.Errorf("bad argument: %v (exit %d)", err, ExitCode(err))
	}
	if _, err := run("Nope"); core.ErrorCode(err) != core.NotFound || !strings.Contains(err.Error(), "methods: Echo") {
		t.Errorf("unknown method: %v", err)
	}
}
