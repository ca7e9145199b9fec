package cli

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"

	"github.com/planetlab/pl/internal/atomicfile"
	"github.com/planetlab/pl/internal/core"
	"github.com/spf13/cobra"
)

// geniCmd is "pl geni": this PLC as the user's GENI slice authority.
func geniCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "geni", Short: "GENI: your certificate and credentials from this PLC's slice authority (docs/geni.md)"}
	cmd.AddCommand(geniCertCmd(), geniCredentialCmd())
	return cmd
}

// geniDir is where pl keeps the GENI key and certificate: <config>/geni.
func geniDir(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	d, err := ConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "geni"), nil
}

func geniCertCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "cert",
		Short: "Make a key and have PLC certify it as your GENI user certificate",
		Long: `Make an RSA key here (it never leaves this machine) and have PLC's slice
authority certify it with your URN, urn:publicid:IDN+<plc-host>+user+<name>.
It writes geni-key.pem (mode 0600) and geni-cert.pem (your certificate, then
the authority's) to --dir (default: pl's configuration directory + /geni).
omni takes them as cert and key; jFed takes the two concatenated.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			d, err := geniDir(dir)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(d, 0o700); err != nil {
				return err
			}
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				return err
			}
			pub, err := x509.MarshalPKIXPublicKey(k.Public())
			if err != nil {
				return err
			}
			cert, err := e.cl.GENICertificate(e.ctx, nil, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})))
			if err != nil {
				return err
			}
			keyPath, certPath := filepath.Join(d, "geni-key.pem"), filepath.Join(d, "geni-cert.pem")
			if err := atomicfile.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), 0o600); err != nil {
				return err
			}
			if err := atomicfile.WriteFile(certPath, []byte(cert), 0o644); err != nil {
				return err
			}
			if e.json {
				return printJSON(e.out, map[string]any{"key": keyPath, "certificate": certPath})
			}
			_, err = fmt.Fprintf(e.out, "key: %s\ncertificate: %s\n", keyPath, certPath)
			return err
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory of geni-key.pem and geni-cert.pem")
	return cmd
}

func geniCredentialCmd() *cobra.Command {
	var dir, out string
	cmd := &cobra.Command{
		Use:   "credential [<slice>]",
		Short: "Print a signed credential for a slice you may manage (or, without a slice, your user credential)",
		Long: `Ask PLC's slice authority for an SFA credential owned by your GENI
certificate (made by 'pl geni cert'): for a slice you are a member of (or a PI
of its site), valid until the slice expires; without a slice, your user
credential. The XML goes to stdout, or to -o.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			d, err := geniDir(dir)
			if err != nil {
				return err
			}
			cert, err := os.ReadFile(filepath.Join(d, "geni-cert.pem"))
			if err != nil {
				return core.Errorf(core.Invalid, "no GENI certificate (run 'pl geni cert' first): %v", err)
			}
			slice := ""
			if len(args) == 1 {
				slice = args[0]
			}
			cred, err := e.cl.GENICredential(e.ctx, nil, string(cert), slice)
			if err != nil {
				return err
			}
			if out != "" {
				return atomicfile.WriteFile(out, []byte(cred), 0o600)
			}
			_, err = fmt.Fprint(e.out, cred)
			return err
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory of geni-cert.pem (default: pl's configuration directory + /geni)")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the credential to this file")
	return cmd
}
