package geniam_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/geni"
	"github.com/planetlab/pl/internal/geni/amclient"
)

// linkRequest is a request of nodes 1 and 2 joined by a link with props
// (attributes of both directions' <property>).
func linkRequest(props string) string {
	n := func(i int, client string) string {
		return `<node client_id="` + client + `" component_id="urn:publicid:IDN+plc.test+node+` + nodeName(i) + `"><sliver_type name="pl-container"/><interface client_id="` + client + `:if0"/></node>`
	}
	p := func(a, b string) string {
		if props == "" {
			return ""
		}
		return `<property source_id="` + a + `:if0" dest_id="` + b + `:if0" ` + props + `/>`
	}
	return `<rspec xmlns="http://www.geni.net/resources/rspec/3" type="request">` + n(1, "server") + n(2, "client") +
		`<link client_id="link-0"><interface_ref client_id="server:if0"/><interface_ref client_id="client:if0"/>` + p("server", "client") + p("client", "server") +
		`<link_type name="lan"/></link></rspec>`
}

func vlinksTag(t *testing.T, e *env) string {
	t.Helper()
	recs, err := e.svc.Get(e.ctx, e.admin, core.SliceTag, &core.Filter{Terms: []core.Term{{Field: "slice_id", Op: core.Eq, Value: e.slice}, {Field: "tagname", Op: core.Eq, Value: "vlinks"}}}, []string{"value"})
	e.must(err)
	if len(recs) == 0 {
		return ""
	}
	return recs[0]["value"].(string)
}

// TestLinks: a request's link between two requested nodes is allocated
// with them, written into the slice's vlinks tag when they are
// provisioned (capacity, latency and packet_loss as rate, delay, loss),
// shown in the manifests (addresses once built), taken out when a node
// leaves; impossible links are refused with GENI codes and change
// nothing.
func TestLinks(t *testing.T) {
	e := newEnv(t, 3)
	ctx := context.Background()
	alice := e.people["alice@pr.test"]
	sc := amclient.Creds(e.cred(alice, "pr_geni"))
	v3 := map[string]any{"geni_rspec_version": amclient.V3()}

	for _, tc := range []struct {
		name, doc string
		code      geni.Code
		msg       string
	}{
		{"unknown interface", strings.Replace(linkRequest(""), `<interface_ref client_id="client:if0"/>`, `<interface_ref client_id="nosuch:if0"/>`, 1), geni.BadArgs, `interface_ref "nosuch:if0": no node of the request has that interface`},
		{"capacity beyond a virtual link's", linkRequest(`capacity="2000000"`), geni.BadArgs, "rate 2000000kbit is impossible: want 8 kbit/s to 1000000 kbit/s"},
		{"negative latency", linkRequest(`latency="-1"`), geni.BadArgs, `latency "-1" is impossible`},
		{"latency beyond 10 s", linkRequest(`latency="20000"`), geni.BadArgs, "delay"},
		{"loss above 1", linkRequest(`packet_loss="2"`), geni.BadArgs, `packet_loss "2" is impossible`},
		{"unavailable node", strings.Replace(linkRequest(""), nodeName(2), nodeName(3), 1), geni.Unavailable, "not available"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want(t, call(t)(alice.am.Allocate(ctx, sliceURN, sc, tc.doc, map[string]any{})), tc.code, tc.msg)
			if st := sliverStates(t, ok(t, call(t)(alice.am.Status(ctx, []string{sliceURN}, sc))).Value); len(st) != 0 {
				t.Fatalf("a refused Allocate left %v", st)
			}
		})
	}

	doc := linkRequest(`capacity="20000" latency="10" packet_loss="0.005"`)
	xmllint(t, "request.xsd", doc)
	r := ok(t, call(t)(alice.am.Allocate(ctx, sliceURN, sc, doc, map[string]any{})))
	man := r.Map()["geni_rspec"].(string)
	xmllint(t, "manifest.xsd", man)
	for _, s := range []string{`<link client_id="link-0" sliver_id="urn:publicid:IDN+plc.test+sliver+pr_geni.link.link0">`,
		`<property source_id="server:if0" dest_id="client:if0" capacity="20000" latency="10" packet_loss="0.005">`, `<interface client_id="client:if0"></interface>`} {
		if !strings.Contains(man, s) {
			t.Fatalf("allocation manifest lacks %s:\n%s", s, man)
		}
	}
	if v := vlinksTag(t, e); v != "" {
		t.Fatalf("an allocated link is already in the vlinks tag: %q", v)
	}
	// A second link between the same nodes is refused (one per pair).
	want(t, call(t)(alice.am.Allocate(ctx, sliceURN, sc, linkRequest(""), map[string]any{})), geni.AlreadyExists, "already has a sliver")

	r = ok(t, call(t)(alice.am.Provision(ctx, []string{sliceURN}, sc, v3)))
	man = r.Map()["geni_rspec"].(string)
	xmllint(t, "manifest.xsd", man)
	tag := vlinksTag(t, e)
	// The slice has no prefix of its own: the /24 of 100.64.0.0/10 of its id.
	if e.slice >= 256 {
		t.Fatalf("slice id %d: the expected prefix below assumes < 256", e.slice)
	}
	wantTag := fmt.Sprintf("prefix 100.64.%d.0/24; link0 %s %s rate=20000kbit delay=10ms loss=0.5000%%", e.slice, nodeName(1), nodeName(2))
	if tag != wantTag {
		t.Fatalf("vlinks tag %q; want %q", tag, wantTag)
	}
	if !strings.Contains(man, `<ip address="100.64.`) || !strings.Contains(man, `packet_loss="0.005"`) {
		t.Fatalf("provisioned manifest lacks the link's addresses:\n%s", man)
	}
	d := ok(t, call(t)(alice.am.Describe(ctx, []string{sliceURN}, sc, v3)))
	if dm := d.Map()["geni_rspec"].(string); !strings.Contains(dm, `client_id="link-0"`) {
		t.Fatalf("describe lacks the link:\n%s", dm)
	}

	// Deleting one end takes the link out of the tag.
	ok(t, call(t)(alice.am.Delete(ctx, []string{sliver(e, nodeName(2))}, sc)))
	if v := vlinksTag(t, e); v != "" {
		t.Fatalf("vlinks tag after deleting an end: %q", v)
	}
	d = ok(t, call(t)(alice.am.Describe(ctx, []string{sliceURN}, sc, v3)))
	if dm := d.Map()["geni_rspec"].(string); strings.Contains(dm, "<link ") {
		t.Fatalf("describe still has the link:\n%s", dm)
	}
}
