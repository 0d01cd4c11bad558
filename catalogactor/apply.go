package catalogactor

import (
	"bytes"
	"strconv"

	"github.com/kstore/kstore/catalogactor/object"
	"github.com/kstore/kstore/catalogactor/patch"
	"github.com/kstore/kstore/messages"
)

// Result is what applying one command did to the one key it names.
type Result struct {
	Op messages.ResourceOp
	// ResourceVersion is the index that committed the change; for a NoOp on a stored object, the
	// object's unchanged resourceVersion.
	ResourceVersion uint64
	// Object is the stored bytes after the change (CREATED, REPLACED, PATCHED, and NO_OP on a
	// stored object), or the last stored bytes (DELETED).
	Object []byte
}

// Apply is the catalog's state machine for one key: given the stored bytes of cmd's key before
// the entry (nil when absent), the command and the Raft index that committed it, it returns what
// the key holds after. It is pure and deterministic: the same arguments give the same bytes on
// every node, which is what lets every replica hold identical state. A returned error is an
// *messages.Error (NotFound, AlreadyExists, Conflict, Invalid, TooLarge) and means the key is
// unchanged; the index is consumed all the same.
//
// How the store writes a Result: CREATED, REPLACED and PATCHED store Object at index; DELETED
// removes the key at index; NO_OP writes nothing and emits no watch event.
func Apply(prev []byte, cmd *messages.Command, index uint64) (Result, error) {
	if err := admitted(cmd); err != nil {
		return Result{}, err
	}
	key := cmd.GetKey()
	switch cmd.GetKind() {
	case messages.CommandKind_PUT, messages.CommandKind_CREATE, messages.CommandKind_UPDATE:
		obj, err := object.ValidateCommitted(cmd.GetValue(), key)
		if err != nil {
			return Result{}, err
		}
		if prev == nil {
			if cmd.GetKind() == messages.CommandKind_UPDATE {
				return Result{}, notFound(key)
			}
			if obj.Meta("uid") == "" {
				obj.SetMeta("uid", cmd.GetStampUid())
			}
			if obj.Meta("creationTimestamp") == "" {
				obj.SetMeta("creationTimestamp", cmd.GetStampTime())
			}
			obj.SetResourceVersion(index)
			b, err := fits(obj.Bytes())
			if err != nil {
				return Result{}, err
			}
			return Result{Op: messages.ResourceOp_CREATED, ResourceVersion: index, Object: b}, nil
		}
		old, err := parseStored(prev)
		if err != nil {
			return Result{}, err
		}
		switch cmd.GetKind() {
		case messages.CommandKind_CREATE:
			return Result{}, messages.Errorf(messages.StatusReason_ALREADY_EXISTS,
				"%s already exists: use replace (update) or apply (put) to change it", object.FormatKey(key))
		case messages.CommandKind_UPDATE:
			if rv := obj.Meta("resourceVersion"); rv != "" && rv != old.Meta("resourceVersion") {
				return Result{}, conflict(key, rv, old)
			}
		}
		return replace(prev, old, obj, index, messages.ResourceOp_REPLACED)

	case messages.CommandKind_PATCH:
		if prev == nil {
			return Result{}, notFound(key)
		}
		old, err := parseStored(prev)
		if err != nil {
			return Result{}, err
		}
		if want := cmd.GetResourceVersion(); want != 0 && strconv.FormatUint(want, 10) != old.Meta("resourceVersion") {
			return Result{}, conflict(key, strconv.FormatUint(want, 10), old)
		}
		obj, err := applyPatch(prev, cmd)
		if err != nil {
			return Result{}, err
		}
		if err := immutable(old, obj); err != nil {
			return Result{}, err
		}
		// A resourceVersion the patch writes is a precondition, as in a Kubernetes patch.
		if err := object.ValidateRaw(obj, key); err != nil {
			return Result{}, err
		}
		if rv := obj.Meta("resourceVersion"); rv != "" && rv != old.Meta("resourceVersion") {
			return Result{}, conflict(key, rv, old)
		}
		return replace(prev, old, obj, index, messages.ResourceOp_PATCHED)

	case messages.CommandKind_DELETE:
		if prev == nil {
			return Result{Op: messages.ResourceOp_NO_OP, ResourceVersion: index}, nil
		}
		if want := cmd.GetResourceVersion(); want != 0 {
			old, err := parseStored(prev)
			if err != nil {
				return Result{}, err
			}
			if strconv.FormatUint(want, 10) != old.Meta("resourceVersion") {
				return Result{}, conflict(key, strconv.FormatUint(want, 10), old)
			}
		}
		return Result{Op: messages.ResourceOp_DELETED, ResourceVersion: index, Object: prev}, nil
	}
	return Result{}, messages.Errorf(messages.StatusReason_INVALID,
		"unknown command kind %v: use put, create, update, patch or delete", cmd.GetKind())
}

