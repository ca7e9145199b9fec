package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/planetlab/pl/internal/client"
	"github.com/planetlab/pl/internal/core"
	"github.com/planetlab/pl/internal/tlspin"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func loginCmd() *cobra.Command {
	var email, passwordFile, fingerprint, caFile string
	var replicas []string
	cmd := &cobra.Command{
		Use:   "login <plc-url>[,<plc-url>...]",
		Short: "Log in to a PLC and store the session token",
		Long: `Log in to the PLC at <plc-url> (https://host:8443) with your email and
password, and store the session token in $PL_CONFIG_DIR/config.json
(default ~/.config/pl/config.json, mode 0600). Later commands use it; --plc
selects among several PLCs.

The password is read from --password-file, $PL_PASSWORD, or the terminal.
PLC's self-signed certificate is pinned with --fingerprint (printed by
'pl plc' at start) or verified with --ca FILE.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			list := append([]string{args[0]}, replicas...)
			pus, err := core.ParsePLCURLs("plc-url", strings.Join(list, ","))
			if err != nil {
				return usagef("%v", err)
			}
			norm := make([]string, len(pus))
			for i, pu := range pus {
				if pu.Scheme != "https" && pu.Scheme != "http" {
					return usagef("%q is not an http(s) URL", pu.String())
				}
				norm[i] = pu.String()
			}
			// Several replicas of one PLC: one entry, the URLs
			// comma-separated (docs/replicas.md).
			u := strings.Join(norm, ",")
			if email == "" {
				return usagef("--email is required")
			}
			if fingerprint != "" && caFile != "" {
				return usagef("give --fingerprint or --ca, not both")
			}
			password, err := readPassword(passwordFile, "PL_PASSWORD", "Password for "+email+": ")
			if err != nil {
				return err
			}
			cl, err := client.New(u, client.Options{Fingerprint: fingerprint, CAFile: caFile})
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			s, err := cl.Login(ctx, email, password, 0)
			if err != nil {
				if strings.HasPrefix(u, "https://") && fingerprint == "" && isUnknownAuthority(err) {
					if fp, ferr := peerFingerprint(ctx, norm[0]); ferr == nil {
						return core.Errorf(core.Unauthenticated, "PLC's certificate is not signed by a trusted CA; its SHA-256 fingerprint is\n  %s\nIf that is what `pl plc` printed, run again with --fingerprint %s", fp, fp)
					}
				}
				return err
			}
			cfg, err := LoadConfig()
			if err != nil {
				return err
			}
			cfg.PLCs[u] = &PLCEntry{URL: u, Email: strings.ToLower(email), Token: s.ID, Expires: s.Expires, Fingerprint: strings.ToLower(strings.ReplaceAll(fingerprint, ":", "")), CAFile: caFile}
			cfg.Current = u
			if err := cfg.Save(); err != nil {
				return err
			}
			if jsonFlag(cmd) {
				return printJSON(cmd.OutOrStdout(), map[string]any{"url": u, "email": email, "expires": s.Expires})
			}
			exp := "never"
			if s.Expires > 0 {
				exp = time.Unix(s.Expires, 0).UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "logged in to %s as %s (session expires %s)\n", u, email, exp)
			return nil
		},
	}
	cmd.Flags().StringVar(&email, "email", "", "your account's email")
	cmd.Flags().StringVar(&passwordFile, "password-file", "", "read the password from this file (first line)")
	cmd.Flags().StringVar(&fingerprint, "fingerprint", "", "pin PLC's certificate by its SHA-256 fingerprint (hex)")
	cmd.Flags().StringVar(&caFile, "ca", "", "verify PLC's certificate with this PEM CA bundle")
	cmd.Flags().StringArrayVar(&replicas, "replica", nil, "another replica of the same PLC (repeatable; or give <plc-url> as URL,URL,...): requests fail over to the next when one is unreachable")
	return cmd
}

func logoutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "End the session with the selected PLC and forget its token",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := LoadConfig()
			if err != nil {
				return err
			}
			sel, _ := cmd.Flags().GetString("plc")
			e, err := cfg.Select(sel)
			if err != nil {
				return err
			}
			if e.Token != "" {
				cl, err := client.New(e.URL, client.Options{Token: e.Token, Fingerprint: e.Fingerprint, CAFile: e.CAFile})
				if err != nil {
					return err
				}
				if err := cl.Logout(cmd.Context()); err != nil && core.ErrorCode(err) != core.Unauthenticated {
					return err
				}
			}
			e.Token, e.Expires = "", 0
			if err := cfg.Save(); err != nil {
				return err
			}
			if jsonFlag(cmd) {
				return printJSON(cmd.OutOrStdout(), map[string]any{"ok": true})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "logged out of %s\n", e.URL)
			return nil
		},
	}
}

func whoamiCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show who you are logged in as",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := newEnv(cmd)
			if err != nil {
				return err
			}
			w, err := e.cl.Whoami(e.ctx)
			if err != nil {
				return err
			}
			if w.Kind != "person" {
				return core.Errorf(core.Unauthenticated, "the stored session for %s is no longer valid", e.plc.URL)
			}
			if e.json {
				return printJSON(e.out, w)
			}
			fmt.Fprintf(e.out, "%s (person %d) at %s\nroles: %s\nsites: %s\n", w.Email, w.PersonID, e.plc.URL,
				strings.Join(w.Roles, ","), formatValue("", w.SiteIDs))
			return nil
		},
	}
}

func isUnknownAuthority(err error) bool {
	s := err.Error()
	return strings.Contains(s, "certificate signed by unknown authority") || strings.Contains(s, "certificate is not trusted") ||
		strings.Contains(s, "x509:")
}

// peerFingerprint reads the fingerprint of the certificate PLC presents,
// only to show it to the user; nothing is sent.
func peerFingerprint(ctx context.Context, rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "443")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return tlspin.Peer(ctx, host)
}

// readPassword reads a password from file, the environment variable, or
// the terminal (without echo).
func readPassword(file, envVar, prompt string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", core.FieldErrorf("password-file", "%v", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		return strings.TrimRight(line, "\r"), nil
	}
	if v, ok := os.LookupEnv(envVar); ok {
		return v, nil
	}
	noPassword := core.FieldErrorf("password", "no password given (use --password-file or $%s)", envVar)
	if fd := int(os.Stdin.Fd()); term.IsTerminal(fd) {
		fmt.Fprint(os.Stderr, prompt)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return "", noPassword
		}
		return string(b), nil
	}
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", noPassword
	}
	return strings.TrimRight(line, "\r\n"), nil
}
