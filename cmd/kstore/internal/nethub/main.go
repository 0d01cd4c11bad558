package nethub

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The environment of Main.
const (
	EnvPorts = "KSTORE_NETHUB_PORTS" // Config.Ports, comma-separated: "a,b,c"; required
	EnvDelay = "KSTORE_NETHUB_DELAY" // Config.Delay as a Go duration: "200ms"; default 0
	EnvLoss  = "KSTORE_NETHUB_LOSS"  // Config.Loss: "0.1"; default 0
	EnvSeed  = "KSTORE_NETHUB_SEED"  // Config.Seed: "42"; default 0
)

// ReadyLine is the line Main writes on stderr once every port's socket is bound.
const ReadyLine = "nethub ready"

// Main runs a Hub as a program, in the current network namespace, and exits the process: with
// status 0 when stdin ends or on SIGTERM or SIGINT, with 1 (and the error on stderr) if the
// configuration is wrong or a socket fails. It never returns.
//
// A test binary runs it in a hub namespace by re-executing itself: exec.Command("ip",
// "netns", "exec", HUBNS, exe) where exe is os.Executable() (not the words /proc/self/exe,
// which ip would take for itself), with an environment variable of its own that tells its
// TestMain to call Main before testing.M.Run (not a test function: under go test's
// -test.paniconexit0, Main's os.Exit(0) panics there). ip execs the program in place, so
// the process started is the hub, and SIGTERM reaches it.
//
// The configuration is in EnvPorts, EnvDelay, EnvLoss and EnvSeed. Main writes ReadyLine on
// stderr once every port's socket is bound, then reads commands on stdin, one a line, and
// answers each with one line on stderr:
//
//	delay 200ms   ->  nethub delay 200ms                             (SetDelay)
//	loss 0.1      ->  nethub loss 0.1                                (SetLoss)
//	stats         ->  nethub stats received=N forwarded=N lost=N ... (Stats.String)
//	anything else ->  nethub error: what was wrong and what to give instead
//
// A change applies to the frames the hub reads once its answer is written, which may include
// frames that arrived before and waited in a socket's buffer (see Hub.SetDelay); to apply it
// to frames sent before, wait until stats counts them received. Give Main a pipe as stdin
// and keep it open while the hub is to run: with stdin from /dev/null it stops at once.
// Lines on stderr that do not begin with "nethub " are not answers (a panic, a race report).
func Main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err := serve(ctx, os.Getenv, os.Stdin, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// serve runs a Hub configured by getenv, and the commands read from in, until in ends or ctx
// ends. The goroutine that reads in ends when in does, and serve does not wait for it: Main
// exits the process.
func serve(ctx context.Context, getenv func(string) string, in io.Reader, out io.Writer) error {
	cfg, err := configFromEnv(getenv)
	if err != nil {
		return err
	}
	h, err := New(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	fmt.Fprintln(out, ReadyLine)

	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
		close(lines) // at the end of in, or on a read error: both end the hub
	}()
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				cancel()
				return <-done
			}
			fmt.Fprintln(out, h.command(line))
		case err := <-done: // ctx ended, or a socket failed
			return err
		}
	}
}

func configFromEnv(getenv func(string) string) (Config, error) {
	var cfg Config
	if v := getenv(EnvPorts); v != "" {
		for _, name := range strings.Split(v, ",") {
			cfg.Ports = append(cfg.Ports, strings.TrimSpace(name))
		}
	}
	if v := getenv(EnvDelay); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return Config{}, fmt.Errorf("nethub: %s=%q: %w; give a Go duration such as 200ms", EnvDelay, v, err)
		}
		cfg.Delay = d
	}
	if v := getenv(EnvLoss); v != "" {
		p, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return Config{}, fmt.Errorf("nethub: %s=%q: %w; give a probability such as 0.1", EnvLoss, v, err)
		}
		cfg.Loss = p
	}
	if v := getenv(EnvSeed); v != "" {
		s, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return Config{}, fmt.Errorf("nethub: %s=%q: %w; give an integer", EnvSeed, v, err)
		}
		cfg.Seed = s
	}
	if err := cfg.validate(); err != nil {
		return Config{}, fmt.Errorf("%w (from %s, %s, %s)", err, EnvPorts, EnvDelay, EnvLoss)
	}
	return cfg, nil
}

// command carries out one command line of Main and returns its answer.
func (h *Hub) command(line string) string {
	verb, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
	arg = strings.TrimSpace(arg)
	var err error
	switch verb {
	case "delay":
		var d time.Duration
		if d, err = time.ParseDuration(arg); err == nil {
			if err = h.SetDelay(d); err == nil {
				return "nethub delay " + d.String()
			}
		}
	case "loss":
		var p float64
		if p, err = strconv.ParseFloat(arg, 64); err == nil {
			if err = h.SetLoss(p); err == nil {
				return "nethub loss " + strconv.FormatFloat(p, 'g', -1, 64)
			}
		}
	case "stats":
		if arg == "" {
			return "nethub stats " + h.Stats().String()
		}
		err = fmt.Errorf("stats takes no argument, got %q", arg)
	default:
		err = fmt.Errorf("unknown command %q; give \"delay 200ms\", \"loss 0.1\" or \"stats\"", line)
	}
	return "nethub error: " + strings.TrimPrefix(err.Error(), "nethub: ")
}
