package client

import (
	"context"
	"net/http"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/restapi"
)

var _ core.SliceAuthority = (*Client)(nil)

// GENICertificate implements core.SliceAuthority.
func (c *Client) GENICertificate(ctx context.Context, caller *core.Caller, publicKey string) (string, error) {
	var out restapi.GENICertificateResponse
	err := c.do(ctx, caller, http.MethodPost, rel(restapi.GENICertificatePath), nil, restapi.GENICertificateRequest{PublicKey: publicKey}, &out, "")
	return out.Certificate, err
}

// GENICredential implements core.SliceAuthority.
func (c *Client) GENICredential(ctx context.Context, caller *core.Caller, cert, slice string) (string, error) {
	var out restapi.GENICredentialResponse
	err := c.do(ctx, caller, http.MethodPost, rel(restapi.GENICredentialPath), nil, restapi.GENICredentialRequest{Certificate: cert, Slice: slice}, &out, "")
	return out.Credential, err
}
