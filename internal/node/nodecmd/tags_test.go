package nodecmd

import (
	"testing"

	"github.com/planetlab/pl/internal/node/agent"
	"github.com/planetlab/pl/internal/plc/store"
)

// TestAgentTagsHavePLCTagTypes checks that every slice tag the node manager
// understands can be set at PLC: a tag without a PLC tag type could never
// reach a node.
func TestAgentTagsHavePLCTagTypes(t *testing.T) {
	seeded := map[string]bool{}
	for _, s := range store.TagTypeSeeds() {
		seeded[s.Name] = true
	}
	for _, tag := range []string{
		agent.TagEnabled, agent.TagCPUShare, agent.TagCPUPct, agent.TagCPUCapPct,
		agent.TagMemMax, agent.TagMemlockHard, agent.TagNProc, agent.TagNProcHard,
		agent.TagNoFile, agent.TagNoFileHard, agent.TagDiskMax, agent.TagNetMinRate,
		agent.TagNetMaxRate, agent.TagVref, agent.TagInitScript, agent.TagInitScriptCode,
		agent.TagPorts,
	} {
		if !seeded[tag] {
			t.Errorf("slice tag %q is read by the node manager but PLC seeds no tag type for it", tag)
		}
	}
}
