package clustertest

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollcall/rollcall/discovery"
)

// FloorPort is where floor responders listen: not the discovery port, so
// they can run beside the agents.
const FloorPort = 4749

// A Floor measures the raw UDP floor of a sweep: the same sweep rollcall
// runs (discovery.Sweep: the same probe, broadcaster, retransmission
// schedule, heard list and acknowledgements) against responders that
// answer each probe at once over UDP and do nothing else (package echo).
// It is what the network and the hosts' wake-ups cost on their own: a
// rollcall sweep's complete_ms is measured against it, in the same run.
type Floor struct {
	bin  string
	port int
}

// NewFloor builds the responder into a temporary directory.
func NewFloor(t testing.TB) *Floor {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("clustertest: go command not found: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "echo")
	out, err := exec.Command(gobin, "build", "-o", bin, "github.com/rollcall/rollcall/agent/clustertest/echo").CombinedOutput()
	if err != nil {
		t.Fatalf("clustertest: build the floor responder: %v\n%s", err, out)
	}
	return &Floor{bin: bin, port: FloorPort}
}

// floorMachine is the short machine id a host's responder answers with.
func floorMachine(h *Host) string { return fmt.Sprintf("%08x", h.Index+1) }

// Start starts a responder on each host and waits until all listen. They
// are killed at cleanup, or with their Procs.
func (f *Floor) Start(t testing.TB, hosts ...*Host) []*Proc {
	t.Helper()
	procs := make([]*Proc, len(hosts))
	for i, h := range hosts {
		procs[i] = h.Start(t, f.bin, "-port", fmt.Sprint(f.port), "-name", h.Name, "-machine", floorMachine(h))
	}
	for i, p := range procs {
		Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
			if p.Exited() {
				t.Fatalf("clustertest: %s: floor responder exited: %v\n%s", hosts[i].Name, p.err, p.Output())
			}
			if !strings.Contains(p.Output(), "ready") {
				return fmt.Errorf("%s: floor responder not listening yet", hosts[i].Name)
			}
			return nil
		})
	}
	return procs
}

// Sweep sweeps hosts' responders from the host from and returns the
// inventory: CompleteMS is the time from the first probe to the last
// answer, as in rollcall's sweep.
func (f *Floor) Sweep(ctx context.Context, from *Host, hosts []*Host, timeout time.Duration) (discovery.Inventory, error) {
	var bc *discovery.Broadcaster
	err := from.Do(func() (err error) {
		bc, err = discovery.NewBroadcaster(discovery.BroadcastConfig{Port: f.port})
		return err
	})
	if err != nil {
		return discovery.Inventory{}, fmt.Errorf("floor sweep from %s: %w", from.Name, err)
	}
	defer bc.Close()

	var b [8]byte
	_, _ = rand.Read(b[:])
	id := int64(binary.BigEndian.Uint32(b[:4]) >> 1)
	token := hex.EncodeToString(b[4:])
	acks := make(chan discovery.AckFrom, 1024)
	actx, stop := context.WithCancel(ctx)
	defer stop()
	go bc.ReadAcks(actx, id, token, acks)

	// What a sweeper learns from the retained summaries, known here at
	// once: each host and its one service.
	names := make([]string, len(hosts))
	summaries := make(chan discovery.Summary, len(hosts))
	for i, h := range hosts {
		names[i] = h.Name
		summaries <- discovery.Summary{
			Protocol: discovery.Protocol,
			Host:     h.Name,
			Machine:  floorMachine(h),
			Services: []discovery.ServiceInfo{{Function: "echo"}},
		}
	}
	close(summaries)
	return discovery.Sweep(ctx, discovery.SweepConfig{
		ReplyTo:     from.Name,
		ID:          id,
		Expected:    names,
		ExpectCount: len(hosts),
		Timeout:     timeout,
		AckToken:    token,
	}, discovery.SweepIO{Send: bc.Send, Acks: acks, Summaries: summaries})
}
