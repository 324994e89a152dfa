// Package mlog stands in for monis.app/mlog, which the Go module proxy here refuses
// (403: module host not permitted). The driver's secrets-store package imports it for
// one call, mlog.Fatal, on its own gRPC server's fatal error path; the client and file
// writer the conformance harness drives never reach it. Only that call is provided.
package mlog

import (
	"fmt"
	"os"
)

// Fatal prints err and the key/value pairs, then exits with status 1.
func Fatal(err error, keysAndValues ...any) {
	fmt.Fprintln(os.Stderr, append([]any{err}, keysAndValues...)...)
	os.Exit(1)
}
