package rest

import (
	"context"
	"net/http"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/restapi"
)

// WithSliceAuthority serves the GENI slice authority: user certificates
// and credentials (docs/geni.md).
func WithSliceAuthority(sa core.SliceAuthority) Option { return func(h *Handler) { h.sa = sa } }

func (h *Handler) geniRoutes() []route {
	if h.sa == nil {
		return nil
	}
	return []route{
		{method: http.MethodPost, path: restapi.GENICertificatePath, op: "GENICertificate", body: "GENICertificateRequest", resp: "GENICertificateResponse",
			summary: "Certify a public key as the caller's GENI user certificate (docs/geni.md)",
			h: func(ctx context.Context, q *request) (result, error) {
				var req restapi.GENICertificateRequest
				if err := h.strictBody(q, &req); err != nil {
					return result{}, err
				}
				cert, err := h.sa.GENICertificate(ctx, q.caller, req.PublicKey)
				return result{body: restapi.GENICertificateResponse{Certificate: cert}}, err
			}},
		{method: http.MethodPost, path: restapi.GENICredentialPath, op: "GENICredential", body: "GENICredentialRequest", resp: "GENICredentialResponse",
			summary: "A signed SFA credential for the caller's certificate: a slice's, or the user's own",
			h: func(ctx context.Context, q *request) (result, error) {
				var req restapi.GENICredentialRequest
				if err := h.strictBody(q, &req); err != nil {
					return result{}, err
				}
				cred, err := h.sa.GENICredential(ctx, q.caller, req.Certificate, req.Slice)
				return result{body: restapi.GENICredentialResponse{Credential: cred}}, err
			}},
	}
}
