package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kstore/kstore/catalogactor/object"
	"github.com/kstore/kstore/messages"
)

// compact makes JSON comparable whatever its spacing.
func compact(t *testing.T, b []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("not JSON: %s: %v", b, err)
	}
	return buf.String()
}

func TestSplitObjects(t *testing.T) {
	type want struct{ where, json string }
	tests := []struct {
		name    string
		give    string
		want    []want
		wantErr string
	}{
		{
			name: "one JSON object",
			give: ` {"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}} `,
			want: []want{{"", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}}`}},
		},
		{
			name: "JSON stream",
			give: "{\"kind\":\"A\"}\n{\"kind\":\"B\"}{\"kind\":\"C\"}\n",
			want: []want{{"object 1", `{"kind":"A"}`}, {"object 2", `{"kind":"B"}`}, {"object 3", `{"kind":"C"}`}},
		},
		{
			name: "JSON List",
			give: `{"apiVersion":"v1","kind":"List","items":[{"kind":"A"},{"kind":"B"}]}`,
			want: []want{{"item 1", `{"kind":"A"}`}, {"item 2", `{"kind":"B"}`}},
		},
		{
			name: "typed list in a stream",
			give: `{"kind":"X"} {"apiVersion":"v1","kind":"PodList","items":[{"kind":"Pod"}]}`,
			want: []want{{"object 1", `{"kind":"X"}`}, {"object 2, item 1", `{"kind":"Pod"}`}},
		},
		{
			name: "empty List",
			give: `{"apiVersion":"v1","kind":"List","items":[]}`,
			want: nil,
		},
		{
			name: "List kind without items is an object",
			give: `{"apiVersion":"v1","kind":"List"}`,
			want: []want{{"", `{"apiVersion":"v1","kind":"List"}`}},
		},
		{
			name: "one YAML document",
			give: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n",
			want: []want{{"", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}}`}},
		},
		{
			name: "YAML documents, empty and comment-only ones skipped",
			give: "# header\n---\nkind: A\n---   # first real separator comment\n\n---\n# nothing here\n---\nkind: B\nx: |\n  ---indented is content\n...\n",
			want: []want{{"document 1 (line 3)", `{"kind":"A"}`}, {"document 2 (line 9)", `{"kind":"B","x":"---indented is content\n"}`}},
		},
		{
			name: "YAML List",
			give: "apiVersion: v1\nkind: List\nitems:\n- kind: A\n- kind: B\n",
			want: []want{{"item 1", `{"kind":"A"}`}, {"item 2", `{"kind":"B"}`}},
		},
		{
			name: "YAML with a byte order mark and CRLF",
			give: "\ufeffkind: A\r\n---\r\nkind: B\r\n",
			want: []want{{"document 1 (line 1)", `{"kind":"A"}`}, {"document 2 (line 3)", `{"kind":"B"}`}},
		},
		{name: "empty", give: " \n\t\n", want: nil},
		{name: "only comments", give: "# nothing\n---\n# still nothing\n", want: nil},

		{name: "JSON array", give: `[{"kind":"A"}]`, wantErr: "a JSON array is not an object"},
		{name: "JSON array in a stream", give: `{"kind":"A"} [1]`, wantErr: "object 2: a JSON array is not an object"},
		{name: "truncated JSON", give: `{"apiVersion":"v1","kind":`, wantErr: "not valid JSON: it ends in the middle of an object"},
		{name: "JSON followed by garbage", give: `{"kind":"A"} nope`, wantErr: "object 2: not valid JSON"},
		{name: "JSON scalar in a stream", give: `{"kind":"A"} 3`, wantErr: "object 2: not an object but a number"},
		{name: "bad YAML", give: "kind: A\n  b: c: d\n", wantErr: "not valid YAML: yaml: line 2"},
		{name: "bad YAML in the second document", give: "kind: A\n---\nkind: [\n", wantErr: "document 2 (line 3): not valid YAML"},
		{name: "YAML scalar", give: "just a string\n", wantErr: "not an object but a string"},
		{name: "YAML sequence", give: "- kind: A\n", wantErr: "a JSON array is not an object"},
		{name: "List item not an object", give: `{"kind":"List","items":[{"kind":"A"},"x"]}`, wantErr: "item 2: not an object but a string: a List's items are objects"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := splitObjects([]byte(tt.give))
			if tt.wantErr != "" {
				if !messages.IsInvalid(err) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("splitObjects(%q) = %d pieces, %v; want an Invalid error containing %q", tt.give, len(got), err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("splitObjects(%q): %v", tt.give, err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("splitObjects(%q) = %d pieces %q, want %d", tt.give, len(got), got, len(tt.want))
			}
			for i, p := range got {
				if p.where != tt.want[i].where || compact(t, p.data) != tt.want[i].json {
					t.Errorf("piece %d = %q %s, want %q %s", i, p.where, p.data, tt.want[i].where, tt.want[i].json)
				}
			}
		})
	}
}

