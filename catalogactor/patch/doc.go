// Package patch applies JSON merge patches (RFC 7386) and JSON patches (RFC 6902) for the
// catalog's state machine, in time linear in the document and the patch (a merge sorts an
// object whose keys arrive out of order), with a deterministic budget on the work of a JSON
// patch's operations; CheckMerge and CheckJSON admit patches before they are proposed.
//
// The package holds no state. Merge and JSON are pure functions of their bytes: no clocks, no
// randomness, no map iteration in anything they return, so every replica that applies a log
// entry gets the same bytes or the same error. The bounds (limits.go) are part of that contract.
//
// Both decode the document and the patch into a tree whose objects keep their members sorted
// (as the canonical JSON the store holds already is), apply the patch to the tree and encode it
// back as canonical JSON. json-patch v5, which this package replaces, searched an object's keys
// linearly on every set and re-parsed each nesting level, so its cost grew with the square of an
// object's size or of a document's depth (bench_test.go has the figures).
//
// # Differences from json-patch v5
//
// On every input both accept, the results are the same after object.Canonical (the
// differential and fuzz tests hold the package to that). The deliberate differences, tested in
// differences_test.go (the bounds in limits_test.go):
//
// Both patch types:
//   - Invalid UTF-8 is refused; json-patch turns it into U+FFFD. So is a \u escape of half a
//     UTF-16 surrogate pair (\ud800 alone), which object.Canonical refuses in an object put.
//   - Nesting deeper than MaxDepth (1000) is refused, in the document, the patch and the
//     result; json-patch allows encoding/json's 10000.
//   - A document or patch over object.MaxSize is refused (TooLarge).
//   - The document must be a JSON object; json-patch also patches arrays and, for a merge, any
//     value.
//   - The patch is checked before the document, so that JSON and Merge refuse what CheckJSON
//     and CheckMerge refuse, with the same error.
//
// Merge patch:
//   - The patch must be an object. json-patch returns a null, scalar or array patch as the result,
//     which the catalog refused anyway because it is not an object.
//   - Of duplicate keys, the last counts (as in encoding/json and object.Canonical). json-patch
//     does too, except in nulls it prunes: it writes {"a":1,"a":null}, landing on no object, as
//     {"a":null}.
//
// JSON patch:
//   - Pointers follow RFC 6901: a path must be "" or start with '/', and '~' must be followed by
//     0 or 1. json-patch reads "a/b" as "/b" and keeps "~2".
//   - Array indices follow RFC 6901: json-patch also takes "01", "+1" and "-0".
//   - The empty reference token is a member name: "/" is the member "" of the root, as RFC 6901
//     says. json-patch, looking a final "" up, finds the root document itself at the top and
//     nothing deeper down: its test of "/" compares the whole document, its test of null at
//     "/a/" passes, and its replace of "/" adds a member "" that was not there.
//   - path "" in move and copy replaces the whole document, as RFC 6902 says; json-patch adds a
//     member "" instead. remove of "" is refused; json-patch removes the member "" if any.
//   - In between operations the document may be any value, as RFC 6902 allows; json-patch
//     refuses a scalar other than null there. Only an object may be left at the end.
//   - move refuses a path inside from, as RFC 6902 says ("a location cannot be moved into one
//     of its children"); json-patch removes from first and then adds wherever path leads.
//   - copy from "" copies the document as patched so far; json-patch copies the document as it
//     was before the patch.
//   - test needs a value, compares numbers by value (1, 1.0 and 1e0 are equal, as RFC 6902 says;
//     json-patch compares them as written), and fails when the path does not exist. json-patch
//     treats a missing value as null and passes a test of null at a missing member; a null that
//     an add or replace wrote is unequal to null there; it panics comparing arrays that hold
//     null.
//   - MaxCopied counts add and replace values as well as copies; json-patch counts copies only.
//     Sizes are of this package's encoding, which may differ by a few bytes from json-patch's
//     (it escapes <, > and &).
//   - A null patch is refused; json-patch treats it as an empty patch. A result that is not an
//     object is refused here rather than by the caller.
//   - A patch of more than MaxOps operations, or one that spends MaxWork, is refused (TooLarge);
//     json-patch has neither bound.
package patch
