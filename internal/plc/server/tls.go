package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/planetlab/pl/internal/atomicfile"
	"github.com/planetlab/pl/internal/tlspin"
)

// Certificate file names in the data directory.
const (
	CertFile = "tls/cert.pem"
	KeyFile  = "tls/key.pem"
)

// CertValidity is the lifetime of a generated certificate.
const CertValidity = 10 * 365 * 24 * time.Hour

// LoadOrCreateCert returns PLC's TLS certificate from dataDir, generating a
// self-signed ECDSA P-256 certificate for the given names (DNS names or IP
// addresses) the first time. It also returns the certificate's SHA-256
// fingerprint (lowercase hex of the DER) and the requested names missing
// from an existing certificate.
func LoadOrCreateCert(dataDir string, names []string) (cert tls.Certificate, fingerprint string, missing []string, err error) {
	certPath, keyPath := filepath.Join(dataDir, CertFile), filepath.Join(dataDir, KeyFile)
	if _, err := os.Stat(certPath); errors.Is(err, fs.ErrNotExist) {
		if err := generateCert(certPath, keyPath, names); err != nil {
			return tls.Certificate{}, "", nil, err
		}
	} else if err != nil {
		return tls.Certificate{}, "", nil, err
	}
	cert, err = tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return tls.Certificate{}, "", nil, fmt.Errorf("loading PLC certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return tls.Certificate{}, "", nil, fmt.Errorf("parsing PLC certificate: %w", err)
	}
	cert.Leaf = leaf
	for _, n := range names {
		if leaf.VerifyHostname(n) != nil {
			missing = append(missing, n)
		}
	}
	return cert, tlspin.Fingerprint(leaf.Raw), missing, nil
}

// DefaultNames are the certificate names of a new PLC: the host name,
// localhost and the loopback addresses, plus extra.
func DefaultNames(extra []string) []string {
	names := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil && h != "" {
		names = append([]string{h}, names...)
	}
	for _, e := range extra {
		if !slices.Contains(names, e) {
			names = append(names, e)
		}
	}
	return names
}

func generateCert(certPath, keyPath string, names []string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	cn := "PlanetLab Central"
	if len(names) > 0 {
		cn = names[0]
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"PlanetLab Central"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(CertValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // self-signed: usable as its own CA with `pl login --ca`
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if n != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(certPath), 0o700); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	return atomicfile.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}
