package discovery

import (
	"strings"
	"testing"
)

func TestConfigCheck(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*Config)
		field string // the field named in the one error; "" for none
	}{
		{"defaults", func(*Config) {}, ""},
		{"per host", func(c *Config) { c.ReportPerHost = true }, ""},
		{"report topic reserved", func(c *Config) { c.ReportTopic = "pi1/get" }, "report_topic"},
		{"report topic under rollcall/", func(c *Config) { c.ReportTopic = "rollcall/report" }, "report_topic"},
		{"reply topic is the report topic", func(c *Config) { c.ReplyTopic, c.ReplyPrefixes = "/udp/report", []string{"/udp/"} }, "reply_topic"},
		{"reply topic below the report topic", func(c *Config) { c.ReplyTopic, c.ReplyPrefixes = "/udp/report/data", []string{"/udp/"} }, "reply_topic"},
		{"reply topic beside the report topic", func(c *Config) { c.ReplyTopic, c.ReplyPrefixes = "/udp/reports", []string{"/udp/"} }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(&c)
			errs := c.Check()
			switch {
			case tt.field == "" && len(errs) > 0:
				t.Errorf("rejected: %v", errs)
			case tt.field != "" && (len(errs) != 1 || errs[0].Field != tt.field):
				t.Errorf("errors %v, want one on %s", errs, tt.field)
			}
		})
	}
}

func TestReportTopicFor(t *testing.T) {
	tests := []struct {
		name    string
		topic   string
		perHost bool
		host    string
		want    string
		bad     string // in the reason CheckReportTopicFor gives; "" for none
	}{
		{"shared", DefaultReportTopic, false, "pi1", "/udp/report", ""},
		{"per host", DefaultReportTopic, true, "pi1", "/udp/report/pi1", ""},
		{"per host, host named like a request", DefaultReportTopic, true, "get", "/udp/report/get", ""},
		{"completed into a host's request topic", "x", true, "get", "x/get", "keeps for state"},
		{"completed into a service's setup topic", "x/gpio", true, "setup", "x/gpio/setup", "keeps for state"},
		{"shared reserved whatever the host", "pi1/status", false, "pi2", "pi1/status", "keeps for state"},
		{"too long once completed", "/" + strings.Repeat("r", 250), true, "pibot01", "/" + strings.Repeat("r", 250) + "/pibot01", "not a plain topic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{ReportTopic: tt.topic, ReportPerHost: tt.perHost}
			if got := c.ReportTopicFor(tt.host); got != tt.want {
				t.Errorf("ReportTopicFor(%q) = %q, want %q", tt.host, got, tt.want)
			}
			why := c.CheckReportTopicFor(tt.host)
			if (tt.bad == "") != (why == "") || !strings.Contains(why, tt.bad) {
				t.Errorf("CheckReportTopicFor(%q) = %q, want a reason containing %q", tt.host, why, tt.bad)
			}
		})
	}
}

func TestCheckReplyTopic(t *testing.T) {
	prefixes := []string{"/stat/", "/udp/"}
	tests := []struct {
		name  string
		topic string
		bad   bool
	}{
		{"seed's reply topic", "/stat/data", false},
		{"report topic", "/udp/report", true},
		{"a host's own report topic", "/udp/report/pi1", true},
		{"beside the report topic", "/udp/reporting", false},
		{"reserved", "/stat/set/x", true},
		{"outside the prefixes", "/other/data", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			why := CheckReplyTopic(tt.topic, DefaultReportTopic, prefixes)
			if (why != "") != tt.bad {
				t.Errorf("CheckReplyTopic(%q) = %q, want refused %v", tt.topic, why, tt.bad)
			}
		})
	}
}

// TestCheckTopicsUnderPrefix: a probe may name none of rollcall's topics
// as its reply topic, with the hosts' prefix or without it, and a report
// topic may be neither.
func TestCheckTopicsUnderPrefix(t *testing.T) {
	tests := []struct {
		name  string
		topic string
		bad   bool
	}{
		{"seed's reply topic", "/stat/data", false},
		{"under the reply prefix", "site1/stat/data", false},
		{"a prefixed host's status", "site1/pi1/status", true},
		{"a prefixed set topic", "site1/pi1/gpio/set/lamp", true},
		{"the prefixed inventory", "site1/rollcall/inventory", true},
		{"an unprefixed host's status", "pi1/status", true},
		{"the unprefixed inventory", "rollcall/inventory", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			why := CheckReplyTopicUnder("site1", tt.topic, DefaultReportTopic, []string{"/stat/", "site1/stat/", "site1/pi1/", "site1/rollcall/", "pi1/", "rollcall/"})
			if (why != "") != tt.bad {
				t.Errorf("CheckReplyTopicUnder(%q) = %q, want refused %v", tt.topic, why, tt.bad)
			}
			why = Config{ReportTopic: tt.topic}.CheckReportTopicUnder("site1", "pi2")
			if (why != "") != tt.bad {
				t.Errorf("CheckReportTopicUnder(%q) = %q, want refused %v", tt.topic, why, tt.bad)
			}
		})
	}
}
