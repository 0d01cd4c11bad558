package actors

import (
	"crypto/rand"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/kstore/kstore/catalogactor/object"
	"github.com/kstore/kstore/catalogactor/patch"
	"github.com/kstore/kstore/messages"
)

// admit validates a command and returns the copy to propose: the value canonical (YAML becomes
// JSON, a missing namespace is filled from the key) and the stamps set that applying it may
// need. Bad input stops here, so it never enters the Raft log.
func admit(in *messages.Command, now time.Time) (*messages.Command, error) {
	if len(in.GetRequestId()) > messages.MaxRequestIDBytes {
		return nil, messages.Errorf(messages.StatusReason_INVALID,
			"request_id is %d bytes, over the limit of %d: use a short id such as a UUID", len(in.GetRequestId()), messages.MaxRequestIDBytes)
	}
	if _, ok := messages.Reason_name[int32(in.GetReason())]; !ok || in.GetReason() == messages.Reason_REASON_UNSPECIFIED {
		return nil, messages.Errorf(messages.StatusReason_INVALID,
			"command has no reason: give one of operator, controller, garbage_collector, admission, scheduler")
	}
	// Only the fields the kind uses go into the log; the stamps are the node's to set.
	cmd := &messages.Command{Kind: in.GetKind(), Key: in.GetKey(), Reason: in.GetReason(), RequestId: in.GetRequestId()}
	switch in.GetKind() {
	case messages.CommandKind_PUT, messages.CommandKind_CREATE, messages.CommandKind_UPDATE:
		obj, err := object.Prepare(in.GetValue(), in.GetKey())
		if err != nil {
			return nil, err
		}
		rv := obj.Meta("resourceVersion")
		if _, err := object.ParseResourceVersion(rv); err != nil {
			return nil, err
		}
		if in.GetKind() == messages.CommandKind_CREATE && rv != "" {
			return nil, messages.Errorf(messages.StatusReason_INVALID,
				"metadata.resourceVersion must not be set on create: remove it, or use replace (update) to change an existing object")
		}
		cmd.Value = obj.Bytes()
		if in.GetKind() != messages.CommandKind_UPDATE {
			cmd.StampUid = newUID()
			cmd.StampTime = now.UTC().Format(time.RFC3339)
		}
		if err := fitsStored(obj, cmd); err != nil {
			return nil, err
		}
	case messages.CommandKind_PATCH:
		if err := object.ValidateKey(in.GetKey()); err != nil {
			return nil, err
		}
		cmd.Patch, cmd.PatchType, cmd.ResourceVersion = in.GetPatch(), in.GetPatchType(), in.GetResourceVersion()
		if err := checkPatch(cmd); err != nil {
			return nil, err
		}
	case messages.CommandKind_DELETE:
		if err := object.ValidateKey(in.GetKey()); err != nil {
			return nil, err
		}
		cmd.ResourceVersion = in.GetResourceVersion()
	default:
		return nil, messages.Errorf(messages.StatusReason_INVALID, "command has no kind: use put, create, update, patch or delete")
	}
	return cmd, nil
}

// maxResourceVersion is the longest resourceVersion the store can write.
var maxResourceVersion = strconv.FormatUint(math.MaxUint64, 10)

// fitsStored refuses an object that would be over the size limit as stored: with the uid and
// creationTimestamp a create adds, and a resourceVersion of any length. The catalog applies the
// same limit to the bytes it stores (for an update, whose uid comes from the stored object, that
// is the only check that can be exact), so an object that is accepted can always be read and
// written back.
func fitsStored(obj *object.Raw, cmd *messages.Command) error {
	if obj.Meta("uid") == "" && cmd.GetStampUid() != "" {
		obj.SetMeta("uid", cmd.GetStampUid())
	}
	if obj.Meta("creationTimestamp") == "" && cmd.GetStampTime() != "" {
		obj.SetMeta("creationTimestamp", cmd.GetStampTime())
	}
	obj.SetMeta("resourceVersion", maxResourceVersion)
	if n := len(obj.Bytes()); n > object.MaxSize {
		return messages.Errorf(messages.StatusReason_TOO_LARGE,
			"object is %d bytes with the metadata the store adds (uid, creationTimestamp, resourceVersion), over the limit of %d bytes (1.5 MiB); store large data elsewhere and reference it", n, object.MaxSize)
	}
	return nil
}

func checkPatch(cmd *messages.Command) error {
	p := cmd.GetPatch()
	if len(p) > object.MaxSize {
		return messages.Errorf(messages.StatusReason_TOO_LARGE, "patch is %d bytes, over the limit of %d bytes (1.5 MiB)", len(p), object.MaxSize)
	}
	switch cmd.GetPatchType() {
	case messages.PatchType_PATCH_TYPE_UNSPECIFIED, messages.PatchType_MERGE_PATCH:
		if err := patch.CheckMerge(p); err != nil {
			return err
		}
		// Canonical, so that applying it on every replica need not sort its keys.
		c, err := object.Canonical(p)
		if err != nil {
			return err
		}
		cmd.Patch, cmd.PatchType = c, messages.PatchType_MERGE_PATCH
	case messages.PatchType_JSON_PATCH:
		return patch.CheckJSON(p)
	default:
		return messages.Errorf(messages.StatusReason_INVALID, "unknown patch type %v: use merge (RFC 7386) or json (RFC 6902)", cmd.GetPatchType())
	}
	return nil
}

// newUID returns a random (version 4) UUID, as Kubernetes gives objects.
func newUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
