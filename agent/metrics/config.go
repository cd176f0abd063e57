package metrics

import (
	"net"
	"strconv"

	"github.com/rollcall/rollcall/services"
)

// Config is the "metrics" block of the agent's configuration.
type Config struct {
	// Listen is the address the agent serves /metrics on, such as ":9465"
	// (every address) or "127.0.0.1:9465". Empty, the default, serves
	// nothing.
	Listen string `json:"listen"`
}

// Check reports what is wrong with c, each problem with its key.
func (c Config) Check() services.Errors {
	if c.Listen == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return services.Errors{services.Errorf(services.CodeInvalid, "listen", "%q is not host:port such as :9465 (%v)", c.Listen, err)}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return services.Errors{services.Errorf(services.CodeInvalid, "listen", "%q: port %q is not a number from 0 to 65535", c.Listen, port)}
	}
	return nil
}
