package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/kstore/kstore/catalogactor/object"
	"github.com/kstore/kstore/messages"
)

// piece is one object of a file, as JSON, and where it was found.
type piece struct {
	// where is "document 2 (line 14)", "object 3", "item 1", "object 2, item 1"... and empty
	// when the file holds one object: what an error message names after the file.
	where string
	data  []byte
}

// splitObjects returns the objects a file holds, in order. A file is either
//
//   - JSON (it starts with '{' or '['): one object or several one after another, or
//   - YAML: one document or several separated by "---" lines; empty documents are skipped.
//
// and any object whose kind ends in "List" and that has an "items" array (kind List, PodList...)
// stands for its items. A JSON array is refused: give a stream of objects or a List. The objects
// are not checked beyond being JSON objects; see readInputs.
func splitObjects(data []byte) ([]piece, error) {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, nil
	}
	if trimmed[0] == '{' || trimmed[0] == '[' {
		return splitJSON(trimmed)
	}
	return splitYAML(data)
}

func splitJSON(data []byte) ([]piece, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var raws []json.RawMessage
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			break
		}
		if err != nil {
			where := ""
			if len(raws) > 0 {
				where = fmt.Sprintf("object %d", len(raws)+1)
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, located(where, "not valid JSON: it ends in the middle of an object")
			}
			return nil, located(where, "not valid JSON: %v", err)
		}
		raws = append(raws, raw)
	}
	var out []piece
	for i, raw := range raws {
		where := ""
		if len(raws) > 1 {
			where = fmt.Sprintf("object %d", i+1)
		}
		ps, err := expand(where, raw)
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	return out, nil
}

// splitYAML splits on document separators: a line that is "---", maybe followed by spaces and
// a comment (as Kubernetes' YAML reader does), and converts each document to JSON.
func splitYAML(data []byte) ([]piece, error) {
	type doc struct {
		line int // where the document starts, 1-based
		text []byte
	}
	docs := []doc{{line: 1}}
	lineNo := 0
	for len(data) > 0 {
		lineNo++
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i+1], data[i+1:]
		} else {
			data = nil
		}
		if isSeparator(line) {
			docs = append(docs, doc{line: lineNo + 1})
			continue
		}
		docs[len(docs)-1].text = append(docs[len(docs)-1].text, line...)
	}
	// Documents holding only space and comments are not objects: leave them out before
	// numbering, so "document N" counts what a reader sees as documents.
	var kept []doc
	for _, d := range docs {
		if !blankYAML(d.text) {
			kept = append(kept, d)
		}
	}
	var out []piece
	for i, d := range kept {
		where := ""
		if len(kept) > 1 {
			where = fmt.Sprintf("document %d (line %d)", i+1, d.line)
		}
		j, err := yaml.YAMLToJSON(d.text)
		if err != nil {
			return nil, located(where, "not valid YAML: %s", strings.TrimPrefix(err.Error(), "error converting YAML to JSON: "))
		}
		if bytes.Equal(bytes.TrimSpace(j), []byte("null")) {
			continue
		}
		ps, err := expand(where, j)
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	return out, nil
}

func isSeparator(line []byte) bool {
	rest, ok := bytes.CutPrefix(line, []byte("---"))
	if !ok {
		return false
	}
	rest = bytes.TrimSpace(rest)
	return len(rest) == 0 || rest[0] == '#'
}

// blankYAML reports whether a YAML document holds nothing but space, comments and directives.
func blankYAML(b []byte) bool {
	for _, l := range bytes.Split(b, []byte("\n")) {
		l = bytes.TrimSpace(l)
		if len(l) > 0 && l[0] != '#' && l[0] != '%' {
			return false
		}
	}
	return true
}

// expand returns the object raw holds, or the items of a list.
func expand(where string, raw []byte) ([]piece, error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) > 0 && raw[0] == '[':
		return nil, located(where, `a JSON array is not an object: give objects one after another, or a {"kind":"List","items":[...]}`)
	case len(raw) == 0 || raw[0] != '{':
		return nil, located(where, "not an object but %s: give an object with apiVersion, kind and metadata.name", describeJSON(raw))
	}
	var list struct {
		Kind  any             `json:"kind"`
		Items json.RawMessage `json:"items"`
	}
	// An object that does not decode this way is not a list; validation says what is wrong.
	if json.Unmarshal(raw, &list) != nil {
		return []piece{{where, raw}}, nil
	}
	kind, _ := list.Kind.(string)
	items := bytes.TrimSpace(list.Items)
	if !strings.HasSuffix(kind, "List") || len(items) == 0 || items[0] != '[' {
		return []piece{{where, raw}}, nil
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(items, &elems); err != nil {
		return nil, located(where, "the %s's items are not valid JSON: %v", kind, err)
	}
	out := make([]piece, 0, len(elems))
	for i, e := range elems {
		w := fmt.Sprintf("item %d", i+1)
		if where != "" {
			w = where + ", " + w
		}
		e = bytes.TrimSpace(e)
		if len(e) == 0 || e[0] != '{' {
			return nil, located(w, "not an object but %s: a %s's items are objects", describeJSON(e), kind)
		}
		out = append(out, piece{w, e})
	}
	return out, nil
}

