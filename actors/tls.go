package actors

// This file holds mutual TLS on protoactor remote: the files a system is given, the tls.Config
// of its listener and of its dialler, and how the guard tells a peer's connection from a
// client's by the certificate the connection presented.
//
// protoactor remote has no connection per peer pair: each system dials the others and sends on
// its own outgoing connections, and answers come back over connections the answering system
// opens to the asker's listener. So every process is a TLS server and a TLS client:
//   - a node listens with CertFile and takes, on its one listener, clients' certificates signed
//     by TrustedCAFile and peers' signed by PeerTrustedCAFile; it dials (peers, and the clients
//     it answers) presenting PeerCertFile;
//   - a client process listens with its own CertFile (so a client certificate must be usable
//     as a server certificate too), takes only connections presenting a certificate signed by
//     TrustedCAFile (its --cacert), and dials presenting the same CertFile.
//
// Hostname verification is Go's standard one, on both sides of every dial: the certificate of
// the system dialled must name, in its subject alternative names, the host of the address
// dialled, which is the host its PIDs carry (a node's advertised address, a client's listen
// IP). A node's certificate therefore names its advertised host; a client's names the IP it
// listens on (127.0.0.1 on loopback). kstore certs --hosts puts the same names in both.

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/credentials"
)

// PeerOU is the Organizational Unit that makes a certificate a peer's: a connection is a
// member's when its certificate chains to the peer trusted CA and carries this OU. Anything
// else (no certificate, another CA, no OU) is a client, which may not send Raft messages,
// snapshot chunks, member handshakes, forwarded writes or membership changes.
const PeerOU = "kstore-peer"

// TLS names the files of mutual TLS on a system's remote. Zero: no TLS. Fields are etcd's flags.
type TLS struct {
	// CertFile and KeyFile: the certificate (PEM, leaf first, then intermediates) and key this
	// system listens with (--cert-file, --key-file; a client's --cert, --key). A client
	// process also presents it when it dials.
	CertFile, KeyFile string
	// TrustedCAFile: the CAs (PEM) that sign clients' certificates (--trusted-ca-file); for a
	// client process, the CAs that sign the nodes' certificates (--cacert).
	TrustedCAFile string
	// ClientCertAuth refuses, at the handshake, a connection without a certificate signed by
	// TrustedCAFile or PeerTrustedCAFile (--client-cert-auth). Without it a node takes clients
	// without certificates too (they still cannot send peer traffic).
	ClientCertAuth bool
	// PeerCertFile and PeerKeyFile: the certificate and key a node presents when it dials, to
	// peers and to the clients it answers (--peer-cert-file, --peer-key-file): it carries
	// PeerOU. A node only.
	PeerCertFile, PeerKeyFile string
	// PeerTrustedCAFile: the CAs that sign peers' certificates (--peer-trusted-ca-file). A
	// node only.
	PeerTrustedCAFile string
}

// enabled reports whether any TLS setting is given.
func (t *TLS) enabled() bool { return t != nil && *t != (TLS{}) }

// tlsSetup is a loaded TLS: the listener's and the dialler's configurations, and the pool a
// peer's certificate must chain to (nil: no connection is a peer's).
type tlsSetup struct {
	server, dial *tls.Config
	peerRoots    *x509.CertPool
}

// Check refuses a partial set, naming the fields and their flags. node: the TLS of a node
// (Config.TLS), else of a client process (SystemOptions.TLS).
func (t *TLS) Check(node bool) error {
	pair := func(cert, key, certName, keyName string) error {
		switch {
		case cert != "" && key == "":
			return fmt.Errorf("actors: TLS: %s is given without %s: give the private key of the certificate too", certName, keyName)
		case cert == "" && key != "":
			return fmt.Errorf("actors: TLS: %s is given without %s: give the certificate of the key too", keyName, certName)
		}
		return nil
	}
	if !node {
		if err := pair(t.CertFile, t.KeyFile, "the certificate (--cert)", "its key (--key)"); err != nil {
			return err
		}
		switch {
		case t.PeerCertFile != "" || t.PeerKeyFile != "" || t.PeerTrustedCAFile != "":
			return errors.New("actors: TLS: peer certificates are a node's (Config.TLS): a client process presents CertFile")
		case t.CertFile == "":
			return errors.New("actors: TLS: a client needs a certificate (--cert, --key) as well as --cacert: a node sends its answers over a connection it opens to the client's own listener, which serves TLS with that certificate")
		case t.TrustedCAFile == "":
			return errors.New("actors: TLS: --cert is given without --cacert: give the CA that signed the nodes' certificates, to verify them")
		}
		return nil
	}
	if err := pair(t.CertFile, t.KeyFile, "--cert-file", "--key-file"); err != nil {
		return err
	}
	if err := pair(t.PeerCertFile, t.PeerKeyFile, "--peer-cert-file", "--peer-key-file"); err != nil {
		return err
	}
	switch {
	case t.CertFile == "":
		return errors.New("actors: TLS: TLS settings are given without --cert-file and --key-file: the node's one listener serves TLS with them; give them, or no TLS setting at all")
	case t.ClientCertAuth && t.TrustedCAFile == "":
		return errors.New("actors: TLS: --client-cert-auth is given without --trusted-ca-file: give the CA that signs the clients' certificates")
	case t.PeerCertFile == "":
		return errors.New("actors: TLS: --cert-file is given without --peer-cert-file and --peer-key-file: a node with TLS dials its peers and clients with its peer certificate (OU " + PeerOU + "); give them (kstore certs makes node certificates usable as both)")
	case t.PeerTrustedCAFile == "":
		return errors.New("actors: TLS: --peer-trusted-ca-file is missing: without it the node recognises no peer, and takes no Raft message; give the CA that signs the members' peer certificates")
	}
	return nil
}

