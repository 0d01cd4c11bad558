package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The README's tour, run as written. Its code block is read from README.md: each command runs
// through bash in a fresh directory, with the test's kstore first on PATH and
// $KSTORE_ENDPOINTS naming the test's node, and its output is compared with the comment after
// it (on the same line, or alone on the next one). In a comment "..." stands for anything;
// a comment that starts with "Error (" is the command's stderr, and the command must exit 1.
// A command whose comment ends in ", until Ctrl-C" streams: its first line is compared, then it
// gets SIGINT. `make build ...` is the test's own build, and `kstore serve &` the test's node
// (on a free port, with its data dir in the tour's directory, as the tour's ./kstore-data).

// tourStep is one command of the tour and what it must print.
type tourStep struct {
	line      int    // in README.md
	command   string // bash, heredocs included
	want      string // the comment; "" is not checked
	streaming bool
}

func (s tourStep) String() string { return fmt.Sprintf("README.md:%d: %s", s.line, s.command) }

// tourCommentAt is where a command's comment is split from it: two spaces or more, then "# ".
var tourCommentAt = regexp.MustCompile(`\s{2,}# `)

// readTour returns the steps of the README section titled heading: its first sh code block.
func readTour(t *testing.T, readme, heading string) []tourStep {
	t.Helper()
	lines := strings.Split(readme, "\n")
	start := -1
	for i, l := range lines {
		if l == heading {
			start = i
			break
		}
	}
	if start < 0 {
		t.Fatalf("README.md has no %q", heading)
	}
	for start < len(lines) && lines[start] != "```sh" {
		start++
	}
	var steps []tourStep
	for i := start + 1; i < len(lines); i++ {
		l := lines[i]
		if l == "```" {
			return steps
		}
		trimmed := strings.TrimSpace(l)
		switch {
		case trimmed == "":
			continue
		case strings.HasPrefix(trimmed, "# "):
			// A comment alone on its line belongs to the command above it.
			if len(steps) == 0 || steps[len(steps)-1].want != "" {
				t.Fatalf("README.md:%d: a comment that follows no command: %q", i+1, l)
			}
			steps[len(steps)-1].want = strings.TrimPrefix(trimmed, "# ")
			continue
		}
		s := tourStep{line: i + 1, command: l}
		if loc := tourCommentAt.FindStringIndex(l); loc != nil {
			s.command, s.want = l[:loc[0]], l[loc[1]:]
		}
		if strings.Contains(s.command, "<<'EOF'") {
			for i++; i < len(lines) && lines[i] != "EOF"; i++ {
				s.command += "\n" + lines[i]
			}
			s.command += "\nEOF"
		}
		if w, ok := strings.CutSuffix(s.want, ", until Ctrl-C"); ok {
			s.want, s.streaming = w, true
		}
		steps = append(steps, s)
	}
	t.Fatalf("README.md: the code block after %q does not end", heading)
	return nil
}

// tourPattern turns a comment into a regexp: "..." matches anything, the rest itself.
func tourPattern(want string) *regexp.Regexp {
	parts := strings.Split(want, "...")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(`(?s)^` + strings.Join(parts, ".*") + `$`)
}

func TestReadmeTour(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	steps := readTour(t, string(readme), "## A tour with the command line")
	if len(steps) < 10 {
		t.Fatalf("the tour has %d commands; the parser lost some", len(steps))
	}
	bin := kstoreBinary(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	env := append(os.Environ(), "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"),
		endpointsEnv+"="+addr, "GORACE=atexit_sleep_ms=0")
	served := false
	for _, s := range steps {
		switch {
		case strings.HasPrefix(s.command, "make build"):
			continue
		case strings.HasPrefix(s.command, "kstore serve &"):
			startServer(t, bin, filepath.Join(dir, "kstore-data"), addr)
			served = true
			continue
		case strings.HasPrefix(s.command, "rm -rf kstore-data"):
			continue // the tour's directory is new
		}
		if !served {
			t.Fatalf("%v: runs before the tour's `kstore serve &`", s)
		}
		if s.streaming {
			tourStream(t, s, dir, env)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
		cmd := exec.CommandContext(ctx, "bash", "-c", "set -o pipefail\n"+s.command)
		cmd.Dir, cmd.Env = dir, env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		cancel()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%v: %v", s, err)
		}
		got, wantCode := stdout.String(), 0
		if strings.HasPrefix(s.want, "Error (") {
			got, wantCode = stderr.String(), 1
		}
		if code != wantCode {
			t.Errorf("%v: exit %d, want %d\nstdout: %s\nstderr: %s", s, code, wantCode, stdout.String(), stderr.String())
			continue
		}
		if s.want == "" {
			continue
		}
		got = strings.TrimSuffix(got, "\n")
		if !tourPattern(s.want).MatchString(got) {
			t.Errorf("%v:\n got  %s\n want %s", s, got, s.want)
		}
	}
}

// tourStream runs a streaming command, compares its first line and interrupts it.
func tourStream(t *testing.T, s tourStep, dir string, env []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	// exec, so that the interrupt reaches kstore itself, not a shell waiting for it.
	cmd := exec.CommandContext(ctx, "bash", "-c", "exec "+s.command)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 4<<20)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		for sc.Scan() {
		}
	}()
	select {
	case got, ok := <-lines:
		if !ok {
			t.Errorf("%v: ended without a line\nstderr: %s", s, stderr.String())
		} else if !tourPattern(s.want).MatchString(got) {
			t.Errorf("%v:\n got  %s\n want %s", s, got, s.want)
		}
	case <-time.After(commandTimeout):
		t.Errorf("%v: no line within %v", s, commandTimeout)
	}
	_ = cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil && ctx.Err() != nil {
		t.Errorf("%v: did not stop on SIGINT: %v", s, err)
	}
}
