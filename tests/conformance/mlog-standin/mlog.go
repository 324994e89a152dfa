// Package mlog stands in for monis.app/mlog, which the Go module proxy here refuses
// (403: module host not permitted). The driver module is used exactly as published; this
// package provides just what it calls, with plain stderr output:
//
//   - the conformance harness links the driver's secrets-store package, which calls Fatal
//     on its own gRPC server's fatal path (never reached by the client and writer);
//   - the e2e suite builds the driver binary, whose main also calls Setup, Error and
//     ValidateAndSetKlogLevelAndFormatGlobally with FormatText or FormatJSON.
//
// It imports nothing, so adding it to a build never changes that build's module graph.
package mlog

import (
	"context"
	"fmt"
	"os"
)

// LogFormat names an output format; the stand-in writes klog's text in either case.
type LogFormat string

const (
	FormatText LogFormat = "text"
	FormatJSON LogFormat = "json"
)

// Fatal prints err and the key/value pairs, then exits with status 1.
func Fatal(err error, keysAndValues ...any) {
	fmt.Fprintln(os.Stderr, append([]any{err}, keysAndValues...)...)
	os.Exit(1)
}

// Error prints msg, err and the key/value pairs.
func Error(msg string, err error, keysAndValues ...any) {
	fmt.Fprintln(os.Stderr, append([]any{msg, err}, keysAndValues...)...)
}

// Setup returns the function main defers; there is nothing to flush.
func Setup() func() {
	return func() {}
}

// ValidateAndSetKlogLevelAndFormatGlobally accepts any level (the driver passes a klog.Level,
// already set by its -v flag) and format; klog keeps the configuration its flags gave it.
func ValidateAndSetKlogLevelAndFormatGlobally[Level any](ctx context.Context, level Level, format LogFormat) error {
	return nil
}
