package service

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"time"

	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/plc/store"
	"github.com/planetlab/pl/internal/sfa"
)

var _ core.SliceAuthority = (*Service)(nil)

// GENIUserLifetime is how long a user certificate of the slice authority
// is valid.
const GENIUserLifetime = 365 * 24 * time.Hour

// userPrivileges are those of a user credential, as GENI slice
// authorities grant them.
var userPrivileges = []sfa.Privilege{{Name: "refresh", CanDelegate: true}, {Name: "resolve", CanDelegate: true}, {Name: "info", CanDelegate: true}}

func (s *Service) authority() (*sfa.Authority, error) {
	if s.opts.GENI == nil {
		return nil, core.Errorf(core.Unimplemented, "not supported: this PLC runs no GENI slice authority")
	}
	return s.opts.GENI, nil
}

// UserURN is the GENI URN of a person of this PLC.
func (s *Service) UserURN(email string) (sfa.URN, error) {
	a, err := s.authority()
	if err != nil {
		return sfa.URN{}, err
	}
	return sfa.URN{Authority: a.Host, Type: "user", Name: sfa.UserName(email)}, nil
}

// GENICertificate implements core.SliceAuthority.
func (s *Service) GENICertificate(ctx context.Context, c *core.Caller, publicKey string) (string, error) {
	if err := authorize(c, opGENICertificate); err != nil {
		return "", err
	}
	a, err := s.authority()
	if err != nil {
		return "", err
	}
	blk, _ := pem.Decode([]byte(publicKey))
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return "", core.FieldErrorf("public_key", "want a PEM PUBLIC KEY block")
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return "", core.FieldErrorf("public_key", "%v", err)
	}
	u, err := s.UserURN(c.Email)
	if err != nil {
		return "", err
	}
	der, err := a.IssueCert(u, c.Email, pub, GENIUserLifetime)
	if err != nil {
		return "", err
	}
	s.log.Info("GENI user certificate issued", "person_id", c.PersonID, "urn", u.String())
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) + string(a.Cert.PEM()), nil
}

// GENICredential implements core.SliceAuthority.
func (s *Service) GENICredential(ctx context.Context, c *core.Caller, cert, slice string) (string, error) {
	if err := authorize(c, opGENICredential); err != nil {
		return "", err
	}
	a, err := s.authority()
	if err != nil {
		return "", err
	}
	chain, err := sfa.ParseChain(cert)
	if err != nil {
		return "", err
	}
	owner := chain[0]
	if _, err := sfa.NewRoots(a.Cert).Verify(owner, nil, s.opts.Now()); err != nil {
		return "", core.FieldErrorf("certificate", "not a valid certificate of this slice authority: %v", core.PublicMessage(err))
	}
	u, err := s.UserURN(c.Email)
	if err != nil {
		return "", err
	}
	if owner.URN != u.String() {
		return "", core.Errorf(core.Forbidden, "the certificate is %s's, not the caller's (%s)", owner.URN, u)
	}
	now := s.opts.Now()
	target, expires, privs := owner.Raw, owner.NotAfter, userPrivileges
	if slice != "" {
		id, err := s.Resolve(ctx, c, core.Slice, slice)
		if err != nil {
			return "", err
		}
		var si *sliceInfo
		if err := s.read(ctx, c, func(o *op) error {
			var err error
			if si, err = o.slice(id); err != nil {
				return err
			}
			return o.sliceWriter(si)
		}); err != nil {
			return "", err
		}
		su := sfa.URN{Authority: a.Host, Type: "slice", Name: si.name}
		expires = time.Unix(si.expires, 0)
		if target, err = a.SliceCert(su, expires.Sub(now)+time.Hour); err != nil {
			return "", err
		}
		privs = []sfa.Privilege{{Name: "*", CanDelegate: true}}
	}
	cred, err := a.Credential(ctx, owner.Raw, target, expires, privs)
	if err != nil {
		return "", err
	}
	s.log.Info("GENI credential issued", "person_id", c.PersonID, "owner", owner.URN, "slice", slice)
	return string(cred), nil
}

// GENICaller returns the caller of the enabled person of this PLC whose
// GENI user URN is urn, or, for a user of another authority, of the
// enabled person standing in for them (GENIForeignSlice); the GENI
// aggregate acts as them in this service, under the same policy as their
// other requests.
func (s *Service) GENICaller(ctx context.Context, urn string) (*core.Caller, error) {
	a, err := s.authority()
	if err != nil {
		return nil, err
	}
	u, err := sfa.ParseURN(urn)
	if err != nil {
		return nil, err
	}
	if u.Type == "user" && !strings.EqualFold(u.Authority, a.Host) {
		return s.geniForeignCaller(ctx, urn)
	}
	if u.Type != "user" {
		return nil, core.Errorf(core.Forbidden, "%s is not a user of this PLC's slice authority (%s)", urn, a.Host)
	}
	var found *core.Caller
	err = s.db.Read(ctx, func(tx *store.Tx) error {
		rows, err := tx.Query(ctx, "SELECT person_id, email FROM persons WHERE deleted = 0 AND enabled = 1")
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			var email string
			if err := rows.Scan(&id, &email); err != nil {
				return err
			}
			if sfa.UserName(email) == u.Name {
				found = &core.Caller{Kind: core.PersonCaller, PersonID: id, Email: email}
				return nil
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, s.mapErr(err)
	}
	if found == nil {
		return nil, core.Errorf(core.Forbidden, "no enabled person of this PLC is %s", urn)
	}
	var c *core.Caller
	if err := s.read(ctx, found, func(o *op) error { c = o.c; return nil }); err != nil {
		return nil, err
	}
	return c, nil
}
