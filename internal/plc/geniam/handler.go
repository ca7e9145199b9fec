package geniam

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/geni"
	"github.com/planetlab/pl/internal/sfa"
	"github.com/planetlab/pl/internal/xmlrpc"
)

// MaxRequestBytes bounds an XML-RPC request (an RSpec and a few
// credentials).
const MaxRequestBytes = 4 << 20

// TLSConfig asks every client for a certificate; the handler verifies it
// against the trusted roots itself (sfa.Roots: SHA-1 and unknown critical
// extensions of federation certificates are accepted there, which
// crypto/tls's own verification would refuse).
func TLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAnyClientCert}
}

// ServeHTTP serves one XML-RPC call.
func (a *Aggregate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "the GENI AM API is XML-RPC: POST", http.StatusMethodNotAllowed)
		return
	}
	call, err := xmlrpc.DecodeCall(http.MaxBytesReader(w, r.Body, MaxRequestBytes), xmlrpc.Limits{MaxBytes: MaxRequestBytes})
	if err != nil {
		a.cfg.Log.Info("GENI AM refused", "remote", r.RemoteAddr, "err", err)
		write(w, xmlrpc.EncodeFault(int(geni.BadArgs), "not an XML-RPC call: "+err.Error()))
		return
	}
	var res map[string]any
	peer, err := a.peer(r)
	if err != nil {
		a.cfg.Log.Info("GENI AM refused", "method", call.Method, "remote", r.RemoteAddr, "err", err)
		res = a.fail(call.Method, err)
	} else {
		res = a.Call(r.Context(), peer, call.Method, call.Params)
	}
	b, err := xmlrpc.EncodeResponse(res)
	if err != nil {
		a.cfg.Log.Error("GENI AM: encoding the answer", "method", call.Method, "err", err)
		b = xmlrpc.EncodeFault(int(geni.ServerError), "internal error")
	}
	write(w, b)
}

func write(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Write(b)
}

// peer is the caller's certificate, verified to a trusted root.
func (a *Aggregate) peer(r *http.Request) (*sfa.Cert, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, geni.Errorf(geni.Forbidden, "no client certificate")
	}
	var chain []*sfa.Cert
	for _, c := range r.TLS.PeerCertificates {
		sc, err := sfa.ParseCert(c.Raw)
		if err != nil {
			return nil, geni.Errorf(geni.Forbidden, "client certificate: %s", core.PublicMessage(err))
		}
		chain = append(chain, sc)
	}
	if _, err := a.cfg.Verifier.Roots.Verify(chain[0], chain[1:], a.cfg.Now()); err != nil {
		return nil, geni.Errorf(geni.Forbidden, "client certificate: %s", core.PublicMessage(err))
	}
	if chain[0].URN == "" {
		return nil, geni.Errorf(geni.Forbidden, "client certificate %s carries no URN", chain[0].Name())
	}
	return chain[0], nil
}

type method func(ctx context.Context, peer *sfa.Cert, p params) (any, error)

// Call runs one AM API method for the holder of peer and returns the
// answer struct {code, value, output}.
func (a *Aggregate) Call(ctx context.Context, peer *sfa.Cert, name string, args []any) map[string]any {
	methods := map[string]method{
		"GetVersion": a.getVersion, "ListResources": a.listResources, "Describe": a.describe,
		"Allocate": a.allocate, "Renew": a.renew, "Provision": a.provision, "Status": a.status,
		"PerformOperationalAction": a.performOperationalAction, "Delete": a.delete, "Shutdown": a.shutdown,
	}
	m := methods[name]
	if m == nil {
		return a.fail(name, geni.Errorf(geni.Unsupported, "no method %q in AM API v3", name))
	}
	start := time.Now()
	v, err := m(ctx, peer, params(args))
	if err != nil {
		a.cfg.Log.Info("GENI AM refused", "method", name, "caller", peer.URN, "err", err)
		return a.fail(name, err)
	}
	a.cfg.Log.Debug("GENI AM", "method", name, "caller", peer.URN, "dur", time.Since(start))
	res := map[string]any{"code": map[string]any{"geni_code": int(geni.Success)}, "value": v, "output": ""}
	if name == "GetVersion" {
		res["geni_api"] = geni.APIVersion
	}
	return res
}

// fail maps an error to the answer of a failed call: *geni.Error as it
// is, the service's codes to the closest AM API code; internal details go
// to the log only.
func (a *Aggregate) fail(name string, err error) map[string]any {
	code := Code(err)
	var msg string
	var ge *geni.Error
	if errors.As(err, &ge) {
		msg = ge.Message
	} else {
		msg = core.PublicMessage(err)
		if code == geni.ServerError {
			a.cfg.Log.Error("GENI AM failed", "method", name, "err", err)
		}
	}
	return map[string]any{"code": map[string]any{"geni_code": int(code), "am_type": "planetlab"}, "value": "", "output": msg}
}

// Code is the AM API code of an error.
func Code(err error) geni.Code {
	var ge *geni.Error
	if errors.As(err, &ge) {
		return ge.Code
	}
	switch core.ErrorCode(err) {
	case core.Invalid:
		return geni.BadArgs
	case core.NotFound:
		return geni.SearchFailed
	case core.Conflict:
		return geni.Refused
	case core.Unauthenticated, core.Forbidden:
		return geni.Forbidden
	case core.Unimplemented:
		return geni.Unsupported
	case core.RateLimited:
		return geni.Busy
	case core.Unavailable:
		return geni.Unavailable
	}
	return geni.ServerError
}
