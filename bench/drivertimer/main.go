// Command drivertimer times warm polls the way the Secrets Store CSI driver makes them, for
// the bench's side-by-side passes (`python -m bench --compare-go-spacings-ms 250`).
//
// The bench's own client is grpcio from Python; the driver is Go. This program calls each
// provider through the driver's own plugin client builder (its dial options, authority and
// retrying service config) and the driver's generated v1alpha1 client, so a pass measures
// what the driver waits for. It does not write the files (the driver's atomic writer is not
// provider time).
//
// Protocol, for bench/go_timer.py. Input, one JSON document on stdin:
//
//	{"socket_dir": "/tmp/bench-x", "warmup": 3, "polls": 300, "spacing_ms": 250,
//	 "timeout_seconds": 60,
//	 "sides": [{"provider": "vault", "attributes": "{...}", "secrets": "null",
//	            "target_path": "/var/lib/...", "permission": "420"}, {...}]}
//
// Each side's provider name is its socket's file name in socket_dir, without ".sock". The
// program dials both, calls Version and the warm-up Mounts (spacing_ms apart), prints
// "ready" and waits for a line on stdin (the bench samples each provider's CPU then); it
// then sends polls rounds, round i to side 0 then 1 when i is even and the other way round
// when odd, spacing_ms between any two Mounts, and prints one JSON document:
//
//	{"sides": [{"starts": [...], "ends": [...], "errors": 0, "error": ""}, ...]}
//
// starts and ends are CLOCK_MONOTONIC seconds, Python's perf_counter clock on Linux. A Mount
// counts as an error when the call fails or the answer has no object versions (what the
// driver's MountContent refuses). Exit status: 0 done, 2 bad input or no connection.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	secretsstore "sigs.k8s.io/secrets-store-csi-driver/pkg/secrets-store"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"
)

// The driver's default receive limit (its --max-call-recv-msg-size).
const maxRecvMsgSize = 4 * 1024 * 1024

type side struct {
	Provider   string `json:"provider"`
	Attributes string `json:"attributes"`
	Secrets    string `json:"secrets"`
	TargetPath string `json:"target_path"`
	Permission string `json:"permission"`
}

type input struct {
	SocketDir      string  `json:"socket_dir"`
	Warmup         int     `json:"warmup"`
	Polls          int     `json:"polls"`
	SpacingMS      float64 `json:"spacing_ms"`
	TimeoutSeconds float64 `json:"timeout_seconds"`
	Sides          []side  `json:"sides"`
}

type timings struct {
	Starts []float64 `json:"starts"`
	Ends   []float64 `json:"ends"`
	Errors int       `json:"errors"`
	Error  string    `json:"error"`
}

type output struct {
	Sides []*timings `json:"sides"`
}

func main() {
	stdin := bufio.NewReader(os.Stdin)
	var in input
	decoder := json.NewDecoder(stdin)
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&in); err != nil {
		fail("reading the input: %v", err)
	}
	if len(in.Sides) != 2 || in.SocketDir == "" || in.Polls < 0 || in.SpacingMS < 0 {
		fail("the input needs socket_dir, two sides, polls >= 0 and spacing_ms >= 0")
	}
	builder := secretsstore.NewPluginClientBuilder(
		[]string{in.SocketDir},
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvMsgSize)),
	)
	defer builder.Cleanup()

	timeout := time.Duration(in.TimeoutSeconds * float64(time.Second))
	spacing := time.Duration(in.SpacingMS * float64(time.Millisecond))
	clients := make([]v1alpha1.CSIDriverProviderClient, len(in.Sides))
	for i, s := range in.Sides {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		client, err := builder.Get(ctx, s.Provider)
		if err == nil {
			_, err = secretsstore.Version(ctx, client)
		}
		cancel()
		if err != nil {
			fail("provider %q: %v", s.Provider, err)
		}
		clients[i] = client
	}

	out := output{Sides: []*timings{{}, {}}}
	for i := range in.Sides {
		for n := 0; n < in.Warmup; n++ {
			poll(clients[i], in.Sides[i], timeout, &timings{})
			time.Sleep(spacing)
		}
	}
	fmt.Println("ready")
	if _, err := stdin.ReadString('\n'); err != nil {
		fail("waiting for the go-ahead: %v", err)
	}
	for round := 0; round < in.Polls; round++ {
		order := []int{0, 1}
		if round%2 == 1 {
			order = []int{1, 0}
		}
		for _, i := range order {
			poll(clients[i], in.Sides[i], timeout, out.Sides[i])
			time.Sleep(spacing)
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail("writing the timings: %v", err)
	}
}

// poll sends one Mount and records when it went and when its answer was in.
func poll(client v1alpha1.CSIDriverProviderClient, s side, timeout time.Duration, into *timings) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	request := &v1alpha1.MountRequest{
		Attributes: s.Attributes, Secrets: s.Secrets, TargetPath: s.TargetPath, Permission: s.Permission,
	}
	start := monotonic()
	response, err := client.Mount(ctx, request)
	end := monotonic()
	if err == nil && len(response.GetObjectVersion()) == 0 {
		err = fmt.Errorf("the answer has no object versions")
	}
	if err != nil {
		into.Errors++
		if into.Error == "" {
			into.Error = err.Error()
		}
		return
	}
	into.Starts = append(into.Starts, start)
	into.Ends = append(into.Ends, end)
}

// monotonic is CLOCK_MONOTONIC in seconds: the clock of Python's time.perf_counter on Linux,
// so the bench can set these times against its proxy's records.
func monotonic() float64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err)
	}
	return float64(ts.Sec) + float64(ts.Nsec)/1e9
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "drivertimer: "+format+"\n", args...)
	os.Exit(2)
}
