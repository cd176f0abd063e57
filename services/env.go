package services

// WithDefaults returns e with what it leaves out filled in, as the
// registry fills it for every service it builds (see NewKind): a logger
// that discards, claims of the service's own, the real clock, /sys and
// /dev. A service's New starts from it, so that a service a test builds
// directly sees the Env the agent would give it.
func (e Env) WithDefaults() Env { return e.withDefaults() }