// load checks t and reads its files.
func (t *TLS) load(node bool) (*tlsSetup, error) {
	if err := t.Check(node); err != nil {
		return nil, err
	}
	cert, err := loadKeyPair(t.CertFile, t.KeyFile, "certificate")
	if err != nil {
		return nil, err
	}
	trusted, err := loadPool(nil, t.TrustedCAFile, "trusted CA")
	if err != nil {
		return nil, err
	}
	s := &tlsSetup{}
	if !node {
		// A client's listener takes only the nodes it asked (their peer certificates chain to
		// the CA it trusts); it dials with the same certificate.
		s.server = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert},
			ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: trusted}
		s.dial = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, RootCAs: trusted}
		return s, nil
	}
	peerCert, err := loadKeyPair(t.PeerCertFile, t.PeerKeyFile, "peer certificate")
	if err != nil {
		return nil, err
	}
	if s.peerRoots, err = loadPool(nil, t.PeerTrustedCAFile, "peer trusted CA"); err != nil {
		return nil, err
	}
	// One listener: clients' and peers' CAs both sign acceptable certificates; which of the two
	// a connection is, the guard works out from the chain and the OU (peerIdentity).
	either, err := loadPool(x509.NewCertPool(), t.PeerTrustedCAFile, "peer trusted CA")
	if err != nil {
		return nil, err
	}
	if t.TrustedCAFile != "" {
		if _, err := loadPool(either, t.TrustedCAFile, "trusted CA"); err != nil {
			return nil, err
		}
	}
	auth := tls.VerifyClientCertIfGiven // a certificate given is checked; peers always give one
	if t.ClientCertAuth {
		auth = tls.RequireAndVerifyClientCert
	}
	s.server = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, ClientAuth: auth, ClientCAs: either}
	// The node dials peers (signed by the peer CA) and clients (whose certificates the client
	// CA signs): both are roots for it.
	s.dial = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{peerCert}, RootCAs: either}
	return s, nil
}

// loadKeyPair reads a certificate and its key, refusing one that is not valid now.
func loadKeyPair(certFile, keyFile, what string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return cert, fmt.Errorf("actors: TLS: cannot load the %s %s with the key %s: %w (give PEM files of a certificate and its own key, such as kstore certs writes)", what, certFile, keyFile, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return cert, fmt.Errorf("actors: TLS: the %s %s does not parse: %w", what, certFile, err)
		}
	}
	now := time.Now()
	switch {
	case now.After(leaf.NotAfter):
		return cert, fmt.Errorf("actors: TLS: the %s %s expired on %s: every peer and client would refuse it; make a new one", what, certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return cert, fmt.Errorf("actors: TLS: the %s %s is valid only from %s: check this machine's clock, or make a new one", what, certFile, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return cert, nil
}

// loadPool adds the PEM certificates of file to pool (a new one when nil); "" adds nothing and
// returns pool as it is.
func loadPool(pool *x509.CertPool, file, what string) (*x509.CertPool, error) {
	if file == "" {
		return pool, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("actors: TLS: cannot read the %s file: %w (give the CA certificate in PEM, such as kstore certs' ca.crt)", what, err)
	}
	if pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("actors: TLS: the %s file %s holds no PEM certificate: give the CA certificate in PEM, such as kstore certs' ca.crt", what, file)
	}
	return pool, nil
}

// peerIdentity says whether the certificates a TLS connection presented (the verified leaf
// first) are a peer's under the rule of PeerOU, and names the subject for the logs.
func peerIdentity(roots *x509.CertPool, state tls.ConnectionState) (peer bool, subject string) {
	certs := state.PeerCertificates
	if len(certs) == 0 {
		return false, "no certificate"
	}
	leaf := certs[0]
	subject = leaf.Subject.String()
	if roots == nil || len(state.VerifiedChains) == 0 || !slices.Contains(leaf.Subject.OrganizationalUnit, PeerOU) {
		return false, subject
	}
	// The handshake verified the chain against the union of both CAs; a peer's must reach the
	// peer CA.
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return err == nil, subject
}

// loggedCreds are the listener's TLS credentials, logging each refused handshake with the
// remote address (within the guard's sampled budget): gRPC alone only closes the connection.
type loggedCreds struct {
	credentials.TransportCredentials
	g *guard
}

func (c loggedCreds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := c.TransportCredentials.ServerHandshake(raw)
	if err != nil {
		n := c.g.refused.Add(1)
		if ce := c.g.log.Check(zap.WarnLevel, "refused a TLS handshake"); ce != nil {
			ce.Write(zap.String("peer", raw.RemoteAddr().String()), zap.Error(err), zap.Uint64("refused", n))
		}
	}
	return conn, info, err
}

func (c loggedCreds) Clone() credentials.TransportCredentials {
	return loggedCreds{TransportCredentials: c.TransportCredentials.Clone(), g: c.g}
}

// TLS reports whether the system serves and dials with TLS.
func (s *System) TLS() bool { return s.dialTLS != nil }
