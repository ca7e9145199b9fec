package client

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/restapi"
)

var _ core.Peering = (*Client)(nil)

func (c *Client) record(ctx context.Context, caller *core.Caller, method, path string, in any) (core.Record, error) {
	var raw map[string]any
	if err := c.do(ctx, caller, method, path, nil, in, &raw, ""); err != nil {
		return nil, err
	}
	rec, err := restapi.ConvertValue("", raw)
	if err != nil {
		return nil, fmt.Errorf("decoding PLC's answer: %w", err)
	}
	r, _ := rec.(core.Record)
	return r, nil
}

// RefreshPeer implements core.Peering.
func (c *Client) RefreshPeer(ctx context.Context, caller *core.Caller, peerID int64) (core.Record, error) {
	return c.record(ctx, caller, http.MethodPost, rel(restapi.PeerRefreshPath(strconv.FormatInt(peerID, 10))), nil)
}

// GetPeerData implements core.Peering.
func (c *Client) GetPeerData(ctx context.Context, caller *core.Caller) (core.Record, error) {
	return c.record(ctx, caller, http.MethodGet, rel(restapi.PeerDataPath), nil)
}

// RefuseSlice implements core.Peering.
func (c *Client) RefuseSlice(ctx context.Context, caller *core.Caller, sliceID int64, refuse bool, reason string) error {
	p := rel(restapi.SliceRefusalPath(strconv.FormatInt(sliceID, 10)))
	if !refuse {
		return c.do(ctx, caller, http.MethodDelete, p, nil, nil, nil, "")
	}
	return c.do(ctx, caller, http.MethodPut, p, nil, restapi.RefusalRequest{Reason: reason}, nil, "")
}

// BindObjectToPeer implements core.Peering.
func (c *Client) BindObjectToPeer(ctx context.Context, caller *core.Caller, class core.Class, id, peerID, remoteID int64) error {
	p := rel(restapi.PeerObjectPath(strconv.FormatInt(peerID, 10), string(class), strconv.FormatInt(id, 10)))
	return c.do(ctx, caller, http.MethodPut, p, nil, restapi.BindRequest{RemoteObjectID: remoteID}, nil, "")
}

// UnBindObjectFromPeer implements core.Peering.
func (c *Client) UnBindObjectFromPeer(ctx context.Context, caller *core.Caller, class core.Class, id, peerID int64) error {
	p := rel(restapi.PeerObjectPath(strconv.FormatInt(peerID, 10), string(class), strconv.FormatInt(id, 10)))
	return c.do(ctx, caller, http.MethodDelete, p, nil, nil, nil, "")
}

// DeleteAllPeerEntries implements core.Peering.
func (c *Client) DeleteAllPeerEntries(ctx context.Context, caller *core.Caller, peerID int64) error {
	return c.do(ctx, caller, http.MethodDelete, rel(restapi.PeerObjectsPath(strconv.FormatInt(peerID, 10))), nil, nil, nil, "")
}

// GetPeerName implements core.Peering.
func (c *Client) GetPeerName(ctx context.Context, caller *core.Caller) (string, error) {
	var out restapi.PeerName
	if err := c.do(ctx, caller, http.MethodGet, rel(restapi.PeerNamePath), nil, nil, &out, ""); err != nil {
		return "", err
	}
	return out.Peername, nil
}

// PeerKey returns the PLC's public peer key (unsigned, anonymous: compare
// it out of band before giving it to AddPeer).
func (c *Client) PeerKey(ctx context.Context) (string, error) {
	var out struct {
		Key string `json:"key"`
	}
	if err := c.do(ctx, nil, http.MethodGet, rel(restapi.Prefix+"/peer/key"), nil, nil, &out, ""); err != nil {
		return "", err
	}
	return out.Key, nil
}
