package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	protocluster "github.com/asynkron/protoactor-go/cluster"
)

// healthTimeout bounds one poll of a member's health endpoint.
const healthTimeout = time.Second

// nodeModel is a member's answer on its health endpoint, in the JSON of protoactor's
// automanaged provider (clusterproviders/automanaged.NodeModel), so that either side can poll
// the other.
type nodeModel struct {
	ID             string   `json:"id"`
	Address        string   `json:"address"`
	AutoManagePort int      `json:"auto_manage_port"`
	Port           int      `json:"port"`
	Kinds          []string `json:"kinds"`
	ClusterName    string   `json:"cluster_name"`
}

// automanagedProvider is kstore's implementation of protoactor's automanaged provider: each
// member serves GET /_health, and every member and client polls the members' endpoints every
// refreshInterval and reports the members that answer as the cluster's topology.
//
// It differs from protoactor's own in when a member leaves the topology. protoactor blocks a
// member that left (remote.BlockList, by its actor system's id) and never lets it back into the
// topology (MemberList.getTopologyChanges), and its provider drops a member at the first poll
// that fails: a slow answer or a pause of a second would put a live member out of the cluster
// until it restarts, and the store identity could no longer be placed on it. This one drops a
// member only when its process is certainly gone: its endpoint refuses connections, or answers
// with another system id (it restarted). A member that does not answer in time stays; the
// client's lookup of the store identity refuses at once an owner that does not accept
// connections (actors/clusterclient.go). It also serves its endpoint on the --listen host, where
// protoactor's binds every interface, and stops its goroutines when the cluster stops.
type automanagedProvider struct {
	hosts    []string     // health endpoints to poll
	listener net.Listener // the member's own endpoint; nil for a client
	http     *http.Client

	c      *protocluster.Cluster
	server *http.Server
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once

	known map[string]*nodeModel // by health endpoint: the last answer; the poll goroutine's
}

func newAutomanaged(hosts []string, listener net.Listener) *automanagedProvider {
	return &automanagedProvider{
		hosts: hosts, listener: listener,
		http: &http.Client{Timeout: healthTimeout, Transport: &http.Transport{
			Proxy:               nil, // loopback and cluster addresses: never through a proxy
			DialContext:         (&net.Dialer{Timeout: healthTimeout}).DialContext,
			MaxIdleConnsPerHost: 1,
		}},
		stop: make(chan struct{}), done: make(chan struct{}),
		known: map[string]*nodeModel{},
	}
}

func (p *automanagedProvider) StartMember(c *protocluster.Cluster) error {
	if p.listener == nil {
		return errors.New("cluster: an automanaged member needs its health endpoint")
	}
	host, port, err := c.ActorSystem.GetHostPort()
	if err != nil {
		return err
	}
	self := &nodeModel{ID: c.ActorSystem.ID, Address: host, Port: port, AutoManagePort: p.listener.Addr().(*net.TCPAddr).Port,
		Kinds: c.GetClusterKinds(), ClusterName: c.Config.Name}
	answer, err := json.Marshal(self)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	})
	p.server = &http.Server{Handler: mux, ReadHeaderTimeout: healthTimeout}
	go func() { _ = p.server.Serve(p.listener) }() // ends when Shutdown closes the server
	p.start(c)
	return nil
}

func (p *automanagedProvider) StartClient(c *protocluster.Cluster) error {
	p.start(c)
	return nil
}

// start reports the first topology before the cluster's start returns, then polls on a
// goroutine Shutdown stops.
func (p *automanagedProvider) start(c *protocluster.Cluster) {
	p.c = c
	p.poll()
	go p.run()
}

// Shutdown stops the polls and the endpoint, and waits for the poll goroutine.
func (p *automanagedProvider) Shutdown(bool) error {
	p.once.Do(func() {
		close(p.stop)
		if p.c != nil {
			<-p.done
		}
		if p.server != nil {
			_ = p.server.Close()
		} else if p.listener != nil {
			_ = p.listener.Close()
		}
	})
	return nil
}

func (p *automanagedProvider) run() {
	defer close(p.done)
	t := time.NewTicker(refreshInterval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.poll()
		}
	}
}

// poll asks every endpoint at once and reports the topology.
func (p *automanagedProvider) poll() {
	type answer struct {
		host string
		node *nodeModel
		gone bool
	}
	answers := make(chan answer, len(p.hosts))
	for _, h := range p.hosts {
		go func() {
			node, err := p.ask(h)
			answers <- answer{host: h, node: node, gone: errors.Is(err, syscall.ECONNREFUSED)}
		}()
	}
	for range p.hosts {
		a := <-answers
		switch {
		case a.node != nil:
			p.known[a.host] = a.node
		case a.gone:
			delete(p.known, a.host)
		}
	}
	var members []*protocluster.Member
	for _, n := range p.known {
		if n.ClusterName != p.c.Config.Name {
			continue // another cluster's member at an address this one was given
		}
		members = append(members, &protocluster.Member{Id: n.ID, Host: n.Address, Port: int32(n.Port), Kinds: n.Kinds})
	}
	p.c.MemberList.UpdateClusterTopology(members)
}

func (p *automanagedProvider) ask(host string) (*nodeModel, error) {
	ctx, cancel := context.WithTimeout(context.Background(), healthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/_health", nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("cluster: health endpoint %s answered %s", host, resp.Status)
	}
	var n nodeModel
	if err := json.NewDecoder(resp.Body).Decode(&n); err != nil {
		return nil, fmt.Errorf("cluster: health endpoint %s: %w", host, err)
	}
	return &n, nil
}
