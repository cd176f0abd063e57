package main_test

// Connection truth: every way of failing to reach the broker gives its own
// message, within the connect timeout, and exit status 3; an agent whose
// password is refused gives up instead of retrying forever.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rollcall/rollcall/agent/clustertest"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// serverCert issues a certificate for 127.0.0.1, as PEM cert and key.
func (ca *testCA) serverCert(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// secureMosquitto runs mosquitto with a password (user "pi", password
// "right") on a plain listener and on a TLS one.
func secureMosquitto(t *testing.T, ca *testCA) (plain, secure int) {
	t.Helper()
	passwd, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		passwd = "/usr/bin/mosquitto_passwd"
	}
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	if out, err := exec.Command(passwd, "-c", "-b", pw, "pi", "right").CombinedOutput(); err != nil {
		if clustertest.Required() {
			t.Fatalf("mosquitto_passwd: %v %s", err, out)
		}
		t.Skipf("mosquitto_passwd (apt-get install mosquitto): %v %s", err, out)
	}
	certPEM, keyPEM := ca.serverCert(t)
	for name, b := range map[string][]byte{"ca.pem": ca.pem, "server.pem": certPEM, "server.key": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	plain, secure = freePort(t, "tcp"), freePort(t, "tcp")
	conf := fmt.Sprintf(`per_listener_settings false
allow_anonymous false
password_file %s
listener %d 127.0.0.1
listener %d 127.0.0.1
cafile %s
certfile %s
keyfile %s
`, pw, plain, secure, filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key"))
	clustertest.StartLocalMosquitto(t, conf, plain, secure)
	return plain, secure
}

func TestConnectFailuresSayTheirCause(t *testing.T) {
	bin := buildRollcall(t)
	ca, other := newTestCA(t, "rollcall test CA"), newTestCA(t, "someone else's CA")
	plain, secure := secureMosquitto(t, ca)
	dir := t.TempDir()
	caFile, otherFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "other.pem")
	os.WriteFile(caFile, ca.pem, 0o644)
	os.WriteFile(otherFile, other.pem, 0o644)
	wrong, right := filepath.Join(dir, "wrong"), filepath.Join(dir, "right")
	os.WriteFile(wrong, []byte("wrong\n"), 0o600)
	os.WriteFile(right, []byte("right\n"), 0o600)
	empty := filepath.Join(dir, "empty.yaml")
	os.WriteFile(empty, []byte("# from flags\n"), 0o644)

	tests := []struct {
		name string
		args []string
		code int
		says string
	}{
		{"wrong password", []string{"--broker", fmt.Sprintf("tcp://127.0.0.1:%d", plain), "--username", "pi", "--password-file", wrong}, 3, "not authorised"},
		{"no credentials", []string{"--broker", fmt.Sprintf("tcp://127.0.0.1:%d", plain)}, 3, "not authorised"},
		{"nothing listening", []string{"--broker", fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t, "tcp"))}, 3, "connection refused"},
		{"unresolvable", []string{"--broker", "tcp://no-such-host.invalid:1883"}, 3, "cannot resolve"},
		{"wrong CA", []string{"--broker", fmt.Sprintf("ssl://127.0.0.1:%d", secure), "--tls-ca", otherFile, "--username", "pi", "--password-file", right}, 3, "certificate does not verify"},
		{"TLS port spoken to as tcp://", []string{"--broker", fmt.Sprintf("tcp://127.0.0.1:%d", secure), "--username", "pi", "--password-file", right}, 3, "TLS port spoken to as tcp://"},
		{"plain port spoken to as ssl://", []string{"--broker", fmt.Sprintf("ssl://127.0.0.1:%d", plain), "--tls-ca", caFile}, 3, "plain MQTT port spoken to as ssl://"},
		{"right password", []string{"--broker", fmt.Sprintf("tcp://127.0.0.1:%d", plain), "--username", "pi", "--password-file", right}, 0, ""},
		{"right password over TLS", []string{"--broker", fmt.Sprintf("ssl://127.0.0.1:%d", secure), "--tls-ca", caFile, "--username", "pi", "--password-file", right}, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"inventory", "--config", empty}, tc.args...)
			start := time.Now()
			out, err := exec.Command(bin, args...).CombinedOutput()
			took := time.Since(start)
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			}
			if code != tc.code || !strings.Contains(string(out), tc.says) {
				t.Fatalf("exit %d (want %d), output:\n%s\nwant it to say %q", code, tc.code, out, tc.says)
			}
			if took > 4*time.Second {
				t.Errorf("took %v: a command must fail within its 3 s connect timeout", took)
			}
			if tc.code != 0 && strings.Count(strings.TrimSpace(string(out)), "\n") > 0 {
				t.Errorf("more than one line for one failure:\n%s", out)
			}
		})
	}

	// An agent whose password is refused gives up after a few tries,
	// saying why, rather than retrying forever looking healthy.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "agent", "--config", empty, "--sim", "--state-dir", t.TempDir(),
		"--port", fmt.Sprint(freePort(t, "udp")), "--broker", fmt.Sprintf("tcp://127.0.0.1:%d", plain), "--username", "pi", "--password-file", wrong)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || !strings.Contains(string(out), "giving up after 3 refusals") {
		t.Errorf("agent with a wrong password: %v, output:\n%s", err, out)
	}
}