func TestReadInputs(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: ns}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n")
	badSecond := write("bad.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name}\n")
	big := write("big.json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"x":"`+strings.Repeat("x", object.MaxSize)+`"}}`)
	empty := write("empty.yaml", "# nothing\n")

	t.Run("objects of every file in order, canonical", func(t *testing.T) {
		got, err := readInputs([]string{good, "-"}, strings.NewReader(`{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"ns"}}`))
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, in := range got {
			keys = append(keys, object.FormatKey(in.key)+" from "+in.where)
		}
		want := []string{
			`Pod.v1 "ns/a" from ` + good + `, document 1 (line 1)`,
			`Deployment.v1.apps "d" from ` + good + `, document 2 (line 5)`,
			`Namespace.v1 "ns" from stdin`,
		}
		if strings.Join(keys, "\n") != strings.Join(want, "\n") {
			t.Fatalf("got\n%s\nwant\n%s", strings.Join(keys, "\n"), strings.Join(want, "\n"))
		}
		if string(got[2].value) != `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"ns"}}` {
			t.Errorf("value not canonical: %s", got[2].value)
		}
	})

	tests := []struct {
		name       string
		files      []string
		stdin      string
		wantReason messages.StatusReason
		wantErr    string
	}{
		{name: "bad object anywhere refuses the file", files: []string{badSecond}, wantReason: messages.StatusReason_INVALID,
			wantErr: badSecond + `, document 2 (line 5): name "Bad_Name" is not valid`},
		{name: "missing apiVersion", files: []string{"-"}, stdin: `{"kind":"Pod","metadata":{"name":"a"}}`, wantReason: messages.StatusReason_INVALID,
			wantErr: "stdin: apiVersion is missing"},
		{name: "missing kind", files: []string{"-"}, stdin: `{"apiVersion":"v1","metadata":{"name":"a"}}`, wantReason: messages.StatusReason_INVALID,
			wantErr: "stdin: kind is missing"},
		{name: "missing name", files: []string{"-"}, stdin: "apiVersion: v1\nkind: Pod\nmetadata: {}\n", wantReason: messages.StatusReason_INVALID,
			wantErr: "stdin: metadata.name is missing"},
		{name: "too large", files: []string{big}, wantReason: messages.StatusReason_TOO_LARGE, wantErr: big + ": object is"},
		{name: "no object", files: []string{empty}, wantReason: messages.StatusReason_INVALID, wantErr: empty + " holds no object"},
		{name: "unreadable", files: []string{filepath.Join(dir, "missing")}, wantReason: messages.StatusReason_INVALID,
			wantErr: "cannot read " + filepath.Join(dir, "missing") + ": no such file or directory"},
		{name: "stdin twice", files: []string{"-", "-"}, wantReason: messages.StatusReason_INVALID, wantErr: "stdin can be read once"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readInputs(tt.files, strings.NewReader(tt.stdin))
			if messages.ReasonOf(err) != tt.wantReason || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("readInputs = %d inputs, %v; want %s containing %q", len(got), err, messages.ReasonName(tt.wantReason), tt.wantErr)
			}
		})
	}
}

func TestReadKeys(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A manifest as get -o yaml prints it, and one whose spec a write would refuse: only the
	// key is read.
	stored := write("stored.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: ns\n  resourceVersion: \"41\"\n  uid: 3b8f\n---\n"+
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, labels: {bad key!: x}}\n")
	big := write("big.json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"x":"`+strings.Repeat("x", object.MaxSize)+`"}}`)

	got, err := readKeys([]string{stored, big, "-"}, strings.NewReader(`{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"ns"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, k := range got {
		keys = append(keys, object.FormatKey(k))
	}
	want := []string{`Pod.v1 "ns/web"`, `Deployment.v1.apps "d"`, `ConfigMap.v1 "big"`, `Namespace.v1 "ns"`}
	if !slices.Equal(keys, want) {
		t.Fatalf("readKeys = %q, want %q", keys, want)
	}

	tests := []struct {
		name    string
		stdin   string
		wantErr string
	}{
		{name: "missing name", stdin: "apiVersion: v1\nkind: Pod\nmetadata: {namespace: ns}\n", wantErr: "stdin: name is missing"},
		{name: "bad name in the second document", stdin: "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name}\n",
			wantErr: `stdin, document 2 (line 5): name "Bad_Name" is not valid`},
		{name: "missing kind", stdin: `{"apiVersion":"v1","metadata":{"name":"a"}}`, wantErr: "stdin: kind is missing"},
		{name: "bad namespace", stdin: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"Bad_NS"}}`, wantErr: `stdin: namespace "Bad_NS" is not valid`},
		{name: "no object", stdin: "# nothing\n", wantErr: "stdin holds no object"},
		{name: "not an object", stdin: "[]", wantErr: "stdin: a JSON array is not an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readKeys([]string{"-"}, strings.NewReader(tt.stdin))
			if !messages.IsInvalid(err) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("readKeys = %v, %v; want an Invalid error containing %q", got, err, tt.wantErr)
			}
		})
	}
}
