package rspec

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/planetlab/pl/internal/geni"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const am = "urn:publicid:IDN+plc.test+authority+am"

func f(v float64) *float64 { return &v }

func inventory() []Node {
	return []Node{
		{ComponentID: "urn:publicid:IDN+plc.test+node+node1.pr.test", ComponentName: "node1.pr.test", Site: "pr", Available: true, Latitude: f(40.35), Longitude: f(-74.66), Country: "US"},
		{ComponentID: "urn:publicid:IDN+plc.test+node+node2.pr.test", ComponentName: "node2.pr.test", Site: "pr", Available: true, Latitude: f(40.35), Longitude: f(-74.66), Country: "US"},
		{ComponentID: "urn:publicid:IDN+plc.test+node+node3.ucl.test", ComponentName: "node3.ucl.test", Site: "ucl", Available: false},
	}
}

var now = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

// xmllint validates doc against one of the testdata schemas.
func xmllint(t *testing.T, schema string, doc []byte) {
	t.Helper()
	if _, err := exec.LookPath("xmllint"); err != nil { // hostdeps: xmllint
		t.Fatalf("xmllint is needed (scripts/deps.sh test): %v", err)
	}
	p := filepath.Join(t.TempDir(), "doc.xml")
	if err := os.WriteFile(p, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("xmllint", "--noout", "--nonet", "--schema", filepath.Join("testdata", "schema", schema), p).CombinedOutput()
	if err != nil {
		t.Fatalf("xmllint %s: %v\n%s\n%s", schema, err, out, doc)
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs (go test -update to accept):\n%s", name, got)
	}
}

func TestAdvertisement(t *testing.T) {
	ad := Advertisement(am, inventory(), false, now)
	golden(t, "ad.xml", ad)
	xmllint(t, "ad.xsd", ad)
	avail := Advertisement(am, inventory(), true, now)
	xmllint(t, "ad.xsd", avail)
	if bytes.Contains(avail, []byte("node3")) || !bytes.Contains(avail, []byte("node2")) {
		t.Fatalf("geni_available kept an unavailable node or dropped an available one:\n%s", avail)
	}
	// The schema is not a rubber stamp: a node without component_id fails.
	bad := bytes.Replace(ad, []byte(`component_id="urn:publicid:IDN+plc.test+node+node1.pr.test" `), nil, 1)
	p := filepath.Join(t.TempDir(), "bad.xml")
	os.WriteFile(p, bad, 0o600)
	if out, err := exec.Command("xmllint", "--noout", "--schema", "testdata/schema/ad.xsd", p).CombinedOutput(); err == nil {
		t.Fatalf("xmllint accepted a node without component_id: %s", out)
	}
}

func TestManifest(t *testing.T) {
	m := Manifest([]ManifestNode{{ClientID: "server", ComponentID: inventory()[0].ComponentID, ComponentName: "node1.pr.test",
		ComponentManagerID: am, SliverID: "urn:publicid:IDN+plc.test+sliver+pr_geni.node1.pr.test",
		Logins: []Login{{Hostname: "node1.pr.test", Port: 22, Username: "pr_geni"}}}}, nil, now, now.Add(24*time.Hour))
	golden(t, "manifest.xml", m)
	xmllint(t, "manifest.xsd", m)
	// Two slivers joined by a link (addressed once provisioned).
	m = Manifest([]ManifestNode{
		{ClientID: "server", ComponentID: inventory()[0].ComponentID, ComponentName: "node1.pr.test", ComponentManagerID: am,
			SliverID: "urn:publicid:IDN+plc.test+sliver+pr_geni.1", Interfaces: []ManifestInterface{{ClientID: "server:if0", Address: "100.64.0.1", Netmask: "255.255.255.252"}}},
		{ClientID: "client", ComponentID: inventory()[1].ComponentID, ComponentName: "node2.pr.test", ComponentManagerID: am,
			SliverID: "urn:publicid:IDN+plc.test+sliver+pr_geni.2", Interfaces: []ManifestInterface{{ClientID: "client:if0", Address: "100.64.0.2", Netmask: "255.255.255.252"}}},
	}, []ManifestLink{{ClientID: "link-0", SliverID: "urn:publicid:IDN+plc.test+sliver+pr_geni.link0", Interfaces: [2]string{"server:if0", "client:if0"},
		CapacityKbps: 20000, LatencyUs: 10000, LossPPM: 5000}}, now, now.Add(24*time.Hour))
	golden(t, "manifest-link.xml", m)
	xmllint(t, "manifest.xsd", m)
}

func TestRequest(t *testing.T) {
	for _, name := range []string{"request-two-nodes.rspec", "request-minimal.rspec", "request-link.rspec"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		xmllint(t, "request.xsd", b)
		r, err := ParseRequest(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		bound, err := Bind(r, am, inventory())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if name == "request-two-nodes.rspec" {
			if len(bound) != 2 || bound[0].Node.ComponentName != "node1.pr.test" || bound[1].Node.ComponentName != "node2.pr.test" || bound[1].ClientID != "client" {
				t.Fatalf("bound %+v", bound)
			}
		}
		if name == "request-link.rspec" {
			want := []RequestLink{{ClientID: "link-0", Nodes: [2]string{"server", "client"}, Interfaces: [2]string{"server:if0", "client:if0"},
				CapacityKbps: 20000, LatencyUs: 10000, LossPPM: 5000, managers: []string{am}}}
			if !reflect.DeepEqual(r.Links, want) {
				t.Fatalf("links %+v", r.Links)
			}
		}
	}
}

func req(nodes string) []byte {
	return []byte(`<rspec xmlns="http://www.geni.net/resources/rspec/3" type="request">` + nodes + `</rspec>`)
}

func TestRequestErrors(t *testing.T) {
	node := func(attrs string) string { return `<node ` + attrs + `/>` }
	two := `<node client_id="a"><interface client_id="a:0"/></node><node client_id="b"><interface client_id="b:0"/></node>`
	link := func(body string) string { return `<link client_id="l">` + body + `</link>` }
	ends := `<interface_ref client_id="a:0"/><interface_ref client_id="b:0"/>`
	prop := func(attrs string) string { return `<property source_id="a:0" dest_id="b:0" ` + attrs + `/>` }
	cases := []struct {
		name string
		doc  []byte
		code geni.Code
		want string
	}{
		{"not XML", []byte("<rspec"), geni.BadArgs, "not well-formed XML at line 1"},
		{"DTD", []byte(`<!DOCTYPE rspec [<!ENTITY x "y">]><rspec/>`), geni.BadArgs, "DTD"},
		{"wrong namespace", []byte(`<rspec type="request"><node client_id="a"/></rspec>`), geni.BadArgs, "namespace"},
		{"advertisement as request", []byte(`<rspec xmlns="http://www.geni.net/resources/rspec/3" type="advertisement"/>`), geni.BadArgs, `type "advertisement"`},
		{"no nodes", req(""), geni.BadArgs, "no <node>"},
		{"no client_id", req(node(`component_id="x"`)), geni.BadArgs, "node 1 has no client_id"},
		{"client_id twice", req(node(`client_id="a"`) + node(`client_id="a"`)), geni.BadArgs, "client_id used twice"},
		{"exclusive", req(node(`client_id="a" exclusive="true"`)), geni.Unsupported, "exclusive"},
		{"exclusive garbage", req(node(`client_id="a" exclusive="maybe"`)), geni.BadArgs, "not a boolean"},
		{"sliver type", req(`<node client_id="a"><sliver_type name="raw-pc"/></node>`), geni.BadArgs, `sliver_type "raw-pc"`},
		{"link without client_id", req(two + `<link><interface_ref client_id="a:0"/><interface_ref client_id="b:0"/></link>`), geni.BadArgs, "link 1 has no client_id"},
		{"link to an unknown interface", req(two + link(`<interface_ref client_id="a:0"/><interface_ref client_id="c:0"/>`)), geni.BadArgs, `interface_ref "c:0": no node of the request has that interface`},
		{"link with one end", req(two + link(`<interface_ref client_id="a:0"/>`)), geni.BadArgs, "1 interface_ref"},
		{"LAN of three", req(two + `<node client_id="c"><interface client_id="c:0"/></node>` + link(`<interface_ref client_id="a:0"/><interface_ref client_id="b:0"/><interface_ref client_id="c:0"/>`)), geni.Unsupported, "3 interfaces"},
		{"link on one node", req(`<node client_id="a"><interface client_id="a:0"/><interface client_id="a:1"/></node>` + link(`<interface_ref client_id="a:0"/><interface_ref client_id="a:1"/>`)), geni.BadArgs, `both interfaces are on node "a"`},
		{"negative capacity", req(two + link(ends+prop(`capacity="-5"`))), geni.BadArgs, `capacity "-5" is impossible`},
		{"zero capacity", req(two + link(ends+prop(`capacity="0"`))), geni.BadArgs, `capacity "0" is impossible`},
		{"loss above 1", req(two + link(ends+prop(`packet_loss="1.5"`))), geni.BadArgs, `packet_loss "1.5" is impossible`},
		{"latency not a number", req(two + link(ends+prop(`latency="soon"`))), geni.BadArgs, `latency "soon" is impossible`},
		{"property of another link", req(two + link(ends+`<property source_id="a:0" dest_id="x"/>`)), geni.BadArgs, `property from "a:0" to "x"`},
		{"asymmetric", req(two + link(ends+prop(`capacity="100"`)+`<property source_id="b:0" dest_id="a:0" capacity="200"/>`)), geni.Unsupported, "differ by direction"},
		{"link type", req(two + link(ends+`<link_type name="gre-tunnel"/>`)), geni.Unsupported, `link_type "gre-tunnel"`},
		{"interface twice", req(`<node client_id="a"><interface client_id="x"/></node><node client_id="b"><interface client_id="x"/></node>`), geni.BadArgs, `interface client_id "x" used twice`},
		{"too many links", req(two + strings.Repeat(link(ends), MaxRequestLinks+1)), geni.TooBig, "links, at most 63"},
		{"huge", append(req(""), bytes.Repeat([]byte(" "), MaxRequestBytes)...), geni.TooBig, "bytes"},
		{"too many nodes", req(strings.Repeat(`<node client_id="x"/>`, MaxRequestNodes+1)), geni.TooBig, "nodes, at most"},
		{"deep", req(strings.Repeat("<x:a xmlns:x='e'>", 100)), geni.BadArgs, "deeper"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRequest(tc.doc)
			checkErr(t, err, tc.code, tc.want)
		})
	}
	bind := []struct {
		name string
		doc  []byte
		code geni.Code
		want string
	}{
		{"unknown node", req(node(`client_id="a" component_id="urn:publicid:IDN+plc.test+node+nosuch.test"`)), geni.SearchFailed, "no node urn:publicid:IDN+plc.test+node+nosuch.test"},
		{"other aggregate", req(node(`client_id="a" component_manager_id="urn:publicid:IDN+other+authority+am"`)), geni.BadArgs, "is for aggregate"},
		{"same node twice", req(node(`client_id="a" component_id="urn:publicid:IDN+plc.test+node+node1.pr.test"`) + node(`client_id="b" component_id="urn:publicid:IDN+plc.test+node+node1.pr.test"`)), geni.TooBig, "one sliver per node"},
		{"unavailable", req(node(`client_id="a" component_id="urn:publicid:IDN+plc.test+node+node3.ucl.test"`)), geni.Unavailable, "not available"},
		{"more than exists", req(node(`client_id="a"`) + node(`client_id="b"`) + node(`client_id="c"`)), geni.TooBig, "3 nodes without component_id, but only 2"},
		{"link to another aggregate", req(two + link(`<component_manager name="urn:publicid:IDN+other+authority+am"/>`+ends)), geni.Unsupported, "stitching"},
	}
	for _, tc := range bind {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRequest(tc.doc)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Bind(r, am, inventory())
			checkErr(t, err, tc.code, tc.want)
		})
	}
}

