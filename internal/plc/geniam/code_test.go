package geniam

import (
	"errors"
	"fmt"
	"testing"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/geni"
)

// TestCode: the one mapping of service errors to AM API codes.
func TestCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want geni.Code
	}{
		{geni.Errorf(geni.Expired, "x"), geni.Expired},
		{fmt.Errorf("wrapped: %w", geni.Errorf(geni.TooBig, "x")), geni.TooBig},
		{core.FieldErrorf("f", "bad"), geni.BadArgs},
		{core.Errorf(core.NotFound, "x"), geni.SearchFailed},
		{core.Errorf(core.Conflict, "x"), geni.Refused},
		{core.Errorf(core.Unauthenticated, "x"), geni.Forbidden},
		{core.Errorf(core.Forbidden, "x"), geni.Forbidden},
		{core.Errorf(core.Unimplemented, "x"), geni.Unsupported},
		{core.Errorf(core.RateLimited, "x"), geni.Busy},
		{core.Errorf(core.Unavailable, "x"), geni.Unavailable},
		{core.Errorf(core.Internal, "x"), geni.ServerError},
		{errors.New("disk on fire"), geni.ServerError},
	} {
		if got := Code(tc.err); got != tc.want {
			t.Errorf("Code(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
	// Internal details never reach the caller.
	a := New(Config{Host: "plc.test"})
	res := a.fail("Status", fmt.Errorf("query: %w", errors.New("password=hunter2")))
	if res["output"] != "internal error" || res["code"].(map[string]any)["geni_code"] != int(geni.ServerError) {
		t.Fatalf("fail: %v", res)
	}
}
