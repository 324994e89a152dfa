// Command driverclient mounts one volume through a provider with the Secrets Store
// CSI driver's own client code, for the conformance tests of the Python provider.
//
// It does what the driver's node server does for a NodePublishVolume once the
// SecretProviderClass is resolved: build the plugin client with the dial options of
// the driver's main (4 MiB receive limit unless told otherwise), get the client for
// the provider by name from the socket directories, and call secretsstore.MountContent,
// which sends the request, judges the response and writes the files with the driver's
// atomic writer into the target directory. It calls secretsstore.Version first, as the
// driver's health check does.
//
// Input, as JSON on stdin or in the file named by the only argument:
//
//	{"socket_dirs": ["/run/providers"], "provider": "vault",
//	 "attributes": "{...}", "secrets": "null", "target_path": "/tmp/volume",
//	 "permission": "420", "old_object_versions": {"id": "v"},
//	 "timeout_seconds": 30, "max_call_recv_msg_size": 4194304}
//
// socket_dirs, attributes and target_path are required. Output, as JSON on stdout:
//
//	{"runtime_version": "0.1.0", "versions": {"id": "v"},
//	 "error_code": "", "grpc_code": "OK", "error": ""}
//
// error_code is the driver's internal reason (the metrics label) MountContent
// returns; grpc_code is the canonical name of the call's status code (UNKNOWN for
// the driver's own errors); error is the error text the driver wraps into the
// pod's FailedMount event. Exit status: 0 mounted, 1 the mount failed, 2 bad input.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	drivererrors "sigs.k8s.io/secrets-store-csi-driver/pkg/errors"
	secretsstore "sigs.k8s.io/secrets-store-csi-driver/pkg/secrets-store"
)

// The defaults of the driver's flags and of its node server.
const (
	defaultProvider       = "vault"
	defaultPermission     = "420" // json.Marshal(os.FileMode(0644))
	defaultMaxRecvMsgSize = 4 * 1024 * 1024
	defaultTimeoutSeconds = 120 // kubelet's NodePublishVolume deadline
	versionTimeout        = 5 * time.Second
)

type request struct {
	SocketDirs         []string          `json:"socket_dirs"`
	Provider           string            `json:"provider"`
	Attributes         string            `json:"attributes"`
	Secrets            string            `json:"secrets"`
	TargetPath         string            `json:"target_path"`
	Permission         string            `json:"permission"`
	OldObjectVersions  map[string]string `json:"old_object_versions"`
	TimeoutSeconds     float64           `json:"timeout_seconds"`
	MaxCallRecvMsgSize int               `json:"max_call_recv_msg_size"`
}

type result struct {
	RuntimeVersion string            `json:"runtime_version"`
	Versions       map[string]string `json:"versions"`
	ErrorCode      string            `json:"error_code"`
	GRPCCode       string            `json:"grpc_code"`
	Error          string            `json:"error"`
}

func main() {
	req, err := readRequest(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "driverclient: %v\n", err)
		os.Exit(2)
	}
	res := run(req)
	out := json.NewEncoder(os.Stdout)
	if err := out.Encode(res); err != nil {
		fmt.Fprintf(os.Stderr, "driverclient: writing the result: %v\n", err)
		os.Exit(2)
	}
	if res.Error != "" {
		os.Exit(1)
	}
}

func readRequest(args []string) (request, error) {
	var input io.Reader = os.Stdin
	switch len(args) {
	case 0:
	case 1:
		file, err := os.Open(args[0])
		if err != nil {
			return request{}, err
		}
		defer file.Close()
		input = file
	default:
		return request{}, fmt.Errorf("usage: driverclient [request.json] (default: the request on stdin)")
	}
	decoder := json.NewDecoder(input)
	decoder.DisallowUnknownFields()
	req := request{
		Provider:           defaultProvider,
		Permission:         defaultPermission,
		TimeoutSeconds:     defaultTimeoutSeconds,
		MaxCallRecvMsgSize: defaultMaxRecvMsgSize,
	}
	if err := decoder.Decode(&req); err != nil {
		return request{}, fmt.Errorf("reading the request: %w", err)
	}
	if len(req.SocketDirs) == 0 || req.Attributes == "" || req.TargetPath == "" {
		return request{}, fmt.Errorf("the request needs socket_dirs, attributes and target_path")
	}
	if req.Secrets == "" {
		// The driver marshals a nil map of node-publish secrets.
		req.Secrets = "null"
	}
	return req, nil
}

func run(req request) result {
	res := result{Versions: map[string]string{}, GRPCCode: "OK"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(req.TimeoutSeconds*float64(time.Second)))
	defer cancel()

	// As the driver's main builds it; NewPluginClientBuilder adds the authority,
	// insecure credentials and the retrying service config itself.
	builder := secretsstore.NewPluginClientBuilder(
		req.SocketDirs,
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(req.MaxCallRecvMsgSize)),
	)
	defer builder.Cleanup()

	client, err := builder.Get(ctx, req.Provider)
	if err != nil {
		// No socket for the provider: the driver's own reason name for that.
		return failed(res, drivererrors.FailedToLookupProviderGRPCClient, err)
	}

	versionCtx, cancelVersion := context.WithTimeout(ctx, versionTimeout)
	res.RuntimeVersion, err = secretsstore.Version(versionCtx, client)
	cancelVersion()
	if err != nil {
		return failed(res, drivererrors.GRPCProviderError, err)
	}

	// The driver creates the target directory before it mounts a tmpfs on it.
	if err := os.MkdirAll(req.TargetPath, 0o750); err != nil {
		return failed(res, drivererrors.FailedToEnsureMountPoint, err)
	}

	versions, errorCode, err := secretsstore.MountContent(
		ctx, client, req.Attributes, req.Secrets, req.TargetPath, req.Permission, req.OldObjectVersions,
	)
	if err != nil {
		return failed(res, errorCode, err)
	}
	res.Versions = versions
	return res
}

func failed(res result, errorCode string, err error) result {
	res.ErrorCode = errorCode
	res.GRPCCode = codeName(status.Code(err))
	res.Error = err.Error()
	return res
}

// codeNames spell status codes as the gRPC specification and Python's grpc.StatusCode
// do ("PERMISSION_DENIED", "CANCELLED"), not as Go's Code.String() does.
var codeNames = map[codes.Code]string{
	codes.OK:                 "OK",
	codes.Canceled:           "CANCELLED",
	codes.Unknown:            "UNKNOWN",
	codes.InvalidArgument:    "INVALID_ARGUMENT",
	codes.DeadlineExceeded:   "DEADLINE_EXCEEDED",
	codes.NotFound:           "NOT_FOUND",
	codes.AlreadyExists:      "ALREADY_EXISTS",
	codes.PermissionDenied:   "PERMISSION_DENIED",
	codes.ResourceExhausted:  "RESOURCE_EXHAUSTED",
	codes.FailedPrecondition: "FAILED_PRECONDITION",
	codes.Aborted:            "ABORTED",
	codes.OutOfRange:         "OUT_OF_RANGE",
	codes.Unimplemented:      "UNIMPLEMENTED",
	codes.Internal:           "INTERNAL",
	codes.Unavailable:        "UNAVAILABLE",
	codes.DataLoss:           "DATA_LOSS",
	codes.Unauthenticated:    "UNAUTHENTICATED",
}

func codeName(code codes.Code) string {
	if name, ok := codeNames[code]; ok {
		return name
	}
	return code.String()
}