func describeJSON(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	}
	return "a number"
}

// located is an Invalid error that names where in a file it was found.
func located(where, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if where != "" {
		msg = where + ": " + msg
	}
	return invalid("%s", msg)
}

// input is one object to write: checked as the node will check it, in canonical JSON.
type input struct {
	where string // file and place in it, for messages
	key   *messages.ResourceKey
	value []byte
}

// readInputs reads every object of the files ("-" is stdin), in order, and checks each as the
// node will (object.Prepare), so that a file with a bad object anywhere is refused before
// anything is sent. Problems are Invalid (or TooLarge), naming the file and the place in it.
func readInputs(files []string, stdin io.Reader) ([]input, error) {
	pieces, err := readPieces(files, stdin)
	if err != nil {
		return nil, err
	}
	out := make([]input, 0, len(pieces))
	for _, p := range pieces {
		// The node's own admission (object.Prepare), with the key the object names.
		key, err := object.KeyOf(p.data)
		var r *object.Raw
		if err == nil {
			r, err = object.Prepare(p.data, key)
		}
		if err != nil {
			return nil, prefixed(p.where, err)
		}
		out = append(out, input{where: p.where, key: key, value: r.Bytes()})
	}
	return out, nil
}

// readKeys returns the keys the objects of the files name, in order, for get -f and delete -f:
// apiVersion, kind, metadata.namespace and metadata.name, each checked as the node checks a
// key. Nothing else of an object is checked: what it would write is not what is asked. Every
// object is read before anything is sent; problems are Invalid, naming the file and the place.
func readKeys(files []string, stdin io.Reader) ([]*messages.ResourceKey, error) {
	pieces, err := readPieces(files, stdin)
	if err != nil {
		return nil, err
	}
	out := make([]*messages.ResourceKey, 0, len(pieces))
	for _, p := range pieces {
		key, err := object.KeyOf(p.data)
		if err == nil {
			err = object.ValidateKey(key)
		}
		if err != nil {
			return nil, prefixed(p.where, err)
		}
		out = append(out, key)
	}
	return out, nil
}

// readPieces reads the objects of the files ("-" is stdin), in order, each with where it was
// found: the file's name (stdin for -), then its place in the file. A file that cannot be read,
// does not parse or holds no object is Invalid.
func readPieces(files []string, stdin io.Reader) ([]piece, error) {
	if len(files) == 0 {
		return nil, invalid("no file: give -f FILE, or -f - for stdin")
	}
	stdins := 0
	for _, f := range files {
		if f == "-" {
			stdins++
		}
	}
	if stdins > 1 {
		return nil, invalid("-f - is given %d times: stdin can be read once", stdins)
	}
	var out []piece
	for _, f := range files {
		name := f
		var data []byte
		var err error
		if f == "-" {
			name = "stdin"
			data, err = io.ReadAll(stdin)
		} else {
			data, err = os.ReadFile(f)
		}
		if err != nil {
			return nil, invalid("cannot read %s: %v", f, unwrapPath(err))
		}
		pieces, err := splitObjects(data)
		if err != nil {
			return nil, prefixed(name, err)
		}
		if len(pieces) == 0 {
			return nil, invalid("%s holds no object: give a JSON or YAML object with apiVersion, kind and metadata.name", name)
		}
		for _, p := range pieces {
			where := name
			if p.where != "" {
				where += ", " + p.where
			}
			out = append(out, piece{where: where, data: p.data})
		}
	}
	return out, nil
}

// prefixed puts where in front of err's message, keeping its reason.
func prefixed(where string, err error) error {
	reason := messages.ReasonOf(err)
	if reason == messages.StatusReason_INTERNAL {
		reason = messages.StatusReason_INVALID
	}
	return messages.Errorf(reason, "%s: %s", where, message(err))
}

// unwrapPath drops the path an *os.PathError repeats: "open x: no such file" becomes "no such
// file", as the message names the file already.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
