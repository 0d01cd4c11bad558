package main

import (
	"strings"

	"github.com/spf13/pflag"

	"github.com/kstore/kstore/actors"
)

// tlsOptions are serve's TLS flags, etcd's names (actors.TLS).
type tlsOptions struct{ actors.TLS }

func (o *tlsOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.CertFile, "cert-file", "",
		"TLS: the node's certificate (PEM): its one listener serves clients and peers with it; its SANs must name the host of --advertise-address. Turns TLS on; needs --key-file, --peer-cert-file, --peer-key-file and --peer-trusted-ca-file")
	f.StringVar(&o.KeyFile, "key-file", "", "TLS: the private key (PEM) of --cert-file")
	f.StringVar(&o.TrustedCAFile, "trusted-ca-file", "", "TLS: the CA certificate (PEM) that signs clients' certificates")
	f.BoolVar(&o.ClientCertAuth, "client-cert-auth", false,
		"TLS: refuse at the handshake every client without a valid certificate signed by --trusted-ca-file (or --peer-trusted-ca-file); without it, clients without a certificate are served too")
	f.StringVar(&o.PeerCertFile, "peer-cert-file", "",
		"TLS: the certificate (PEM) the node presents when it connects to peers and to the clients it answers. A connection is a peer's when its certificate chains to --peer-trusted-ca-file and has the Organizational Unit \""+actors.PeerOU+"\"; only a peer's may send Raft messages, snapshots, member handshakes, forwarded writes and membership changes (kstore member add/promote/remove need a peer certificate)")
	f.StringVar(&o.PeerKeyFile, "peer-key-file", "", "TLS: the private key (PEM) of --peer-cert-file")
	f.StringVar(&o.PeerTrustedCAFile, "peer-trusted-ca-file", "", "TLS: the CA certificate (PEM) that signs the members' peer certificates")
}

// config is the node's TLS, nil when no TLS flag is given; a partial set is refused, with the
// flags to add.
func (o *tlsOptions) config() (*actors.TLS, error) {
	if o.TLS == (actors.TLS{}) {
		return nil, nil
	}
	t := o.TLS
	if err := t.Check(true); err != nil {
		return nil, invalid("%s", strings.TrimPrefix(err.Error(), "actors: "))
	}
	return &t, nil
}
