package cluster

import (
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"

	"github.com/kstore/kstore/messages"
)

// seedTimeout bounds the question to one seed.
const seedTimeout = 5 * time.Second

// seeded is a client's provider that learns the real one from kstore members: protoactor starts
// the client's remote before the provider, so StartClient can ask the seeds over it (one remote
// per process: a second one would race with the first on gRPC's global logger), then makes the
// provider the members use and hands over to it. A failure is kept in err and returned by
// start, since protoactor turns a provider's error into a panic.
type seeded struct {
	cfg   Config
	sys   *actor.ActorSystem
	inner protocluster.ClusterProvider
	err   error
}

func (s *seeded) StartMember(*protocluster.Cluster) error {
	return errors.New("cluster: a seeded provider is for clients")
}

func (s *seeded) StartClient(c *protocluster.Cluster) error {
	info, err := s.ask()
	if err == nil {
		cfg := Config{Name: info.GetName(), Provider: info.GetProvider(), Endpoints: info.GetEndpoints()}
		// The name the members gave: protoactor's providers read it from the cluster's config.
		c.Config.Name = cfg.Name
		s.inner, _, err = newProvider(s.sys, cfg, "", nil, false)
	}
	if err == nil {
		err = s.inner.StartClient(c)
	}
	s.err = err
	return nil
}

func (s *seeded) Shutdown(graceful bool) error {
	if s.inner == nil {
		return nil
	}
	return s.inner.Shutdown(graceful)
}

// ask asks the seeds in turn how to join their cluster.
func (s *seeded) ask() (*messages.ClusterInfo, error) {
	var errs []error
	for _, seed := range s.cfg.Seeds {
		res, err := s.sys.Root.RequestFuture(actor.NewPID(seed, s.cfg.NodeActor), &messages.ClusterInfoRequest{}, seedTimeout).Result()
		if err == nil {
			info, ok := res.(*messages.ClusterInfo)
			switch {
			case !ok:
				err = fmt.Errorf("unexpected answer %T", res)
			case info.GetStatus() != nil:
				err = info.GetStatus().Err()
			default:
				return info, nil
			}
		}
		errs = append(errs, fmt.Errorf("%s: %w", seed, err))
	}
	return nil, fmt.Errorf("cluster: no seed told how to join its actor cluster (are kstore members running at %v?): %w", s.cfg.Seeds, errors.Join(errs...))
}
