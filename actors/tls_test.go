package actors

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA is a CA made for a test, writing its certificates as PEM files in dir.
type testCA struct {
	t    *testing.T
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // ca.crt
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{t: t, dir: t.TempDir(), cert: cert, key: key}
	ca.file = ca.write(name+"-ca.crt", "CERTIFICATE", der)
	return ca
}

func (ca *testCA) write(name, typ string, der []byte) string {
	ca.t.Helper()
	path := filepath.Join(ca.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		ca.t.Fatal(err)
	}
	return path
}

// leaf issues a certificate for 127.0.0.1 with the OUs given, valid from notBefore to notAfter,
// and returns its certificate and key files.
func (ca *testCA) leaf(name string, ou []string, notBefore, notAfter time.Time) (certFile, keyFile string) {
	ca.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		ca.t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:   pkix.Name{CommonName: name, OrganizationalUnit: ou},
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	return ca.write(name+".crt", "CERTIFICATE", der), ca.write(name+".key", "PRIVATE KEY", kder)
}

func (ca *testCA) valid(name string, ou ...string) (string, string) {
	return ca.leaf(name, ou, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
}

func TestTLSCheckRefusesPartialSets(t *testing.T) {
	full := TLS{CertFile: "c", KeyFile: "k", TrustedCAFile: "ca", ClientCertAuth: true,
		PeerCertFile: "pc", PeerKeyFile: "pk", PeerTrustedCAFile: "pca"}
	tests := []struct {
		name    string
		give    func(*TLS)
		node    bool
		wantErr string // "" for none
	}{
		{"a node's full set", func(*TLS) {}, true, ""},
		{"a node's cert without key", func(c *TLS) { c.KeyFile = "" }, true, "--cert-file is given without --key-file"},
		{"a node's key without cert", func(c *TLS) { c.CertFile = "" }, true, "--key-file is given without --cert-file"},
		{"client-cert-auth without a trusted CA", func(c *TLS) { c.TrustedCAFile = "" }, true, "--client-cert-auth is given without --trusted-ca-file"},
		{"no client-cert-auth, no trusted CA", func(c *TLS) { c.TrustedCAFile, c.ClientCertAuth = "", false }, true, ""},
		{"peer files without the node's certificate", func(c *TLS) { c.CertFile, c.KeyFile = "", "" }, true, "without --cert-file and --key-file"},
		{"no peer certificate", func(c *TLS) { c.PeerCertFile, c.PeerKeyFile = "", "" }, true, "without --peer-cert-file"},
		{"a peer key without its certificate", func(c *TLS) { c.PeerCertFile = "" }, true, "--peer-key-file is given without --peer-cert-file"},
		{"no peer CA", func(c *TLS) { c.PeerTrustedCAFile = "" }, true, "--peer-trusted-ca-file is missing"},
		{"a client's full set", func(c *TLS) { *c = TLS{CertFile: "c", KeyFile: "k", TrustedCAFile: "ca"} }, false, ""},
		{"a client with --cacert only", func(c *TLS) { *c = TLS{TrustedCAFile: "ca"} }, false, "a client needs a certificate"},
		{"a client without --cacert", func(c *TLS) { *c = TLS{CertFile: "c", KeyFile: "k"} }, false, "without --cacert"},
		{"a client's cert without key", func(c *TLS) { *c = TLS{CertFile: "c", TrustedCAFile: "ca"} }, false, "without its key (--key)"},
		{"a client with peer files", func(c *TLS) {}, false, "peer certificates are a node's"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := full
			tt.give(&c)
			err := c.Check(tt.node)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Check(%v) = %v, want nil", tt.node, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Check(%v) = %v, want an error saying %q", tt.node, err, tt.wantErr)
			}
		})
	}
}