func checkErr(t *testing.T, err error, code geni.Code, want string) {
	t.Helper()
	var ge *geni.Error
	if !errors.As(err, &ge) || ge.Code != code || !strings.Contains(ge.Message, want) {
		t.Fatalf("error %v; want %s with %q", err, code, want)
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, name := range []string{"request-two-nodes.rspec", "request-minimal.rspec", "request-link.rspec"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(req(`<node client_id="a" component_id="urn:publicid:IDN+plc.test+node+node1.pr.test"/>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRequest(b)
		if err != nil {
			var ge *geni.Error
			if !errors.As(err, &ge) || ge.Code == geni.Success {
				t.Fatalf("error without a GENI code: %v", err)
			}
			return
		}
		if len(r.Nodes) == 0 || len(r.Nodes) > MaxRequestNodes || len(r.Links) > MaxRequestLinks {
			t.Fatalf("%d nodes, %d links", len(r.Nodes), len(r.Links))
		}
		nodes := map[string]bool{}
		for _, n := range r.Nodes {
			nodes[n.ClientID] = true
		}
		for _, l := range r.Links {
			if !nodes[l.Nodes[0]] || !nodes[l.Nodes[1]] || l.Nodes[0] == l.Nodes[1] || l.CapacityKbps < 0 || l.LatencyUs < 0 || l.LossPPM < 0 || l.LossPPM > 1_000_000 {
				t.Fatalf("link %+v", l)
			}
		}
		bound, err := Bind(r, am, inventory())
		if err != nil {
			return
		}
		used := map[string]bool{}
		for _, b := range bound {
			if used[b.Node.ComponentID] || !b.Node.Available {
				t.Fatalf("bound %+v", bound)
			}
			used[b.Node.ComponentID] = true
		}
	})
}
