package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// WriteAll writes a run's results.json, results.md and plots into dir, creating it, and
// returns the paths written. Plots the results hold no data for are not written.
func WriteAll(dir string, run Run) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	js, err := json.MarshalIndent(run, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("results.json: %w", err)
	}
	files := []plotFile{
		{"results.json", append(js, '\n')},
		{"results.md", []byte(Markdown(run))},
	}
	plots, err := renderPlots(run.Results)
	if err != nil {
		return nil, err
	}
	files = append(files, plots...)

	var paths []string
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := writeAtomic(path, f.data, 0o644); err != nil {
			return paths, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// ReplaceBetweenMarkers replaces the lines between the first line that is begin and the next
// line that is end (surrounding spaces ignored) with content, keeping both marker lines, so a
// README's hand-written text around the results survives a rerun.
func ReplaceBetweenMarkers(path, begin, end, content string) error {
	begin, end = strings.TrimSpace(begin), strings.TrimSpace(end)
	if begin == "" || end == "" {
		return errors.New("replace between markers: empty marker")
	}
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lines := strings.SplitAfter(string(old), "\n")
	b := markerLine(lines, begin, 0)
	if b < 0 {
		return fmt.Errorf("%s: no line %q", path, begin)
	}
	e := markerLine(lines, end, b+1)
	if e < 0 {
		return fmt.Errorf("%s: no line %q after %q", path, end, begin)
	}
	if content != "" && !strings.HasSuffix(content, "\n") {
		content += "\n"
	}
	var out strings.Builder
	out.WriteString(strings.Join(lines[:b+1], ""))
	out.WriteString(content)
	out.WriteString(strings.Join(lines[e:], ""))

	mode := fs.FileMode(0o644)
	if info, err := os.Stat(path); err == nil {
		mode = info.Mode().Perm()
	}
	return writeAtomic(path, []byte(out.String()), mode)
}

func markerLine(lines []string, marker string, from int) int {
	for i := from; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) == marker {
			return i
		}
	}
	return -1
}

// writeAtomic writes to a temporary file in the same directory and renames it over path, so a
// reader (or a crash) never sees half a file.
func writeAtomic(path string, data []byte, mode fs.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), mode); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
