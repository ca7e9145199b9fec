package planet

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/planetlab/pl/internal/core"
)

func TestMetrics(t *testing.T) {
	tb := testTable()
	now := time.Unix(1_700_000_000, 0)
	f := figures(now, 1.5, 40, 0, core.SliverFigures{Slice: "princeton_burn", State: "running", CPUPct: 50})
	f.SSH = core.SSHUp
	tb.Ingest(1, now.Unix(), f, nil, "")
	f = figures(now, 1, 40, 0)
	f.SSH = core.SSHOff
	tb.Ingest(2, now.Unix(), f, nil, "")
	for _, withSlices := range []bool{false, true} {
		c := NewCollector(tb, withSlices)
		reg := prometheus.NewRegistry()
		reg.MustRegister(c)
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		for _, f := range fams {
			if _, err := expfmt.MetricFamilyToText(&buf, f); err != nil {
				t.Fatal(err)
			}
		}
		// The exposition parses with Prometheus' own text parser.
		p := expfmt.NewTextParser(model.UTF8Validation)
		parsed, err := p.TextToMetricFamilies(strings.NewReader(buf.String()))
		if err != nil {
			t.Fatalf("parse: %v\n%s", err, buf.String())
		}
		up := parsed["pl_node_up"]
		if up == nil || len(up.Metric) != 4 {
			t.Fatalf("pl_node_up: %v", up)
		}
		if !strings.Contains(buf.String(), `pl_node_load1{country="US",node="n1.princeton.edu",site="princeton"} 1.5`) {
			t.Errorf("load series missing:\n%s", buf.String())
		}
		if ssh := parsed["pl_node_ssh_up"]; ssh == nil || len(ssh.Metric) != 1 ||
			!strings.Contains(buf.String(), `pl_node_ssh_up{country="US",node="n1.princeton.edu",site="princeton"} 1`) {
			t.Errorf("pl_node_ssh_up: only node 1 reports a gateway (node 2's is off):\n%s", buf.String())
		}
		_, hasSlice := parsed["pl_slice_cpu_cores"]
		if hasSlice != withSlices {
			t.Errorf("withSlices=%v: slice series present=%v", withSlices, hasSlice)
		}
		if withSlices && !strings.Contains(buf.String(), `pl_slice_cpu_cores{site_id="1",slice="princeton_burn"} 2`) {
			t.Errorf("slice cpu missing:\n%s", buf.String())
		}
	}
}
