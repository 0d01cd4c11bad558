package patch

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// parsePointer splits an RFC 6901 JSON pointer into its reference tokens, unescaped: "" is the
// whole document (no tokens), "/a~1b/~0" is ["a/b", "~"]. It refuses a pointer that does not
// start with '/' and a '~' not followed by 0 or 1, which the RFC's grammar excludes (json-patch
// accepts both: it reads "a/b" as "/b" and keeps "~2" as it is).
func parsePointer(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	if p[0] != '/' {
		return nil, fmt.Errorf("%s is not a JSON pointer: it must be empty (the whole document) or start with '/', such as /metadata/labels/app", showPointer(p))
	}
	tokens := strings.Split(p[1:], "/")
	for i, t := range tokens {
		if !strings.Contains(t, "~") {
			continue
		}
		for j := 0; j < len(t); j++ {
			if t[j] == '~' && (j+1 == len(t) || t[j+1] != '0' && t[j+1] != '1') {
				return nil, fmt.Errorf("%s is not a JSON pointer: '~' must be followed by 0 or 1 (write ~0 for '~' and ~1 for '/')", showPointer(p))
			}
		}
		tokens[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return tokens, nil
}

// formatPointer is the pointer of tokens, escaped.
func formatPointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1"))
	}
	return b.String()
}

// showPointer is a pointer as an error message shows it: as written, `""` when empty, quoted
// when it holds characters that would not print plainly, its first 100 bytes when longer.
func showPointer(p string) string {
	if p == "" {
		return `""`
	}
	long := ""
	if len(p) > maxShown {
		cut := maxShown
		for cut > 0 && !utf8.RuneStart(p[cut]) {
			cut--
		}
		long = fmt.Sprintf("... (%d bytes)", len(p))
		p = p[:cut]
	}
	for _, r := range p {
		if !unicode.IsPrint(r) || r == ' ' {
			return strconv.Quote(p) + long
		}
	}
	return p + long
}

// maxShown is the most of a pointer an error message shows.
const maxShown = 100

// arrayIndex reads token as an index into an array of length n, per RFC 6901 and 6902: digits
// without leading zeros or sign (json-patch also takes "01", "+1" and "-0"); "-" and n itself
// (the position after the last element) only when end is set, for add. at is the array's
// pointer, formatted for the message only when there is one.
func arrayIndex(token string, n int, end bool, at []string) (int, error) {
	if token == "-" {
		if end {
			return n, nil
		}
		return 0, fmt.Errorf("path does not exist: - names the position after the last element of %s, which only add (and the path of move and copy) may use", showTokens(at))
	}
	if !isIndex(token) {
		return 0, fmt.Errorf("path does not exist: %q is not an index into the array %s: use 0, 1, 2 and so on, without leading zeros or signs (or - to append with add)", token, showTokens(at))
	}
	i, err := strconv.Atoi(token)
	if err != nil || i > n || i == n && !end {
		if end {
			return 0, fmt.Errorf("index %s is past the end of the array %s, which has %d elements: add at 0 to %d, or at - to append", token, showTokens(at), n, n)
		}
		return 0, fmt.Errorf("path does not exist: index %s is past the end of the array %s, which has %d elements", token, showTokens(at), n)
	}
	return i, nil
}

// showTokens is showPointer of the pointer of tokens; the document itself when there are none.
func showTokens(tokens []string) string {
	if len(tokens) == 0 {
		return "(the document)"
	}
	return showPointer(formatPointer(tokens))
}

func isIndex(t string) bool {
	if t == "" || t[0] == '0' && len(t) > 1 {
		return false
	}
	for i := 0; i < len(t); i++ {
		if t[i] < '0' || t[i] > '9' {
			return false
		}
	}
	return true
}

// isPrefix reports whether a is a proper prefix of b.
func isPrefix(a, b []string) bool {
	if len(a) >= len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
