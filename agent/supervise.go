package agent

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// A Notifier tells the service manager how the agent is: systemd's
// sd_notify protocol ("READY=1", "WATCHDOG=1", "STATUS=...").
type Notifier interface {
	Notify(state string) error
}

// Health is how long a session that is down may go without trying to
// connect before the agent counts as wedged: paho retries at least every
// 10 s.
const stuckAfter = 30 * time.Second

// Healthy returns nil while the agent can still do its job, or what is
// wrong: a session connected to a broker that no longer acknowledges a
// publish, a session that stopped trying to connect, a monitor that
// stopped reading. A broker that is down is not a fault of the agent's:
// while its session keeps trying, it is healthy.
func (a *Agent) Healthy(ctx context.Context) error {
	sess := a.sessionp.Load()
	if sess == nil || a.monitorp.Load() == nil {
		return errors.New("not running")
	}
	if !a.serving.Load() {
		return errors.New("discovery monitor stopped")
	}
	if !sess.Connected() {
		if since := time.Since(sess.Progress()); since > stuckAfter {
			return fmt.Errorf("mqtt session stuck: no connection attempt for %s", since.Round(time.Second))
		}
		return nil
	}
	// End to end: the broker acknowledges a publish at QoS 1.
	wait := 5 * time.Second
	if d, ok := ctx.Deadline(); ok {
		wait = time.Until(d)
	}
	if err := sess.PublishWait(a.topic("rollcall", "alive", a.cfg.Host), 1, false, nil, wait); err != nil {
		return fmt.Errorf("mqtt session not answering: %w", err)
	}
	return nil
}

// Supervise tells n READY=1 once the agent is online, then, when the
// service manager asked for a watchdog (interval > 0), WATCHDOG=1 every
// half interval for as long as the agent is Healthy; an agent that stops
// being healthy is left for the manager to restart, and says why in
// STATUS. It returns when ctx ends.
func Supervise(ctx context.Context, a *Agent, n Notifier, interval time.Duration) {
	select {
	case <-a.Ready():
	case <-ctx.Done():
		return
	}
	if err := n.Notify("READY=1\nSTATUS=online"); err != nil {
		a.log.Warn("sd_notify", "err", err)
	}
	if interval <= 0 {
		return
	}
	tick := time.NewTicker(interval / 2)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			_ = n.Notify("STOPPING=1")
			return
		case <-tick.C:
		}
		hctx, cancel := context.WithTimeout(ctx, interval/4)
		err := a.Healthy(hctx)
		cancel()
		if err != nil {
			a.log.Error("unhealthy; not feeding the watchdog", "err", err)
			_ = n.Notify("STATUS=unhealthy: " + err.Error())
			continue
		}
		status := "online"
		if !a.Connected() {
			status = "connecting to " + a.BrokerURL()
		}
		if err := n.Notify("WATCHDOG=1\nSTATUS=" + status); err != nil {
			a.log.Warn("sd_notify", "err", err)
		}
	}
}
