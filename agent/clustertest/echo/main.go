// Command echo is the responder of clustertest's raw UDP floor: it answers
// each discovery probe it hears with an acknowledgement straight to the
// sender, in as many copies as an agent's monitor sends, and does nothing
// else: no checks, no MQTT, no services. A sweep's time against these responders is what the
// network and the hosts' wake-ups cost on their own; rollcall's sweep is
// measured against it.
//
//	echo -port 4749 -name node01 -machine 00000001
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"slices"

	"github.com/rollcall/rollcall/discovery"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "echo: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	port := flag.Int("port", 4749, "UDP port to answer on")
	name := flag.String("name", "", "host name to answer with")
	machine := flag.String("machine", "", "short machine id to answer with: 8 lowercase hex digits")
	flag.Parse()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{Port: *port})
	if err != nil {
		return fmt.Errorf("listen :%d: %w", *port, err)
	}
	// The harness waits for this line before it sweeps.
	fmt.Println("ready")
	buf := make([]byte, discovery.MaxDatagram+1)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		// Like a monitor: a probe that lists this host as heard gets no
		// answer, one that does not gets one again.
		p, err := discovery.ParseProbe(buf[:n])
		if err != nil || p.Ack == "" || slices.Contains(p.Heard, *machine) {
			continue
		}
		b, err := discovery.Ack{ID: p.ID, Token: p.Ack, Host: *name, Machine: *machine}.Marshal()
		if err != nil {
			return err
		}
		// As many copies as a monitor sends, within the probe's size.
		for range max(min(discovery.AckCopies, n/len(b)), 1) {
			if _, err := conn.WriteToUDPAddrPort(b, from); err != nil {
				fmt.Fprintf(os.Stderr, "echo: answer %v: %v\n", from, err)
			}
		}
	}
}
