package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
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
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kstore/kstore/actors"
	"github.com/kstore/kstore/messages"
)

// Lifetimes of what kstore certs makes: a local PKI to try TLS with, not a production one.
const (
	certsCAValidity   = 5 * 365 * 24 * time.Hour
	certsLeafValidity = 365 * 24 * time.Hour
	certsMaxNodes     = 100 // a guard against a typo making thousands of files
)

type certsOptions struct {
	dir   string
	hosts string
	nodes int
}

func newCertsCmd(g *globals) *cobra.Command {
	var o certsOptions
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Make a CA and node and client certificates for trying TLS on a local cluster",
		Long: `Make a small PKI in --dir with Go's crypto/x509 (no outside tool), for trying mutual TLS:

  ca.crt, ca.key          a CA (ECDSA P-256, ` + fmt.Sprint(certsCAValidity/(24*time.Hour)) + ` days)
  nodeN.crt, nodeN.key    for each of --nodes nodes: usable as the node's server certificate,
                          its client and its peer certificate (Organizational Unit "` + actors.PeerOU + `",
                          the mark of a peer), with --hosts as subject alternative names
  client.crt, client.key  a client certificate: server and client key usages (a client's own
                          listener serves TLS too: the node connects back to it), --hosts as
                          SANs, no peer OU, so it cannot send Raft messages or member changes

Keys are written 0600. Existing files are not overwritten: pick an empty --dir. The
certificates name only --hosts: a node advertised, or a client listening, on another address
needs a certificate naming it (rerun with --hosts, or use your own CA).`,
		Example: `  kstore certs --dir ./tls
  kstore certs --dir ./tls --nodes 3 --hosts 127.0.0.1,localhost,10.0.0.5`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, _ []string) error { return o.run(g) }),
	}
	f := cmd.Flags()
	f.StringVar(&o.dir, "dir", "", "directory to write the files to (created when missing); required")
	f.StringVar(&o.hosts, "hosts", "127.0.0.1,localhost,::1", "IPs and DNS names the certificates are valid for, comma-separated")
	f.IntVar(&o.nodes, "nodes", 1, fmt.Sprintf("how many node certificates to make, node1 to nodeN (at most %d)", certsMaxNodes))
	return cmd
}

// pkiFile is one certificate and key to write.
type pkiFile struct {
	name string // base name: name.crt, name.key
	tmpl *x509.Certificate
}

func (o *certsOptions) run(g *globals) error {
	if o.dir == "" {
		return invalid("--dir is required: give the directory to write the certificates to, such as ./tls")
	}
	if o.nodes < 1 || o.nodes > certsMaxNodes {
		return invalid("--nodes %d is out of bounds: give 1 to %d", o.nodes, certsMaxNodes)
	}
	var ips []net.IP
	var names []string
	for _, h := range splitList(o.hosts) {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else {
			names = append(names, h)
		}
	}
	if len(ips)+len(names) == 0 {
		return invalid("--hosts is empty: give the IPs and names the nodes and clients are reached at, such as 127.0.0.1,localhost")
	}
	files := []string{"ca.crt", "ca.key", "client.crt", "client.key"}
	for i := 1; i <= o.nodes; i++ {
		files = append(files, fmt.Sprintf("node%d.crt", i), fmt.Sprintf("node%d.key", i))
	}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(o.dir, f)); err == nil {
			return messages.Errorf(messages.StatusReason_ALREADY_EXISTS, "%s exists already: kstore certs overwrites nothing; pick an empty --dir, or delete the old files", filepath.Join(o.dir, f))
		} else if !errors.Is(err, fs.ErrNotExist) {
			return messages.Errorf(messages.StatusReason_INVALID, "cannot check %s: %v", filepath.Join(o.dir, f), err)
		}
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return messages.Errorf(messages.StatusReason_INVALID, "cannot create --dir %s: %v", o.dir, err)
	}

	now := time.Now().Add(-5 * time.Minute) // a little slack for clocks a bit behind
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	ca := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "kstore CA", Organization: []string{"kstore"}},
		NotBefore:             now,
		NotAfter:              now.Add(certsCAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := o.write("ca", ca, ca, caKey, caKey)
	if err != nil {
		return err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	leaf := func(cn string, ou []string) *x509.Certificate {
		return &x509.Certificate{
			Subject:     pkix.Name{CommonName: cn, Organization: []string{"kstore"}, OrganizationalUnit: ou},
			NotBefore:   now,
			NotAfter:    now.Add(certsLeafValidity),
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			IPAddresses: ips,
			DNSNames:    names,
		}
	}
	leaves := []pkiFile{{name: "client", tmpl: leaf("kstore-client", nil)}}
	for i := 1; i <= o.nodes; i++ {
		leaves = append(leaves, pkiFile{name: fmt.Sprintf("node%d", i), tmpl: leaf(fmt.Sprintf("kstore-node%d", i), []string{actors.PeerOU})})
	}
	for _, l := range leaves {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		if _, err := o.write(l.name, l.tmpl, caCert, key, caKey); err != nil {
			return err
		}
	}

	dir := o.dir
	fmt.Fprintf(g.out, "wrote to %s:\n", dir)
	for _, f := range files {
		fmt.Fprintf(g.out, "  %s\n", f)
	}
	p := func(f string) string { return filepath.Join(dir, f) }
	fmt.Fprintf(g.out, "\nvalid for %s. Start a TLS node, then call it:\n\n", o.hosts)
	fmt.Fprintf(g.out, "  kstore serve --cert-file %s --key-file %s --peer-cert-file %s --peer-key-file %s --trusted-ca-file %s --peer-trusted-ca-file %s --client-cert-auth\n",
		p("node1.crt"), p("node1.key"), p("node1.crt"), p("node1.key"), p("ca.crt"), p("ca.crt"))
	fmt.Fprintf(g.out, "  kstore status --cacert %s --cert %s --key %s\n", p("ca.crt"), p("client.crt"), p("client.key"))
	fmt.Fprintf(g.out, "\nkstore member add/promote/remove need a peer certificate: --cert %s --key %s\n", p("node1.crt"), p("node1.key"))
	return nil
}

// write signs tmpl with the parent's key and writes name.crt (0644) and name.key (0600),
// returning the certificate's DER.
func (o *certsOptions) write(name string, tmpl, parent *x509.Certificate, key, parentKey *ecdsa.PrivateKey) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, messages.Errorf(messages.StatusReason_INTERNAL, "cannot sign %s: %v", name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := writeNew(filepath.Join(o.dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	if err := writeNew(filepath.Join(o.dir, name+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, err
	}
	return der, nil
}

// writeNew writes a file that must not exist yet, with mode perm.
func writeNew(path string, b []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return messages.Errorf(messages.StatusReason_INVALID, "cannot write %s: %v", path, err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return messages.Errorf(messages.StatusReason_INTERNAL, "cannot write %s: %v", path, strings.TrimSpace(err.Error()))
	}
	return nil
}