func TestTLSLoadNamesTheFile(t *testing.T) {
	ca := newTestCA(t, "kstore")
	cert, key := ca.valid("node", PeerOU)
	expiredCert, expiredKey := ca.leaf("old", []string{PeerOU}, time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour))
	missing := filepath.Join(t.TempDir(), "nothing.crt")
	tests := []struct {
		name    string
		give    TLS
		wantErr string
	}{
		{"loads", TLS{CertFile: cert, KeyFile: key, PeerCertFile: cert, PeerKeyFile: key, PeerTrustedCAFile: ca.file}, ""},
		{"a missing certificate", TLS{CertFile: missing, KeyFile: key, PeerCertFile: cert, PeerKeyFile: key, PeerTrustedCAFile: ca.file}, missing},
		{"a key of another certificate", TLS{CertFile: cert, KeyFile: expiredKey, PeerCertFile: cert, PeerKeyFile: key, PeerTrustedCAFile: ca.file}, "does not match"},
		{"an expired certificate", TLS{CertFile: expiredCert, KeyFile: expiredKey, PeerCertFile: cert, PeerKeyFile: key, PeerTrustedCAFile: ca.file}, expiredCert + " expired on"},
		{"a CA file that is a key", TLS{CertFile: cert, KeyFile: key, PeerCertFile: cert, PeerKeyFile: key, PeerTrustedCAFile: key}, key + " holds no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.give.load(true)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("load = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("load = %v, want an error saying %q", err, tt.wantErr)
			}
		})
	}
}

// TestTLSHandshakeAndPeerIdentity runs handshakes against a node's listener configuration:
// who gets in with --client-cert-auth, and who the guard then takes for a peer.
func TestTLSHandshakeAndPeerIdentity(t *testing.T) {
	peerCA, clientCA := newTestCA(t, "peers"), newTestCA(t, "clients")
	// Another CA under the clients' CA's name: Go's client sends only a certificate whose issuer
	// the server names as acceptable, so an impostor's is what reaches the verification.
	otherCA := newTestCA(t, "clients")
	nodeCert, nodeKey := peerCA.valid("node", PeerOU)
	setup, err := (&TLS{CertFile: nodeCert, KeyFile: nodeKey, TrustedCAFile: clientCA.file, ClientCertAuth: true,
		PeerCertFile: nodeCert, PeerKeyFile: nodeKey, PeerTrustedCAFile: peerCA.file}).load(true)
	if err != nil {
		t.Fatal(err)
	}
	type certFiles struct{ cert, key string }
	files := func(c, k string) *certFiles { return &certFiles{c, k} }
	tests := []struct {
		name     string
		client   *certFiles // nil: no certificate
		wantErr  string     // the server's handshake error; "" to get in
		wantPeer bool
	}{
		{"a peer", files(peerCA.valid("peer2", PeerOU)), "", true},
		{"a client", files(clientCA.valid("client")), "", false},
		{"the peer OU signed by the clients' CA", files(clientCA.valid("sly", PeerOU)), "", false},
		{"a peer CA certificate without the OU", files(peerCA.valid("nou", "other")), "", false},
		{"no certificate", nil, "client didn't provide a certificate", false},
		{"another CA", files(otherCA.valid("stranger", PeerOU)), "unknown authority", false},
		{"an expired client certificate", files(clientCA.leaf("late", nil, time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour))), "expired", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &tls.Config{RootCAs: setup.dial.RootCAs, ServerName: "127.0.0.1"}
			if tt.client != nil {
				pair, err := tls.LoadX509KeyPair(tt.client.cert, tt.client.key)
				if err != nil {
					t.Fatal(err)
				}
				cfg.Certificates = []tls.Certificate{pair}
			}
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			done := make(chan struct{})
			go func() { // the client's side; its errors are the server's verdict seen from afar
				defer close(done)
				c, err := tls.Dial("tcp", l.Addr().String(), cfg)
				if err != nil {
					return
				}
				_, _ = c.Read(make([]byte, 1)) // TLS 1.3: the server's verdict comes after the client's Finished
				c.Close()
			}()
			raw, err := l.Accept()
			if err != nil {
				t.Fatal(err)
			}
			server := tls.Server(raw, setup.server)
			_ = server.SetDeadline(time.Now().Add(10 * time.Second))
			err = server.Handshake()
			if err == nil {
				_, _ = server.Write([]byte{1})
			}
			server.Close()
			<-done
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("handshake refused: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("handshake: %v, want refused with %q", err, tt.wantErr)
			case tt.wantErr != "":
				return
			}
			if peer, subject := peerIdentity(setup.peerRoots, server.ConnectionState()); peer != tt.wantPeer || subject == "" {
				t.Errorf("peerIdentity = %v, %q; want peer %v and a subject", peer, subject, tt.wantPeer)
			}
		})
	}
}
