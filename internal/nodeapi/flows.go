package nodeapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/planetlab/pl/internal/core"
)

// The flow query: PLC asks a node for the flows it recorded with one
// remote address (docs/audit.md). The node serves it on its sensor
// listener (:3100) at FlowsPath; only PLC may call it, signing each
// request with the node's key (the secret both hold):
//
//	Authorization: PLC <node_id>:<unix seconds>:<hex HMAC-SHA256(node_key, "<node_id>\n<unix seconds>\n<METHOD>\n<request URI>")>
//
// A signature is valid for SignatureSkew around the node's clock (which
// follows PLC's); within that time a captured request could be replayed,
// which reveals nothing its first answer did not.
const (
	FlowsPath = "/flows"
	// FlowSummaryPath answers one slice's traffic summary
	// (core.ParseTrafficQuery's parameters; a core.TrafficSummary), signed
	// as FlowsPath.
	FlowSummaryPath = "/flows/summary"
	PLCAuthScheme   = "PLC"
	SignatureSkew   = 5 * time.Minute
)

// SignPLC returns the Authorization header value PLC sends to node nodeID.
func SignPLC(nodeKey string, nodeID int64, method, requestURI string, t time.Time) string {
	ts := t.Unix()
	return fmt.Sprintf("%s %d:%d:%s", PLCAuthScheme, nodeID, ts, hex.EncodeToString(plcMAC(nodeKey, nodeID, ts, method, requestURI)))
}

func plcMAC(key string, nodeID, ts int64, method, uri string) []byte {
	m := hmac.New(sha256.New, []byte(key))
	fmt.Fprintf(m, "%d\n%d\n%s\n%s", nodeID, ts, method, uri)
	return m.Sum(nil)
}

// VerifyPLC checks an Authorization header made by SignPLC.
func VerifyPLC(nodeKey string, nodeID int64, method, requestURI, header string, now time.Time) error {
	scheme, val, _ := strings.Cut(strings.TrimSpace(header), " ")
	if !strings.EqualFold(scheme, PLCAuthScheme) {
		return core.Errorf(core.Unauthenticated, "want Authorization: %s <node_id>:<time>:<signature>", PLCAuthScheme)
	}
	parts := strings.Split(strings.TrimSpace(val), ":")
	if len(parts) != 3 {
		return core.Errorf(core.Unauthenticated, "malformed %s credentials", PLCAuthScheme)
	}
	id, err1 := strconv.ParseInt(parts[0], 10, 64)
	ts, err2 := strconv.ParseInt(parts[1], 10, 64)
	mac, err3 := hex.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return core.Errorf(core.Unauthenticated, "malformed %s credentials", PLCAuthScheme)
	}
	if id != nodeID {
		return core.Errorf(core.Unauthenticated, "signed for node %d, this is node %d", id, nodeID)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > SignatureSkew || d < -SignatureSkew {
		return core.Errorf(core.Unauthenticated, "signature time is %s away from the node's clock", d.Round(time.Second))
	}
	if !hmac.Equal(mac, plcMAC(nodeKey, nodeID, ts, method, requestURI)) {
		return core.Errorf(core.Unauthenticated, "bad signature")
	}
	return nil
}

// FlowPage is a node's answer to a flow query.
type FlowPage struct {
	Flows []core.Flow `json:"flows"`
	Next  string      `json:"next,omitempty"` // cursor (after=) of the next page
}
