package selector

import (
	"fmt"
	"strings"
)

// Limits on label keys and values, as Kubernetes validates them (k8s.io/apimachinery
// util/validation); they are part of the API, not tunables.
const (
	maxNameLen   = 63  // name part of a key, and a value: a DNS label's length
	maxPrefixLen = 253 // optional prefix of a key: a DNS subdomain's length
)

const nameRule = "letters, digits, '-', '_' and '.', starting and ending with a letter or digit"

// checkKey returns what is wrong with label key k, or "" when k is a Kubernetes qualified
// name: an optional DNS subdomain prefix and '/', then a name.
func checkKey(k string) string {
	name := k
	if prefix, rest, ok := strings.Cut(k, "/"); ok {
		name = rest
		switch {
		case strings.Contains(rest, "/"):
			return "a key has at most one '/', between an optional DNS subdomain prefix and the name (e.g. \"example.com/name\")"
		case prefix == "":
			return "the prefix before '/' is empty"
		case len(prefix) > maxPrefixLen:
			return fmt.Sprintf("the prefix before '/' is %d characters long; at most %d are allowed", len(prefix), maxPrefixLen)
		case !isDNSSubdomain(prefix):
			return fmt.Sprintf("the prefix %q must be a DNS subdomain: lowercase letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit (e.g. \"example.com\")", prefix)
		}
	}
	switch {
	case name == "":
		return "the name after '/' is empty"
	case len(name) > maxNameLen:
		return fmt.Sprintf("the name is %d characters long; at most %d are allowed", len(name), maxNameLen)
	case !isName(name):
		return "the name must consist of " + nameRule
	}
	return ""
}

// checkValue returns what is wrong with label value v, or "" when v is a valid label value
// (possibly empty).
func checkValue(v string) string {
	switch {
	case len(v) > maxNameLen:
		return fmt.Sprintf("a label value is at most %d characters long; this one has %d", maxNameLen, len(v))
	case v != "" && !isName(v):
		return "a label value must be empty or consist of " + nameRule
	}
	return ""
}

// isName reports whether s matches ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9].
func isName(s string) bool {
	if s == "" || !isAlnum(s[0]) || !isAlnum(s[len(s)-1]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

// isDNSSubdomain reports whether s is dot-separated labels matching [a-z0-9]([-a-z0-9]*[a-z0-9])?.
func isDNSSubdomain(s string) bool {
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || !isLowerAlnum(label[0]) || !isLowerAlnum(label[len(label)-1]) {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isLowerAlnum(c) && c != '-' {
				return false
			}
		}
	}
	return true
}

func isAlnum(c byte) bool { return isLowerAlnum(c) || 'A' <= c && c <= 'Z' }

func isLowerAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }
