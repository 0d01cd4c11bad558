package catalogactor

import (
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/kstore/kstore/messages"
)

// auditLine logs one applied command: the audit trail of serve --audit-log-path. The fields:
// rv (the Raft index that committed it, the resourceVersion of the change), op (the command:
// PUT, CREATE, UPDATE, PATCH, DELETE), reason (operator, controller, garbage_collector,
// admission, scheduler), key (group/version/kind/namespace/name) and, for a change, outcome
// (CREATED, REPLACED, PATCHED, DELETED, NO_OP) or, for a refusal, error (the Kubernetes reason
// name). The line is written on the applier goroutine, once per member, in commit order.
// The node's own log carries the same line at debug level (serve --log-level debug), so that an
// audit trail can be switched on without a file; a Check guards it, so at info it costs nothing.
func auditLine(log *zap.Logger, level zapcore.Level, cmd *messages.Command, idx uint64, res Result, err error) {
	ce := log.Check(level, "applied")
	if ce == nil {
		return
	}
	k := cmd.GetKey()
	fields := []zap.Field{
		zap.Uint64("rv", idx),
		zap.String("op", cmd.GetKind().String()),
		zap.String("reason", strings.ToLower(cmd.GetReason().String())),
		zap.String("key", k.GetGroup()+"/"+k.GetVersion()+"/"+k.GetKind()+"/"+k.GetNamespace()+"/"+k.GetName()),
	}
	if err != nil {
		fields = append(fields, zap.String("error", messages.StatusOf(err).GetReason().String()))
	} else {
		fields = append(fields, zap.String("outcome", res.Op.String()))
	}
	ce.Write(fields...)
}
