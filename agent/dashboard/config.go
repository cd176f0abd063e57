package dashboard

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/rollcall/rollcall/services"
)

// Config is the "dashboard" block of the configuration.
type Config struct {
	// Listen is the address the page and its API are served on.
	Listen string `json:"listen"`
	// AllowControl lets the page drive outputs, send setups, and estop
	// and recover services. Without it the dashboard only shows the
	// cluster: its API refuses every write and the page hides the
	// controls.
	AllowControl bool `json:"allow_control"`
	// PasswordFile names a file whose first line is the password the page
	// asks for (HTTP basic authentication, any user name). A file, not
	// the password itself, so that it stays out of the configuration,
	// the environment and the process list.
	PasswordFile string `json:"password_file"`
}

// DefaultListen is where the dashboard listens when the configuration is
// silent: loopback only, since a page that can switch outputs must not be
// offered to the network by accident.
const DefaultListen = "127.0.0.1:4748"

// DefaultConfig returns the block used where the configuration is silent.
func DefaultConfig() Config {
	return Config{Listen: DefaultListen}
}

// Check returns every problem of c, each with its key.
func (c Config) Check() services.Errors {
	var errs services.Errors
	bad := func(field, format string, a ...any) {
		errs = append(errs, services.Errorf(services.CodeInvalid, field, format, a...))
	}
	if _, port, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "%q is not host:port, such as 127.0.0.1:4748 or :4748 (%v)", c.Listen, err)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		bad("listen", "%q: port %q is not a TCP port (0–65535)", c.Listen, port)
	}
	if c.PasswordFile != "" && strings.TrimSpace(c.PasswordFile) != c.PasswordFile {
		bad("password_file", "%q starts or ends with a space", c.PasswordFile)
	}
	return errs
}

// readPassword reads the first line of a password file, and says whether
// every user of the machine can read the file. An empty password is
// refused: it would protect nothing while looking as if it did.
func readPassword(path string) (string, bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", false, fmt.Errorf("dashboard password: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimRight(line, "\r")
	if line == "" {
		return "", false, fmt.Errorf("dashboard password: %s: the first line is empty", path)
	}
	fi, err := os.Stat(path)
	readable := err == nil && fi.Mode().Perm()&0o004 != 0
	return line, readable, nil
}
