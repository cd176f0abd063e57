package session

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// A ConnectError is why a connection to the broker failed, in words a user
// can act on.
type ConnectError struct {
	Broker string
	// Cause says what went wrong and what to check.
	Cause string
	// Auth is set when the broker refused the credentials: retrying does
	// not help.
	Auth bool
	// Permanent is set for failures that do not go away by themselves (a
	// certificate that does not verify, credentials refused): a command
	// gives up at once rather than waiting for its timeout.
	Permanent bool
	Err       error
}

func (e *ConnectError) Error() string { return fmt.Sprintf("broker %s: %s", e.Broker, e.Cause) }
func (e *ConnectError) Unwrap() error { return e.Err }

// ErrAuth is wrapped by a ConnectError whose broker refused the
// credentials.
var ErrAuth = errors.New("not authorised")

// classify turns a failed connection attempt into a ConnectError.
func classify(broker string, err error) *ConnectError {
	e := &ConnectError{Broker: broker, Err: err}
	host, scheme := broker, "tcp"
	if u, perr := url.Parse(broker); perr == nil {
		host, scheme = u.Host, u.Scheme
	}
	tlsScheme := scheme == "ssl" || scheme == "tls" || scheme == "mqtts" || scheme == "wss"
	dropped := errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		(strings.Contains(err.Error(), "network Error") && strings.Contains(err.Error(), "<nil>"))
	var (
		dns      *net.DNSError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		record   tls.RecordHeaderError
		verify   *tls.CertificateVerificationError
		netErr   net.Error
	)
	switch {
	case errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword), errors.Is(err, packets.ErrorRefusedNotAuthorised):
		e.Cause, e.Auth, e.Permanent = "not authorised: the broker refuses this username and password (check mqtt.username and mqtt.password)", true, true
		e.Err = fmt.Errorf("%w: %w", ErrAuth, err)
	case errors.Is(err, packets.ErrorRefusedIDRejected):
		e.Cause, e.Permanent = "the broker rejects the client id (check mqtt.client_id)", true
	case errors.Is(err, packets.ErrorRefusedServerUnavailable):
		e.Cause = "the broker says it is unavailable"
	case errors.Is(err, packets.ErrorRefusedBadProtocolVersion):
		e.Cause, e.Permanent = "the broker does not speak MQTT 3.1.1", true
	case errors.As(err, &dns):
		e.Cause = fmt.Sprintf("cannot resolve %q: %v (check mqtt.broker)", dns.Name, dns.Err)
	case errors.Is(err, syscall.ECONNREFUSED):
		e.Cause = fmt.Sprintf("connection refused: nothing listens at %s (is the broker running, on that port?)", host)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		e.Cause = fmt.Sprintf("no route to %s (check the network and mqtt.broker)", host)
	case errors.As(err, &unknown), errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &verify):
		e.Cause, e.Permanent = fmt.Sprintf("TLS: the broker's certificate does not verify: %v (check mqtt.tls.ca and the broker's name)", tlsReason(err)), true
	case errors.As(err, &record):
		e.Cause, e.Permanent = "TLS: the broker does not speak TLS on this port (use tcp://, or its TLS port)", true
	case dropped && tlsScheme:
		e.Cause = "the broker dropped the TLS handshake: a plain MQTT port spoken to as " + scheme + ":// (use tcp://), or a broker that refuses this client"
	case dropped:
		e.Cause = "the broker dropped the connection during the MQTT handshake: a TLS port spoken to as tcp:// (use ssl://), or a broker that refuses this client"
	case errors.As(err, &netErr) && netErr.Timeout():
		e.Cause = fmt.Sprintf("no answer from %s in time (a firewall, a wrong address, or a broker that does not speak MQTT there)", host)
	default:
		e.Cause = err.Error()
	}
	return e
}

func tlsReason(err error) string {
	var verify *tls.CertificateVerificationError
	if errors.As(err, &verify) {
		return verify.Err.Error()
	}
	return err.Error()
}

// onNotification records the outcome of every connection attempt paho
// makes, first and re-connects alike, which paho itself only prints to a
// logger nobody reads.
func (s *Session) onNotification(_ paho.Client, n paho.ConnectionNotification) {
	switch n := n.(type) {
	case paho.ConnectionNotificationBroker:
		s.attemptBroker.Store(n.Broker.String())
		s.attemptFailed.Store(false)
	case paho.ConnectionNotificationBrokerFailed:
		s.attemptFailed.Store(true)
		s.failed(classify(n.Broker.String(), n.Reason))
	case paho.ConnectionNotificationFailed:
		if !s.attemptFailed.Load() {
			b, _ := s.attemptBroker.Load().(string)
			s.failed(classify(b, n.Reason))
		}
	case paho.ConnectionNotificationConnected:
		s.authFailures.Store(0)
		if last := s.lastFailure.Load(); last != nil {
			s.log.Info("mqtt connected after failures", "attempts", s.failures.Swap(0), "last", last.Cause)
		}
		s.lastFailure.Store(nil)
	}
}

// failed logs a failed attempt, at warn, once per cause per minute with
// the number of attempts in between, and gives up once the broker has
// refused the credentials MaxAuthFailures times in a row.
func (s *Session) failed(e *ConnectError) {
	s.touch()
	s.failures.Add(1)
	s.counts.failures.Add(1)
	prev := s.lastFailure.Swap(e)
	s.warnMu.Lock()
	now := time.Now()
	if prev == nil || prev.Cause != e.Cause || now.Sub(s.warned) >= time.Minute {
		s.log.Warn("mqtt connect failed", "broker", e.Broker, "cause", e.Cause, "attempts", s.failures.Load())
		s.warned = now
	}
	s.warnMu.Unlock()
	select {
	case s.failure <- e:
	default:
	}
	if e.Auth && s.maxAuth > 0 && int(s.authFailures.Add(1)) >= s.maxAuth {
		s.fatalOnce.Do(func() {
			s.fatal <- fmt.Errorf("giving up after %d refusals: %w", s.maxAuth, e)
			close(s.fatal)
		})
	}
}

// LastFailure is why the last connection attempt failed, or nil once
// connected.
func (s *Session) LastFailure() *ConnectError { return s.lastFailure.Load() }

// Fatal delivers an error when retrying cannot help: the broker refused
// the credentials Config.MaxAuthFailures times in a row.
func (s *Session) Fatal() <-chan error { return s.fatal }

// Connect starts connecting. With wait > 0 it waits that long for the first
// connection: it fails at once on a failure retrying cannot fix (refused
// credentials, a certificate that does not verify) and otherwise, at the
// end, with the cause of the last failed attempt. With wait <= 0 it returns
// at once and the session keeps trying in the background.
func (s *Session) Connect(ctx context.Context, wait time.Duration) error {
	s.client.Connect()
	if wait <= 0 {
		return nil
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e := <-s.failure:
			if e.Permanent {
				return e
			}
		case <-timer.C:
			if e := s.lastFailure.Load(); e != nil {
				return e
			}
			return fmt.Errorf("broker %s: no connection after %s", s.brokers, wait)
		case <-s.connects:
			return nil
		}
	}
}