// admitted checks what admission guarantees of a command, beyond its value (which
// object.ValidateCommitted checks). An entry can reach the log without admission (a raft message
// forged by whoever reaches the port, a node of an older version), and what the store holds must
// not depend on that: the checks read the command alone, so every replica refuses the same
// entries, each consuming its index.
func admitted(cmd *messages.Command) error {
	if r := cmd.GetReason(); r == messages.Reason_REASON_UNSPECIFIED || messages.Reason_name[int32(r)] == "" {
		return messages.Errorf(messages.StatusReason_INVALID, "command in the log has no reason: admit commands through a node")
	}
	if n := len(cmd.GetRequestId()); n > messages.MaxRequestIDBytes {
		return messages.Errorf(messages.StatusReason_INVALID, "command in the log has a request_id of %d bytes, over the limit of %d: admit commands through a node", n, messages.MaxRequestIDBytes)
	}
	if err := object.ValidateKey(cmd.GetKey()); err != nil {
		return err
	}
	switch cmd.GetKind() {
	case messages.CommandKind_PUT, messages.CommandKind_CREATE:
		return object.ValidateStamps(cmd.GetStampUid(), cmd.GetStampTime())
	case messages.CommandKind_PATCH:
		if n := len(cmd.GetPatch()); n > object.MaxSize {
			return messages.Errorf(messages.StatusReason_TOO_LARGE, "patch is %d bytes, over the limit of %d bytes (1.5 MiB)", n, object.MaxSize)
		}
	}
	return nil
}

// replace stores obj in place of old. The fields the store owns (uid, creationTimestamp) keep
// their stored values, as a Kubernetes update keeps them; an object equal to the stored one
// apart from those is a NoOp and keeps its resourceVersion.
func replace(prev []byte, old, obj *object.Raw, index uint64, op messages.ResourceOp) (Result, error) {
	obj.SetMeta("uid", old.Meta("uid"))
	obj.SetMeta("creationTimestamp", old.Meta("creationTimestamp"))
	obj.SetMeta("resourceVersion", old.Meta("resourceVersion"))
	if b := obj.Bytes(); bytes.Equal(b, prev) {
		rv, _ := object.ParseResourceVersion(old.Meta("resourceVersion"))
		return Result{Op: messages.ResourceOp_NO_OP, ResourceVersion: rv, Object: prev}, nil
	}
	obj.SetResourceVersion(index)
	b, err := fits(obj.Bytes())
	if err != nil {
		return Result{}, err
	}
	return Result{Op: op, ResourceVersion: index, Object: b}, nil
}

// fits applies the size limit to what would be stored, metadata included: the one limit every
// read and write of the object is held to.
func fits(stored []byte) ([]byte, error) {
	if len(stored) > object.MaxSize {
		return nil, messages.Errorf(messages.StatusReason_TOO_LARGE,
			"object would be %d bytes as stored (with uid, creationTimestamp and resourceVersion), over the limit of %d bytes (1.5 MiB); store large data elsewhere and reference it", len(stored), object.MaxSize)
	}
	return stored, nil
}

func applyPatch(prev []byte, cmd *messages.Command) (*object.Raw, error) {
	var out []byte
	var err error
	switch cmd.GetPatchType() {
	case messages.PatchType_PATCH_TYPE_UNSPECIFIED, messages.PatchType_MERGE_PATCH:
		out, err = patch.Merge(prev, cmd.GetPatch())
	case messages.PatchType_JSON_PATCH:
		out, err = patch.JSON(prev, cmd.GetPatch())
	default:
		return nil, messages.Errorf(messages.StatusReason_INVALID,
			"unknown patch type %v: use merge (RFC 7386) or json (RFC 6902)", cmd.GetPatchType())
	}
	if err != nil {
		return nil, err
	}
	// The engine writes numbers as the patch wrote them; the store takes only those a float64
	// holds, which Canonical checks.
	c, err := object.Canonical(out)
	if messages.IsInvalid(err) {
		return nil, err // what the patch wrote the store does not take (bad UTF-8, a number too large)
	}
	if err != nil {
		return nil, messages.Errorf(messages.StatusReason_INVALID, "the patched document is not a JSON object: a patch must leave an object")
	}
	if len(c) > object.MaxSize {
		return nil, messages.Errorf(messages.StatusReason_TOO_LARGE,
			"patched object is %d bytes, over the limit of %d bytes (1.5 MiB)", len(c), object.MaxSize)
	}
	return object.ParseRaw(c)
}

// immutable refuses a patch that changes what names the object.
func immutable(old, obj *object.Raw) error {
	for _, f := range []struct{ field, was, is string }{
		{"apiVersion", old.APIVersion(), obj.APIVersion()},
		{"kind", old.Kind(), obj.Kind()},
		{"metadata.name", old.Meta("name"), obj.Meta("name")},
		{"metadata.namespace", old.Meta("namespace"), obj.Meta("namespace")},
	} {
		if f.was != f.is {
			return messages.Errorf(messages.StatusReason_INVALID,
				"a patch may not change %s (from %q to %q): create a new object instead", f.field, f.was, f.is)
		}
	}
	return nil
}

func parseStored(b []byte) (*object.Raw, error) {
	o, err := object.ParseRaw(b)
	if err != nil {
		return nil, messages.Errorf(messages.StatusReason_INTERNAL, "stored object does not decode: %v", err)
	}
	return o, nil
}

func notFound(key *messages.ResourceKey) error {
	return messages.Errorf(messages.StatusReason_NOT_FOUND, "%s not found", object.FormatKey(key))
}

func conflict(key *messages.ResourceKey, want string, stored *object.Raw) error {
	rv, _ := object.ParseResourceVersion(stored.Meta("resourceVersion"))
	e := messages.Errorf(messages.StatusReason_CONFLICT,
		"operation cannot be fulfilled on %s: the object has been modified (resourceVersion %s asked, %s stored); read it again and apply your changes to the latest version",
		object.FormatKey(key), want, stored.Meta("resourceVersion"))
	e.ResourceVersion = rv
	return e
}
